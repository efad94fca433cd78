package telemetry

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// HTTPTransport wraps base (nil: http.DefaultTransport) so that every
// request sends the W3C traceparent of its context and, when tp records
// spans, gets a client span named "METHOD /path". cgapi sets traceparent
// on the API calls it builds, which then go as they are; the transport
// adds it to any other request (x/oauth2's token requests, a caller's own
// client). The propagator is fixed rather than the global one, so trace
// context reaches the API even where Setup has not installed the globals.
//
// With the no-op tracer provider (nothing exported) the transport only
// injects the trace context: otelhttp's per-request work would cost about
// 5% of the worker's CPU for spans nobody records. mp receives otelhttp's
// own client metrics; pass nil to leave them out (the worker records
// cgworker.api.request.duration itself).
//
// When spans are recorded, a request whose parent span is not sampled (one
// trace in ten kept, say) goes through the plain propagating transport too:
// with a parent-based sampler otelhttp would only make a span nobody keeps,
// at about 10% of the worker's CPU per event. A request without any trace
// context still goes through otelhttp, whose sampler decides for a new
// trace.
func HTTPTransport(base http.RoundTripper, tp trace.TracerProvider, mp metric.MeterProvider) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if Off(tp) {
		return propagating{base}
	}
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	return sampledOnly{
		traced: otelhttp.NewTransport(base,
			otelhttp.WithTracerProvider(tp),
			otelhttp.WithMeterProvider(mp),
			otelhttp.WithPropagators(propagation.TraceContext{}),
			otelhttp.WithSpanNameFormatter(spanName)),
		plain: propagating{base},
	}
}

// Off reports a tracer provider that records nothing: nil, or the no-op
// provider Setup installs when no trace is exported. The worker then starts
// no span per message and the transport only propagates.
func Off(tp trace.TracerProvider) bool {
	switch tp.(type) {
	case nil, noop.TracerProvider, *noop.TracerProvider:
		return true
	}
	return false
}

// sampledOnly sends requests of sampled traces, and requests that start a
// trace, through traced; the others only propagate their context.
type sampledOnly struct{ traced, plain http.RoundTripper }

func (s sampledOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() && !sc.IsSampled() {
		return s.plain.RoundTrip(r)
	}
	return s.traced.RoundTrip(r)
}

// propagating injects the trace context of each request into its headers,
// unless the request has one.
type propagating struct{ base http.RoundTripper }

func (p propagating) RoundTrip(r *http.Request) (*http.Response, error) {
	// A request that carries a trace context already (cgapi sets it on the
	// requests it builds) goes as it is: cloning it per call was the most
	// of what an unsampled trace cost.
	if trace.SpanContextFromContext(r.Context()).IsValid() && r.Header.Get("Traceparent") == "" {
		r = r.Clone(r.Context()) // a RoundTripper must not change the caller's request
		propagation.TraceContext{}.Inject(r.Context(), propagation.HeaderCarrier(r.Header))
	}
	return p.base.RoundTrip(r)
}

// spanName is "PUT /activities/": the API's paths carry no identifiers,
// so the name stays low in cardinality; the query string is left out.
func spanName(_ string, r *http.Request) string {
	return r.Method + " " + r.URL.Path
}
