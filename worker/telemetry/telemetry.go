// Package telemetry sets up OpenTelemetry for cgworker from the standard
// OTEL_* variables: traces and metrics over OTLP when configured,
// Prometheus text for /metrics always, and W3C trace context propagation.
package telemetry

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	promexporter "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Telemetry is the process's tracer and meter providers and the /metrics
// handler.
type Telemetry struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// Metrics serves the Prometheus text format.
	Metrics http.Handler

	shutdown []func(context.Context) error
}

// Options of Setup.
type Options struct {
	ServiceName    string // default "cgworker"
	ServiceVersion string
	// LookupEnv reads the OTEL_* variables; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// Setup builds the providers and installs them, with the W3C trace-context
// and baggage propagators, as the otel globals.
//
// Spans are exported over OTLP only when OTEL_TRACES_EXPORTER or an OTLP
// endpoint is set, and OTEL_SDK_DISABLED is not true. Otherwise the tracer provider creates no recording
// spans at all, which costs next to nothing, yet a message's trace context
// still flows into the API call: a non-recording span carries its parent's
// context. Metrics are always served at /metrics and, when configured, also
// exported over OTLP.
func Setup(ctx context.Context, opts Options) (*Telemetry, error) {
	if opts.ServiceName == "" {
		opts.ServiceName = "cgworker"
	}
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	// Later detectors win: our name and version are defaults, and
	// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES override them, as the
	// OpenTelemetry SDK conventions say (README, "Configuration").
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(
			semconv.ServiceName(opts.ServiceName),
			semconv.ServiceVersion(opts.ServiceVersion),
		),
		resource.WithFromEnv(),
	)
	if err != nil {
		// A malformed OTEL_RESOURCE_ATTRIBUTES: keep what could be read
		// (resource.New returns it with the error) rather than fail start-up.
		otel.Handle(err)
		if res == nil {
			res = resource.Default()
		}
	}
	t := &Telemetry{}

	// Metrics: Prometheus always; OTLP when asked for.
	reg := prometheus.NewRegistry()
	// The Go runtime's and the process's own metrics (go_goroutines,
	// process_cpu_seconds_total, process_resident_memory_bytes): the
	// dashboard's "process" row draws them (README, "Operating it").
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	prom, err := promexporter.New(promexporter.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(prom)}
	// OTEL_SDK_DISABLED turns off OTLP export and span recording; /metrics
	// is ours (README, "Configuration") and stays.
	disabled := sdkDisabled(lookup)
	tracing := !disabled && exporting(lookup, "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if _, set := lookup("OTEL_METRICS_EXEMPLAR_FILTER"); !set && !tracing {
		// Exemplars link a measurement to its sampled trace; with no trace
		// recorded there is none to link, yet the default filter would
		// still be asked for every measurement.
		mopts = append(mopts, sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter))
	}
	if !disabled && exporting(lookup, "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") {
		r, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, err
		}
		mopts = append(mopts, sdkmetric.WithReader(r))
	}
	mp := sdkmetric.NewMeterProvider(mopts...)
	t.MeterProvider = mp
	t.shutdown = append(t.shutdown, mp.Shutdown)
	t.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})

	// Traces.
	if tracing {
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, err
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(exp))
		t.TracerProvider = tp
		t.shutdown = append(t.shutdown, tp.Shutdown)
	} else {
		t.TracerProvider = noop.NewTracerProvider()
	}

	otel.SetTracerProvider(t.TracerProvider)
	otel.SetMeterProvider(t.MeterProvider)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return t, nil
}

// exporting reports whether the user asked for OTLP export of a signal:
// its exporter variable names something other than "none", or an OTLP
// endpoint (general or for the signal) is set.
func exporting(lookup func(string) (string, bool), exporterVar, signalEndpoint string) bool {
	if v, ok := lookup(exporterVar); ok && v != "" {
		return v != "none"
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", signalEndpoint} {
		if v, ok := lookup(k); ok && v != "" {
			return true
		}
	}
	return false
}

// sdkDisabled reports OTEL_SDK_DISABLED=true (any case), as the
// OpenTelemetry specification defines it.
func sdkDisabled(lookup func(string) (string, bool)) bool {
	v, _ := lookup("OTEL_SDK_DISABLED")
	return strings.EqualFold(strings.TrimSpace(v), "true")
}

// Shutdown flushes and stops the exporters.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for i := len(t.shutdown) - 1; i >= 0; i-- {
		errs = append(errs, t.shutdown[i](ctx))
	}
	return errors.Join(errs...)
}
