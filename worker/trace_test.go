package worker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/cgapi/cgapitest"
	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/schemas"
	"github.com/cgworker/cgworker/worker"
	"github.com/cgworker/cgworker/worker/telemetry"
)

// traceSecret is the client secret of the traced tests: it must appear in
// no span.
const traceSecret = "s3cret-7f1e-never-in-spans"

// tracedClient is an API client of the emulator wired as in production:
// its calls get client spans from tp and send traceparent.
func (w *world) tracedClient(tp trace.TracerProvider) *cgapi.Client {
	cfg := cgapitest.Config(w.emu, emulator.Options{ClientSecret: traceSecret})
	cfg.Timeout = 5 * time.Second
	cfg.Transport = telemetry.HTTPTransport(cgapi.NewTransport(), tp, nil)
	c, err := cgapi.New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// recorder returns an in-memory span recorder and a tracer provider that
// records every span into it.
func recorder(t *testing.T) (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return rec, tp
}

// producerSpan starts a span of a producer (a tracer provider of its own)
// and returns its context and the traceparent it would send.
func producerSpan(t *testing.T) (trace.SpanContext, string) {
	_, tp := recorder(t)
	ctx, span := tp.Tracer("producer").Start(context.Background(), "send cg.events.activity",
		trace.WithSpanKind(trace.SpanKindProducer))
	defer span.End()
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	return span.SpanContext(), carrier.Get("traceparent")
}

// traceparentOf parses a W3C traceparent into its trace and parent ids.
func traceparentOf(t *testing.T, v string) (trace.TraceID, trace.SpanID) {
	t.Helper()
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": v}))
	if !sc.IsValid() {
		t.Fatalf("traceparent %q is not valid", v)
	}
	return sc.TraceID(), sc.SpanID()
}

// spansOf returns the ended spans of trace id, by name.
func spansOf(rec *tracetest.SpanRecorder, id trace.TraceID) map[string][]sdktrace.ReadOnlySpan {
	out := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() == id {
			out[s.Name()] = append(out[s.Name()], s)
		}
	}
	return out
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	out := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value
	}
	return out
}

// one returns the single span named name, failing otherwise.
func one(t *testing.T, spans map[string][]sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	if len(spans[name]) != 1 {
		names := make([]string, 0, len(spans))
		for n, ss := range spans {
			names = append(names, fmt.Sprintf("%s×%d", n, len(ss)))
		}
		t.Fatalf("%d spans named %q in the trace, want 1 (spans: %v)", len(spans[name]), name, names)
	}
	return spans[name][0]
}

// childOf asserts that child's parent is parent.
func childOf(t *testing.T, child, parent sdktrace.ReadOnlySpan) {
	t.Helper()
	if child.Parent().SpanID() != parent.SpanContext().SpanID() || child.Parent().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("span %q has parent %s, want %q (%s)", child.Name(), child.Parent().SpanID(), parent.Name(), parent.SpanContext().SpanID())
	}
}

// putsOf returns the emulator's recorded requests to path whose body
// contains marker.
func (w *world) putsOf(path, marker string) []emulator.Request {
	var out []emulator.Request
	for _, r := range w.emu.Requests() {
		if r.Method == "PUT" && r.Path == path && strings.Contains(string(r.Body), marker) {
			out = append(out, r)
		}
	}
	return out
}

// Producers spell the header "traceparent" (the W3C form) or
// "Traceparent" (Go's canonical form): the consumer span continues the
// producer's trace either way, and the PUT carries it on to the API.
func TestConsumerSpanContinuesProducerTrace(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{ClientSecret: traceSecret})
	rec, tp := recorder(t)
	cfg := testConfig()
	cfg.TracerProvider = tp
	r := w.startWith(nil, w.tracedClient(tp), cfg)

	for _, hdr := range []string{"traceparent", "Traceparent"} {
		t.Run(hdr, func(t *testing.T) {
			producer, tparent := producerSpan(t)
			marker := "marker-" + hdr
			body := `{"account":"ACME","type":"T","source":"S","additional_information_object":{"m":"` + marker + `"}}`
			seq := w.publish(schemas.Activity, body, map[string]string{
				hdr: tparent, "tracestate": "cg=test", "Nats-Msg-Id": "id-" + hdr,
			})
			waitFor(t, 10*time.Second, "delivered", func() bool { _, ok := r.final(seq); return ok })
			if s, _ := r.final(seq); s.Action != worker.Ack {
				t.Fatalf("outcome %v", s.Action)
			}

			var spans map[string][]sdktrace.ReadOnlySpan
			waitFor(t, 5*time.Second, "the message's spans ended", func() bool {
				spans = spansOf(rec, producer.TraceID())
				return len(spans["process cg.events.activity"]) == 1
			})
			process := one(t, spans, "process cg.events.activity")
			if process.SpanKind() != trace.SpanKindConsumer {
				t.Errorf("process span kind %v", process.SpanKind())
			}
			if p := process.Parent(); p.SpanID() != producer.SpanID() || !p.IsRemote() {
				t.Errorf("process span parent %s (remote %v), want the producer's %s", p.SpanID(), p.IsRemote(), producer.SpanID())
			}
			if ts := process.Parent().TraceState().Get("cg"); ts != "test" {
				t.Errorf("tracestate not carried: cg=%q", ts)
			}
			a := attrs(process)
			want := map[attribute.Key]attribute.Value{
				"messaging.system":                      attribute.StringValue("nats"),
				"messaging.operation.type":              attribute.StringValue("process"),
				"messaging.destination.name":            attribute.StringValue("cg.events.activity"),
				"messaging.consumer.group.name":         attribute.StringValue("cgworker-activity"),
				"messaging.message.id":                  attribute.StringValue("id-" + hdr),
				"messaging.nats.message.delivery_count": attribute.Int64Value(1),
				"messaging.nats.stream.sequence":        attribute.Int64Value(int64(seq)),
				"messaging.nats.stream.name":            attribute.StringValue("CG_EVENTS"),
				"cgworker.outcome":                      attribute.StringValue("delivered"),
			}
			for k, v := range want {
				if a[k] != v {
					t.Errorf("attribute %s = %v, want %v", k, a[k].Emit(), v.Emit())
				}
			}
			childOf(t, one(t, spans, "validate"), process)
			put := one(t, spans, "PUT /activities/")
			childOf(t, put, process)
			if put.SpanKind() != trace.SpanKindClient {
				t.Errorf("PUT span kind %v", put.SpanKind())
			}

			// The emulator saw the PUT's span as the parent.
			reqs := w.putsOf("/activities/", marker)
			if len(reqs) != 1 {
				t.Fatalf("%d PUTs recorded", len(reqs))
			}
			tid, sid := traceparentOf(t, reqs[0].Header.Get("traceparent"))
			if tid != producer.TraceID() || sid != put.SpanContext().SpanID() {
				t.Errorf("PUT traceparent %q: want trace %s, parent %s", reqs[0].Header.Get("traceparent"), producer.TraceID(), put.SpanContext().SpanID())
			}
		})
	}
}

// A retried message has a backoff span per wait and a PUT span per
// attempt, all in the producer's trace; a rejected message's dead letter is
// published under a PRODUCER span and carries its context.
func TestRetriesAndDeadLettersAreTraced(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{ClientSecret: traceSecret})
	rec, tp := recorder(t)
	cfg := testConfig()
	cfg.TracerProvider = tp
	r := w.startWith(nil, w.tracedClient(tp), cfg)

	// Retried: two 503s, then delivered.
	producer, tparent := producerSpan(t)
	const retried = "marker-retried-body"
	w.emu.FailNext(emulator.ActivitiesPath, 503, 2)
	seq := w.publish(schemas.Activity, `{"account":"ACME","type":"T","source":"S","additional_information_object":{"m":"`+retried+`"}}`,
		map[string]string{"traceparent": tparent})
	waitFor(t, 10*time.Second, "retried message delivered", func() bool { _, ok := r.final(seq); return ok })
	var spans map[string][]sdktrace.ReadOnlySpan
	waitFor(t, 5*time.Second, "process span ended", func() bool {
		spans = spansOf(rec, producer.TraceID())
		return len(spans["process cg.events.activity"]) == 1
	})
	process := one(t, spans, "process cg.events.activity")
	if n := len(spans["backoff"]); n != 2 {
		t.Errorf("%d backoff spans, want 2", n)
	}
	for _, b := range spans["backoff"] {
		childOf(t, b, process)
		if reason := attrs(b)["cgworker.retry.reason"]; reason.AsString() != "unavailable" {
			t.Errorf("backoff reason %q", reason.AsString())
		}
	}
	if n := len(spans["PUT /activities/"]); n != 3 {
		t.Errorf("%d PUT spans, want 3", n)
	}
	reqs := w.putsOf("/activities/", "") // the emulator keeps no body of a scripted failure
	if len(reqs) != 3 {
		t.Fatalf("%d PUTs recorded, want 3", len(reqs))
	}
	for _, req := range reqs {
		if tid, _ := traceparentOf(t, req.Header.Get("traceparent")); tid != producer.TraceID() {
			t.Errorf("attempt with traceparent %q, not in the producer's trace", req.Header.Get("traceparent"))
		}
	}

	// Dead-lettered: fails its schema (account missing).
	producer, tparent = producerSpan(t)
	const rejected = "marker-rejected-body"
	seq = w.publish(schemas.Activity, `{"type":"T","source":"S","additional_information_object":{"m":"`+rejected+`"}}`,
		map[string]string{"Traceparent": tparent})
	waitFor(t, 10*time.Second, "dead-lettered", func() bool { s, ok := r.final(seq); return ok && s.Action == worker.DeadLetter })
	waitFor(t, 5*time.Second, "process span ended", func() bool {
		spans = spansOf(rec, producer.TraceID())
		return len(spans["process cg.events.activity"]) == 1
	})
	process = one(t, spans, "process cg.events.activity")
	dl := one(t, spans, "deadletter publish")
	childOf(t, dl, process)
	if dl.SpanKind() != trace.SpanKindProducer {
		t.Errorf("dead-letter span kind %v, want producer", dl.SpanKind())
	}
	if a := attrs(dl); !strings.HasPrefix(a["messaging.destination.name"].AsString(), "cg.dlq.activity.CG_EVENTS-") || a["cgworker.error_kind"].AsString() != "schema" {
		t.Errorf("dead-letter span attributes %v", dl.Attributes())
	}
	if a := attrs(process); a["cgworker.outcome"].AsString() != "dead-lettered" || a["cgworker.error_kind"].AsString() != "schema" {
		t.Errorf("process span attributes %v", process.Attributes())
	}
	if process.Status().Code.String() != "Error" {
		t.Errorf("process span status %v", process.Status())
	}
	if n := len(spans["PUT /activities/"]); n != 0 {
		t.Errorf("%d PUT spans for an invalid event", n)
	}
	dls := w.deadLetters()
	if len(dls) != 1 {
		t.Fatalf("%d dead letters", len(dls))
	}
	// The dead letter's headers carry the dead-letter span, once, in
	// lower case (the producer's "Traceparent" spelling is replaced).
	if v := dls[0].Header.Values("Traceparent"); len(v) != 0 {
		t.Errorf("stale Traceparent kept: %v", v)
	}
	tid, sid := traceparentOf(t, dls[0].Header.Get("traceparent"))
	if tid != producer.TraceID() || sid != dl.SpanContext().SpanID() {
		t.Errorf("dead letter traceparent %q: want trace %s, parent %s", dls[0].Header.Get("traceparent"), producer.TraceID(), dl.SpanContext().SpanID())
	}

	// No span carries the client secret or the events' bodies.
	for _, s := range rec.Ended() {
		texts := []string{s.Name(), s.Status().Description}
		for _, kv := range s.Attributes() {
			texts = append(texts, string(kv.Key)+"="+kv.Value.Emit())
		}
		for _, e := range s.Events() {
			texts = append(texts, e.Name)
			for _, kv := range e.Attributes {
				texts = append(texts, string(kv.Key)+"="+kv.Value.Emit())
			}
		}
		for _, text := range texts {
			for _, secret := range []string{traceSecret, retried, rejected, `"account"`} {
				if strings.Contains(text, secret) {
					t.Errorf("span %q leaks %q: %s", s.Name(), secret, text)
				}
			}
		}
	}
	// The token call was traced too (and leaked nothing, above).
	var token bool
	for _, s := range rec.Ended() {
		token = token || s.Name() == "POST "+emulator.TokenPath
	}
	if !token {
		t.Error("no span for the token call")
	}
}
