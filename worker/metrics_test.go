package worker_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	promexporter "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/schemas"
	"github.com/cgworker/cgworker/worker"
	"github.com/cgworker/cgworker/worker/health"
)

// metricsServer serves /healthz, /readyz and /metrics of health and a
// meter provider exporting to Prometheus, as `cgworker run` does.
func metricsServer(t *testing.T, health *health.Health) (*sdkmetric.MeterProvider, string) {
	reg := prometheus.NewRegistry()
	exp, err := promexporter.New(promexporter.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	srv := httptest.NewServer(health.Handler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	t.Cleanup(srv.Close)
	return mp, srv.URL
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// scrape is one read of /metrics.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, base string) scrape {
	t.Helper()
	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v\n%s", err, body)
	}
	return fams
}

// series returns the one series of family name whose labels include
// labels; ok is false when there is none.
func (s scrape) series(t *testing.T, name string, labels map[string]string) (*dto.Metric, bool) {
	t.Helper()
	f, ok := s[name]
	if !ok {
		return nil, false
	}
	var found *dto.Metric
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range labels {
			match = match && have[k] == v
		}
		if match {
			if found != nil {
				t.Fatalf("%s%v matches more than one series", name, labels)
			}
			found = m
		}
	}
	return found, found != nil
}

// value is the value of a counter or gauge series; 0 when it is absent.
func (s scrape) value(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	m, ok := s.series(t, name, labels)
	switch {
	case !ok:
		return 0
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s is neither a counter nor a gauge", name)
	return 0
}

// count is the sample count of a histogram series.
func (s scrape) count(t *testing.T, name string, labels map[string]string) uint64 {
	t.Helper()
	m, ok := s.series(t, name, labels)
	if !ok || m.Histogram == nil {
		return 0
	}
	return m.Histogram.GetSampleCount()
}

func TestMetricsAfterDeliveriesRetriesAndDeadLetters(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	health := health.New(true, false)
	mp, base := metricsServer(t, health)
	cfg := testConfig()
	cfg.MeterProvider = mp
	cfg.Health = health
	r := w.start(nil, cfg)
	final := func(seq uint64) worker.Settled {
		t.Helper()
		waitFor(t, 10*time.Second, "final outcome", func() bool { _, ok := r.final(seq); return ok })
		s, _ := r.final(seq)
		return s
	}

	// Three 503s for the first activity: three retries, then delivered.
	w.emu.FailNext(emulator.ActivitiesPath, 503, 3)
	if s := final(w.publish(schemas.Activity, activity(0), nil)); s.Action != worker.Ack {
		t.Fatalf("retried activity: %v", s.Action)
	}
	// A 422 not about the contact: dead letter api-422.
	w.emu.FailNextBody(emulator.ActivitiesPath, 422, 1, []byte(`{"message":"The given data was invalid.","errors":{"type":["The type is invalid."]}}`))
	if s := final(w.publish(schemas.Activity, activity(1), nil)); s.Action != worker.DeadLetter {
		t.Fatalf("422: %v", s.Action)
	}
	// Then, concurrently: 4 good activities, 2 good accounts, 2 that
	// break the schema, 1 that is not JSON.
	var seqs []uint64
	for i := range 4 {
		seqs = append(seqs, w.publish(schemas.Activity, activity(10+i), nil))
	}
	for _, id := range []string{"A-1", "A-2"} {
		seqs = append(seqs, w.publish(schemas.Account, `{"Account Name":"Acme `+id+`"}`, nil))
	}
	seqs = append(seqs,
		w.publish(schemas.Activity, `{"type":"T","source":"S"}`, nil),
		w.publish(schemas.Activity, `{"account":"ACME","type":7,"source":"S"}`, nil),
		w.publish(schemas.Activity, `not json`, nil))
	for _, seq := range seqs {
		final(seq)
	}

	var s scrape
	waitFor(t, 10*time.Second, "nothing in flight", func() bool {
		s = scrapeMetrics(t, base)
		_, ok := s.series(t, "cgworker_in_flight", nil)
		return ok && s.value(t, "cgworker_in_flight", nil) == 0
	})
	type lbl = map[string]string
	counters := []struct {
		name   string
		labels lbl
		want   float64
	}{
		{"cgworker_events_total", lbl{"kind": "activity", "outcome": "delivered"}, 5},
		{"cgworker_events_total", lbl{"kind": "account", "outcome": "delivered"}, 2},
		{"cgworker_events_total", lbl{"kind": "activity", "outcome": "dead-lettered"}, 4},
		{"cgworker_events_total", lbl{"kind": "activity", "outcome": "retry-later"}, 0},
		{"cgworker_retries_total", lbl{"kind": "activity", "reason": "unavailable"}, 3},
		{"cgworker_dead_letters_total", lbl{"kind": "activity", "error_kind": "api-422"}, 1},
		{"cgworker_dead_letters_total", lbl{"kind": "activity", "error_kind": "schema"}, 2},
		{"cgworker_dead_letters_total", lbl{"kind": "activity", "error_kind": "malformed"}, 1},
		{"cgworker_dead_letters_total", lbl{"kind": "account", "error_kind": "schema"}, 0},
	}
	for _, c := range counters {
		if got := s.value(t, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	histos := []struct {
		labels lbl
		want   uint64
	}{
		{lbl{"endpoint": "/activities/", "status_class": "2xx"}, 5},
		{lbl{"endpoint": "/activities/", "status_class": "5xx"}, 3},
		{lbl{"endpoint": "/activities/", "status_class": "4xx"}, 1},
		{lbl{"endpoint": "/records/", "status_class": "2xx"}, 2},
	}
	for _, h := range histos {
		if got := s.count(t, "cgworker_api_request_duration_seconds", h.labels); got != h.want {
			t.Errorf("cgworker_api_request_duration_seconds%v count = %d, want %d", h.labels, got, h.want)
		}
	}
	// The consumers' backlog gauges exist for every kind consumed, and
	// settle to nothing once every message is acknowledged (they are
	// refreshed in the background every few seconds).
	for _, k := range schemas.Kinds {
		for _, name := range []string{"cgworker_consumer_pending", "cgworker_consumer_ack_pending"} {
			if _, ok := s.series(t, name, lbl{"kind": string(k)}); !ok {
				t.Errorf("no %s{kind=%q}", name, k)
			}
		}
	}
	waitFor(t, 15*time.Second, "backlog gauges at zero", func() bool {
		s := scrapeMetrics(t, base)
		return s.value(t, "cgworker_consumer_ack_pending", lbl{"kind": "activity"}) == 0 &&
			s.value(t, "cgworker_consumer_pending", lbl{"kind": "activity"}) == 0
	})
}

// /readyz follows the NATS connection as production wires it
// (queue.Connect's OnStateChange), and fails while draining.
func TestReadinessFollowsNATS(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	health := health.New(true, false)
	_, base := metricsServer(t, health)
	nc, err := queue.Connect(context.Background(), queue.ConnConfig{URL: w.ns.URL, OnStateChange: health.SetNATS, Logger: slog.New(slog.NewTextHandler(tlog{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	health.SetNATS(nc.IsConnected())
	cfg := testConfig()
	cfg.Health = health
	r := w.start(nc, cfg)

	ready := func(want int) func() bool {
		return func() bool { code, _ := get(t, base+"/readyz"); return code == want }
	}
	waitFor(t, 10*time.Second, "/readyz 200", ready(http.StatusOK))

	w.ns.Stop()
	waitFor(t, 10*time.Second, "/readyz 503 with NATS down", ready(http.StatusServiceUnavailable))
	if _, body := get(t, base+"/readyz"); !strings.Contains(body, "NATS") {
		t.Errorf("/readyz says %q", body)
	}
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: HTTP %d while NATS is down", code)
	}

	w.ns.Start(t)
	waitFor(t, 20*time.Second, "/readyz 200 after NATS returned", ready(http.StatusOK))
	waitFor(t, 10*time.Second, "test connection back", w.nc.IsConnected)
	seq := w.publish(schemas.Activity, activity(1), nil)
	waitFor(t, 30*time.Second, "delivered after NATS returned", func() bool { _, ok := r.final(seq); return ok })

	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Errorf("/readyz after shutdown: HTTP %d %q", code, body)
	}
}

func TestBreakerMetricsAndReadiness(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	health := health.New(true, false)
	health.SetNATS(true)
	mp, base := metricsServer(t, health)
	cfg := testConfig()
	cfg.MeterProvider = mp
	cfg.Health = health
	r := w.start(nil, cfg)
	waitFor(t, 5*time.Second, "ready", func() bool { return health.Ready() == nil })

	w.emu.SetOutage(true)
	var seqs []uint64
	for i := range 12 {
		seqs = append(seqs, w.publish(schemas.Activity, activity(100+i), nil))
	}
	var body string
	waitFor(t, 10*time.Second, "/readyz failing for the open breaker", func() bool {
		var code int
		code, body = get(t, base+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "API breaker open for activities since")
	})
	t.Logf("/readyz: %s", strings.TrimSpace(body))
	type lbl = map[string]string
	act, rec := lbl{"endpoint": "activities"}, lbl{"endpoint": "records"}
	waitFor(t, 5*time.Second, "messages waiting at the breaker", func() bool {
		return scrapeMetrics(t, base).value(t, "cgworker_api_waiting", act) >= 1
	})
	s := scrapeMetrics(t, base)
	if v := s.value(t, "cgworker_api_breaker_state", act); v != 1 && v != 2 {
		t.Errorf("cgworker_api_breaker_state{activities} = %v, want 1 (open) or 2 (half-open)", v)
	}
	if v := s.value(t, "cgworker_api_breaker_state", rec); v != 0 {
		t.Errorf("cgworker_api_breaker_state{records} = %v during an activities outage, want 0", v)
	}
	if v := s.value(t, "cgworker_api_concurrency_limit", rec); v != float64(cfg.Concurrency) {
		t.Errorf("cgworker_api_concurrency_limit{records} = %v, want %d", v, cfg.Concurrency)
	}

	w.emu.SetOutage(false)
	for _, seq := range seqs {
		waitFor(t, 10*time.Second, "delivery after the outage", func() bool { _, ok := r.final(seq); return ok })
	}
	waitFor(t, 5*time.Second, "ready again", func() bool { code, _ := get(t, base+"/readyz"); return code == http.StatusOK })
	s = scrapeMetrics(t, base)
	if v := s.value(t, "cgworker_api_breaker_state", act); v != 0 {
		t.Errorf("cgworker_api_breaker_state{activities} = %v after recovery, want 0", v)
	}
	if v := s.value(t, "cgworker_api_breaker_open_seconds_total", act); v <= 0 {
		t.Errorf("cgworker_api_breaker_open_seconds_total{activities} = %v after an outage, want > 0", v)
	}
	if _, ok := s.series(t, "cgworker_api_breaker_open_seconds_total", lbl{"endpoint": "token"}); !ok {
		t.Error("no cgworker_api_breaker_open_seconds_total{endpoint=token} series")
	}
}

// TestInFlightCountsQueuedMessages: cgworker_in_flight is every message the
// replica holds, those waiting for a handler included, not only those in
// one: with the API slow, 2 handlers and a look-ahead of 3, it reaches 5.
func TestInFlightCountsQueuedMessages(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{Latency: 3 * time.Second})
	mp, base := metricsServer(t, nil)
	cfg := testConfig()
	cfg.Kinds = []schemas.Kind{schemas.Activity}
	cfg.MeterProvider = mp
	cfg.Concurrency, cfg.Lookahead = 2, 3
	cfg.ShutdownTimeout = 100 * time.Millisecond // the PUTs in flight are abandoned at the end
	w.start(nil, cfg)
	for i := range 8 {
		w.publish(schemas.Activity, activity(i), nil)
	}
	waitFor(t, 10*time.Second, "five messages held", func() bool {
		return scrapeMetrics(t, base).value(t, "cgworker_in_flight", nil) == 5
	})
}

// TestUnknownSubjectEventsAreCounted: an event on an unknown subject,
// dead-lettered, counts in cgworker_events_total under kind "unknown".
func TestUnknownSubjectEventsAreCounted(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	w.widenEventsStream(t)
	mp, base := metricsServer(t, nil)
	cfg := testConfig()
	cfg.MeterProvider = mp
	cfg.UnknownSubjectsInterval = 50 * time.Millisecond
	seq := w.publishOn("cg.events.typo", `{}`, nil)
	r := w.start(nil, cfg)
	waitFor(t, 10*time.Second, "dead-lettered", func() bool { _, ok := r.final(seq); return ok })
	labels := map[string]string{"kind": "unknown", "outcome": "dead-lettered"}
	waitFor(t, 10*time.Second, "counted", func() bool {
		return scrapeMetrics(t, base).value(t, "cgworker_events_total", labels) == 1
	})
}
