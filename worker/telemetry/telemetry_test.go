package telemetry

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// remoteParent is a context carrying a sampled span context from elsewhere.
func remoteParent() (context.Context, trace.SpanContext) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	})
	return trace.ContextWithRemoteSpanContext(context.Background(), sc), sc
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return string(b)
}

// With nothing configured no span is recorded, yet a span started under a
// message's context carries that context on; /metrics serves.
func TestSetupWithoutOTELVariables(t *testing.T) {
	t.Parallel()
	tel, err := Setup(context.Background(), Options{LookupEnv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	if _, ok := tel.TracerProvider.(noop.TracerProvider); !ok {
		t.Fatalf("tracer provider %T, want the no-op one", tel.TracerProvider)
	}
	ctx, parent := remoteParent()
	_, span := tel.TracerProvider.Tracer("t").Start(ctx, "process")
	if span.IsRecording() || span.SpanContext().TraceID() != parent.TraceID() {
		t.Errorf("span recording %v, trace %s: want a non-recording span in the parent's trace", span.IsRecording(), span.SpanContext().TraceID())
	}
	span.End()

	c, err := tel.MeterProvider.Meter("t").Int64Counter("cgtest.hits")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 2)
	srv := httptest.NewServer(tel.Metrics)
	t.Cleanup(srv.Close)
	if body := getBody(t, srv.URL); !strings.Contains(body, "\ncgtest_hits_total{") || !strings.Contains(body, "} 2\n") {
		t.Errorf("/metrics lacks cgtest_hits_total 2:\n%s", body)
	}
}

// Which variables turn OTLP export on (autoexport itself reads os env, so
// Setup's choice is tested here and its effect in TestOTLPExport).
func TestExportDecision(t *testing.T) {
	t.Parallel()
	const ep = "http://collector:4318"
	cases := []struct {
		env             map[string]string
		traces, metrics bool
	}{
		{nil, false, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep}, true, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ep}, true, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": ep}, false, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, false},
		{map[string]string{"OTEL_METRICS_EXPORTER": "otlp"}, false, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_TRACES_EXPORTER": "none"}, false, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ep, "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}, false, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, false, false},
	}
	for _, c := range cases {
		lookup := env(c.env)
		traces := exporting(lookup, "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
		metrics := exporting(lookup, "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
		if traces != c.traces || metrics != c.metrics {
			t.Errorf("%v: traces %v metrics %v, want %v %v", c.env, traces, metrics, c.traces, c.metrics)
		}
	}
	for v, want := range map[string]bool{"true": true, "TRUE": true, " True ": true, "false": false, "": false, "1": false} {
		if got := sdkDisabled(env(map[string]string{"OTEL_SDK_DISABLED": v})); got != want {
			t.Errorf("OTEL_SDK_DISABLED=%q: disabled %v, want %v", v, got, want)
		}
	}
	// Disabled wins over a configured endpoint: no recording provider.
	tel, err := Setup(context.Background(), Options{LookupEnv: env(map[string]string{
		"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": ep})})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	if _, ok := tel.TracerProvider.(noop.TracerProvider); !ok {
		t.Errorf("OTEL_SDK_DISABLED=true: tracer provider %T", tel.TracerProvider)
	}
	if len(tel.shutdown) != 1 { // the meter provider alone, Prometheus only
		t.Errorf("OTEL_SDK_DISABLED=true: %d providers to shut down", len(tel.shutdown))
	}
}

// collector counts OTLP/HTTP export requests by path.
type collector struct {
	mu    sync.Mutex
	posts map[string]int
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	c.mu.Lock()
	c.posts[r.URL.Path]++
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (c *collector) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.posts[path]
}

// emit records one span and one measurement, serves /metrics once, and
// shuts telemetry down within a deadline.
func emit(t *testing.T, tel *Telemetry, shutdownWithin time.Duration) error {
	t.Helper()
	_, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "work")
	span.End()
	c, err := tel.MeterProvider.Meter("t").Int64Counter("cgtest.work")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(context.Background(), 1)
	srv := httptest.NewServer(tel.Metrics)
	defer srv.Close()
	if body := getBody(t, srv.URL); !strings.Contains(body, "cgtest_work_total") {
		t.Errorf("/metrics lacks cgtest_work_total")
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownWithin)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tel.Shutdown(ctx) }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown ignored its context")
		return nil
	}
}

// Not parallel: autoexport reads the process environment, so the cases
// set it with t.Setenv (no parallel test of this package runs meanwhile).
func TestOTLPExport(t *testing.T) {
	col := &collector{posts: map[string]int{}}
	srv := httptest.NewServer(col)
	t.Cleanup(srv.Close)

	t.Run("endpoint set: traces and metrics exported, flushed on shutdown", func(t *testing.T) {
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
		t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
		tel, err := Setup(context.Background(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tel.TracerProvider.(*sdktrace.TracerProvider); !ok {
			t.Fatalf("tracer provider %T", tel.TracerProvider)
		}
		if err := emit(t, tel, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if col.count("/v1/traces") == 0 || col.count("/v1/metrics") == 0 {
			t.Fatalf("exports: %v", col.posts)
		}
	})

	for name, vars := range map[string]map[string]string{
		"exporters none":    {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"},
		"SDK disabled":      {"OTEL_SDK_DISABLED": "true"},
		"nothing but proto": {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
	} {
		t.Run(name+": nothing exported", func(t *testing.T) {
			col.mu.Lock()
			clear(col.posts)
			col.mu.Unlock()
			if name != "nothing but proto" {
				t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
			}
			for k, v := range vars {
				t.Setenv(k, v)
			}
			tel, err := Setup(context.Background(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := emit(t, tel, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if len(col.posts) != 0 {
				t.Fatalf("exported: %v", col.posts)
			}
		})
	}

	t.Run("collector unreachable: Setup succeeds, Shutdown keeps to its deadline", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "http://" + ln.Addr().String()
		_ = ln.Close()
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", closed)
		tel, err := Setup(context.Background(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		// An error (the export failed) is expected; only a hang is not.
		_ = emit(t, tel, 2*time.Second)
	})
}

// Export through the transport: span named "METHOD /path" (no query), and
// the request carries that span's traceparent without any global set up.
func TestHTTPTransport(t *testing.T) {
	t.Parallel()
	api, headers := headerEcho(t, 1)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	client := &http.Client{Transport: HTTPTransport(nil, tp, nil)}

	ctx, parent := remoteParent()
	putEach(t, client, api.URL+"/records/?configuration=account", ctx)
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Name() != "PUT /records/" || spans[0].SpanKind() != trace.SpanKindClient {
		t.Fatalf("spans %v", spans)
	}
	sc := spans[0].SpanContext()
	want := "00-" + parent.TraceID().String() + "-" + sc.SpanID().String() + "-01"
	if tp := (<-headers).Get("Traceparent"); tp != want {
		t.Errorf("traceparent %q, want %q", tp, want)
	}
}

// With spans recorded, a request whose trace is not sampled makes no client
// span (the sampler's decision is taken before otelhttp's work) yet still
// carries its trace context, unsampled, to the API; a request without any
// trace context is left to the sampler, which starts a trace.
func TestHTTPTransportUnsampledParent(t *testing.T) {
	t.Parallel()
	api, headers := headerEcho(t, 2)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	client := &http.Client{Transport: HTTPTransport(nil, tp, nil)}

	_, sampled := remoteParent()
	unsampled := sampled.WithTraceFlags(0)
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), unsampled)
	putEach(t, client, api.URL+"/activities/", ctx, context.Background())
	want := "00-" + unsampled.TraceID().String() + "-" + unsampled.SpanID().String() + "-00"
	if got := (<-headers).Get("Traceparent"); got != want {
		t.Errorf("traceparent %q, want the unsampled parent's %q", got, want)
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d client spans, want 1 (for the request that starts a trace)", len(spans))
	}
	if spans[0].Parent().IsValid() {
		t.Errorf("client span has parent %v, want a new trace", spans[0].Parent())
	}
	if got, wantRoot := (<-headers).Get("Traceparent"), "00-"+spans[0].SpanContext().TraceID().String()+"-"+spans[0].SpanContext().SpanID().String()+"-01"; got != wantRoot {
		t.Errorf("traceparent %q, want the new trace's %q", got, wantRoot)
	}
}

// With the no-op provider the transport only propagates: the producer's
// context still reaches the API, the caller's request is left as it was.
func TestHTTPTransportWithoutTracing(t *testing.T) {
	t.Parallel()
	api, headers := headerEcho(t, 2)
	client := &http.Client{Transport: HTTPTransport(nil, noop.NewTracerProvider(), nil)}

	ctx, parent := remoteParent()
	putEach(t, client, api.URL+"/activities/", ctx, context.Background())
	want := "00-" + parent.TraceID().String() + "-" + parent.SpanID().String() + "-01"
	if got := (<-headers).Get("Traceparent"); got != want {
		t.Errorf("traceparent %q, want the producer's %q", got, want)
	}
	if got := (<-headers).Get("Traceparent"); got != "" {
		t.Errorf("traceparent %q without any trace context", got)
	}
}

// A request that carries its trace context already (cgapi sets it on the
// requests it builds) is sent as it is, not cloned to set it again.
func TestHTTPTransportKeepsATraceparentSet(t *testing.T) {
	t.Parallel()
	api, headers := headerEcho(t, 1)
	client := &http.Client{Transport: HTTPTransport(nil, noop.NewTracerProvider(), nil)}
	ctx, _ := remoteParent()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, api.URL+"/activities/", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	const set = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
	req.Header.Set("Traceparent", set)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if got := (<-headers).Get("Traceparent"); got != set {
		t.Errorf("traceparent %q, want the one the request carried, %q", got, set)
	}
}

func TestLogHandlerAddsTraceIDs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "c").WithGroup("g")
	ctx, parent := remoteParent()
	log.InfoContext(ctx, "with span", "k", "v")
	log.Info("without span")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	if !strings.Contains(lines[0], `"trace_id":"`+parent.TraceID().String()+`"`) || !strings.Contains(lines[0], `"span_id":"`+parent.SpanID().String()+`"`) {
		t.Errorf("no trace ids: %s", lines[0])
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Errorf("trace id without a span: %s", lines[1])
	}
}

// putEach makes one PUT to url under each of ctxs, and checks that the
// transport left the caller's request as it was.
func putEach(t *testing.T, client *http.Client, url string, ctxs ...context.Context) {
	t.Helper()
	for _, c := range ctxs {
		req, err := http.NewRequestWithContext(c, http.MethodPut, url, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if req.Header.Get("Traceparent") != "" {
			t.Error("the caller's request was changed")
		}
	}
}

// headerEcho is an API that answers 204 and hands the test the headers of
// each of up to n requests.
func headerEcho(t *testing.T, n int) (*httptest.Server, <-chan http.Header) {
	headers := make(chan http.Header, n)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers <- r.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(api.Close)
	return api, headers
}
