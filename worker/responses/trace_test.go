package responses

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	promexporter "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/cgapi/cgapitest"
	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/natstest"
	"github.com/cgworker/cgworker/worker/telemetry"
)

// wiredSync is a Sync whose API client is traced and whose hooks record
// metrics as `cgworker run` wires them, on an emulator that keeps its
// request log.
func wiredSync(t *testing.T, responses int, tp trace.TracerProvider, mp metric.MeterProvider) (*world, *Sync) {
	t.Helper()
	w := &world{
		t:     t,
		emu:   cgapitest.NewServer(t, emulator.Options{Responses: responses}),
		nats:  natstest.NewServer(t),
		names: queue.NewNames(""),
	}
	w.js, w.kv = w.connect()
	if err := queue.EnsureStreams(testContext(t), w.js, queue.StreamConfig{Names: w.names}); err != nil {
		t.Fatal(err)
	}
	cfg := cgapitest.Config(w.emu, emulator.Options{})
	cfg.Transport = telemetry.HTTPTransport(cgapi.NewTransport(), tp, nil)
	client, err := cgapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w, New(client, w.js, w.kv, Config{
		Names: w.names, PerPage: 20, With: testWith, MaxElapsed: 10 * time.Second,
		Logger: testLogger(), TracerProvider: tp, MeterProvider: mp, retryInitial: 5 * time.Millisecond,
	})
}

func parentOf(t *testing.T, traceparent string) trace.SpanContext {
	t.Helper()
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": traceparent}))
	if !sc.IsValid() {
		t.Fatalf("traceparent %q is not valid", traceparent)
	}
	return sc
}

// One pass is one trace: responses.sync, a responses.page per page, a GET
// per page whose traceparent reaches the API, and every published response
// carries the context of the page that published it. Nothing here sets the
// otel globals.
func TestSyncTraceReachesAPIAndResponses(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	w, s := wiredSync(t, 50, tp, nil)
	if _, err := s.Once(testContext(t)); err != nil {
		t.Fatal(err)
	}

	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	var root sdktrace.ReadOnlySpan
	for _, sp := range rec.Ended() {
		byID[sp.SpanContext().SpanID()] = sp
		if sp.Name() == "responses.sync" {
			root = sp
		}
	}
	if root == nil {
		t.Fatal("no responses.sync span")
	}
	count := map[string]int{}
	for _, sp := range rec.Ended() {
		count[sp.Name()]++
		if sp.Name() == "POST "+emulator.TokenPath {
			continue // one token serves many calls: its fetch is a trace of its own
		}
		if sp.SpanContext().TraceID() != root.SpanContext().TraceID() {
			t.Errorf("span %q outside the pass's trace", sp.Name())
		}
		parent := byID[sp.Parent().SpanID()]
		switch sp.Name() {
		case "responses.page":
			if parent != root {
				t.Errorf("responses.page not a child of responses.sync")
			}
		case "GET " + emulator.SyncPath:
			if parent == nil || parent.Name() != "responses.page" {
				t.Errorf("GET span's parent is not a page")
			}
		}
	}
	// 50 responses at 20 a page: 3 pages with data, one empty.
	if count["responses.sync"] != 1 || count["responses.page"] != 4 || count["GET "+emulator.SyncPath] != 4 {
		t.Fatalf("spans %v", count)
	}

	var gets int
	for _, r := range w.emu.Requests() {
		if r.Path != emulator.SyncPath {
			continue
		}
		gets++
		sc := parentOf(t, r.Header.Get("traceparent"))
		if sp := byID[sc.SpanID()]; sp == nil || sp.Name() != "GET "+emulator.SyncPath || sc.TraceID() != root.SpanContext().TraceID() {
			t.Errorf("GET with traceparent %q: not the GET span", r.Header.Get("traceparent"))
		}
	}
	if gets != 4 {
		t.Errorf("%d GETs recorded", gets)
	}
	msgs := w.messages()
	if len(msgs) != 50 {
		t.Fatalf("%d responses published", len(msgs))
	}
	for _, m := range msgs {
		sc := parentOf(t, m.Header.Get("traceparent"))
		if sp := byID[sc.SpanID()]; sp == nil || sp.Name() != "responses.page" || sc.TraceID() != root.SpanContext().TraceID() {
			t.Errorf("response %s: traceparent %q is not a page of the pass", m.Header.Get(HeaderNumber), m.Header.Get("traceparent"))
		}
	}
}

// The sync's metrics, recorded through Config.MeterProvider, over
// Prometheus text: responses published, the stored
// cursor, the time of the last successful pass.
func TestSyncMetricsOverHTTP(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	exp, err := promexporter.New(promexporter.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	_, s := wiredSync(t, 50, nil, mp)
	before := time.Now().Unix()
	if _, err := s.Once(testContext(t)); err != nil {
		t.Fatal(err)
	}

	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string) float64 {
		f, ok := fams[name]
		if !ok || len(f.GetMetric()) != 1 {
			t.Fatalf("%s missing from /metrics:\n%s", name, body)
		}
		m := f.GetMetric()[0]
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		return m.Gauge.GetValue()
	}
	if v := value("cgworker_sync_responses_published_total"); v != 50 {
		t.Errorf("published %v, want 50", v)
	}
	if v := value("cgworker_sync_cursor"); v != 50 {
		t.Errorf("cursor %v, want 50", v)
	}
	if v := value("cgworker_sync_last_success_seconds"); v < float64(before) || v > float64(time.Now().Unix()) {
		t.Errorf("last success %v, not during the pass", v)
	}
	if _, ok := fams["cgworker_sync_failures_total"]; ok && fams["cgworker_sync_failures_total"].GetMetric()[0].GetCounter().GetValue() != 0 {
		t.Errorf("failures recorded")
	}
}
