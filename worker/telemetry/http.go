package telemetry

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// HTTPTransport wraps base (nil: http.DefaultTransport) so that every API
// call gets a client span named "METHOD /path" and sends the W3C
// traceparent of its context. The propagator is fixed rather than the
// global one, so trace context reaches the API even where Setup has not
// installed the globals.
func HTTPTransport(base http.RoundTripper, tp trace.TracerProvider, mp metric.MeterProvider) http.RoundTripper {
	return otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithMeterProvider(mp),
		otelhttp.WithPropagators(propagation.TraceContext{}),
		otelhttp.WithSpanNameFormatter(spanName))
}

// spanName is "PUT /activities/": the API's paths carry no identifiers,
// so the name stays low in cardinality; the query string is left out.
func spanName(_ string, r *http.Request) string {
	return r.Method + " " + r.URL.Path
}
