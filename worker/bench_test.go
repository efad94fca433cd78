package worker_test

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/cgapi/cgapitest"
	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue/natstest"
	"github.com/cgworker/cgworker/schemas"
	"github.com/cgworker/cgworker/worker"
	"github.com/cgworker/cgworker/worker/proctest"
	"github.com/cgworker/cgworker/worker/telemetry"
)

// benchActivity is a typical valid activity. It has no reference, so the
// worker derives one per message and rewrites the body: the full hot path.
const benchActivity = `{"account":"ACME Industries","type":"Support Ticket","source":"Freshdesk",` +
	`"contact":"john.doe@example.com","happened_at":"2019-10-06 22:34:45",` +
	`"additional_information_object":{"subject":"Printer on fire","priority":3,"agent":"Jane Roe"}}`

// BenchmarkPipeline measures the whole pipeline in one process: b.N valid
// activities are published to an embedded NATS server first, then a worker
// with the production defaults (CG_CONCURRENCY 64, validation on) runs
// until every one is acknowledged after its PUT to the emulator over
// loopback HTTP. It reports events/s and the peak heap of the process.
//
// NATS, the emulator and the worker share the process and its cores, so
// events/s is a lower bound of the worker's own capacity and the heap
// includes the NATS server's and the emulator's (start-heap-MiB is the heap
// after setup, before the worker starts). cpu-µs/event, the process's CPU
// time per event, is the figure to compare on a busy machine. The tracing
// modes price tracing: see tracingMode.
//
//	go test -run '^$' -bench Pipeline -benchtime 20000x -count 3 ./worker/
func BenchmarkPipeline(b *testing.B) {
	b.Run("latency=0", func(b *testing.B) {
		b.Run("tracing=off", func(b *testing.B) { benchPipeline(b, 0, tracingOff) })
		b.Run("run-defaults", func(b *testing.B) { benchPipeline(b, 0, runDefaults) })
		b.Run("tracing=on", func(b *testing.B) { benchPipeline(b, 0, tracingOn) })
		b.Run("tracing=10%", func(b *testing.B) { benchPipeline(b, 0, tracingTenth) })
	})
	b.Run("latency=20ms", func(b *testing.B) { benchPipeline(b, 20*time.Millisecond, tracingOff) })
}

type tracingMode int

const (
	// tracingOff: the noop tracer provider and the client's plain transport.
	tracingOff tracingMode = iota
	// tracingOn: every span recorded and exported, otelhttp on the client.
	tracingOn
	// tracingTenth: tracingOn with one trace in ten sampled
	// (OTEL_TRACES_SAMPLER=parentbased_traceidratio, ARG 0.1).
	tracingTenth
	// runDefaults: what `cgworker run` does without OTEL_* settings: the
	// noop tracer provider, yet the transport wrapped by otelhttp, and the
	// metrics SDK (a manual reader here, Prometheus there) recording the
	// worker's and otelhttp's instruments.
	runDefaults
)

func benchPipeline(b *testing.B, latency time.Duration, tracing tracingMode) {
	w := setup(b, emulator.Options{Latency: latency, NoRequestLog: true, DiscardBodies: true})
	natstest.Publish(b, w.js, w.names.EventSubject(schemas.Activity), []byte(benchActivity), b.N)

	var tp trace.TracerProvider = noop.NewTracerProvider()
	var mp metric.MeterProvider = metricnoop.NewMeterProvider()
	var transport http.RoundTripper // nil: the client's own
	switch tracing {
	case tracingOn, tracingTenth:
		sampler := sdktrace.AlwaysSample()
		if tracing == tracingTenth {
			sampler = sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))
		}
		sdk := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithBatcher(discardSpans{}))
		b.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
		tp = sdk
	case runDefaults:
		sdk := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
		mp = sdk
	}
	if tracing != tracingOff {
		transport = telemetry.HTTPTransport(cgapi.NewTransport(), tp, mp)
	}
	apiCfg := cgapitest.Config(w.emu, emulator.Options{})
	apiCfg.Transport = transport
	client, err := cgapi.New(apiCfg)
	if err != nil {
		b.Fatal(err)
	}

	var settled, failed atomic.Int64
	all := make(chan struct{})
	cfg := worker.Config{
		Names:          w.names,
		Kinds:          []schemas.Kind{schemas.Activity},
		Concurrency:    64,
		Logger:         slog.New(slog.DiscardHandler),
		TracerProvider: tp,
		MeterProvider:  mp,
		OnSettled: func(s worker.Settled) {
			if s.Action != worker.Ack {
				failed.Add(1)
			}
			if settled.Add(1) == int64(b.N) {
				close(all)
			}
		},
	}
	wk, err := worker.New(mustJS(b, w.nc), client, w.v, cfg)
	if err != nil {
		b.Fatal(err)
	}

	runtime.GC()
	startHeap := heapObjectBytes()
	peak := sampleHeapPeak()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpuStart := time.Now(), proctest.SelfCPU()
	go func() { ran <- wk.Run(ctx) }()
	select {
	case <-all:
	case <-time.After(10 * time.Minute):
		b.Fatalf("only %d of %d events settled after 10 minutes", settled.Load(), b.N)
	}
	elapsed, cpu := time.Since(start), proctest.SelfCPU()-cpuStart
	b.StopTimer()
	peakHeap := peak()
	cancel()
	if err := <-ran; err != nil {
		b.Fatal(err)
	}
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d events were not delivered", n, b.N)
	}
	const mib = 1 << 20
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(peakHeap)/mib, "peak-heap-MiB")
	b.ReportMetric(float64(startHeap)/mib, "start-heap-MiB")
	// Near the machine's core count the run was CPU bound; well below it
	// on a busy machine, it was starved by other processes.
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cpu-cores")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/event")
}

// discardSpans is a span exporter that drops what it is given: export is
// priced, not the storage of spans.
type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }

const heapObjects = "/memory/classes/heap/objects:bytes"

func heapObjectBytes() uint64 {
	s := []metrics.Sample{{Name: heapObjects}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sampleHeapPeak samples the heap every 5 ms until the returned function is
// called, which returns the largest value seen. runtime/metrics does not
// stop the world, unlike runtime.ReadMemStats.
func sampleHeapPeak() func() uint64 {
	stop, done := make(chan struct{}), make(chan struct{})
	var peak uint64
	go func() {
		defer close(done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, heapObjectBytes())
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		return peak
	}
}
