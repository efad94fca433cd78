package queue_test

import (
	"context"
	"sort"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/cgworker/cgworker/queue"
)

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestHeaderCarrierGetAnyCase(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"traceparent", "Traceparent", "TRACEPARENT", "TraceParent"} {
		h := nats.Header{key: {traceparent}}
		c := queue.HeaderCarrier(h)
		if got := c.Get("traceparent"); got != traceparent {
			t.Errorf("header %q: Get = %q", key, got)
		}
		ctx := propagation.TraceContext{}.Extract(context.Background(), c)
		if sc := trace.SpanContextFromContext(ctx); !sc.IsValid() || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
			t.Errorf("header %q: extracted %v", key, sc)
		}
	}
	// An exact match wins over another spelling.
	c := queue.HeaderCarrier(nats.Header{"Traceparent": {"other"}, "traceparent": {"exact"}})
	if got := c.Get("traceparent"); got != "exact" {
		t.Errorf("Get = %q, want the exact match", got)
	}
	if got := c.Get("tracestate"); got != "" {
		t.Errorf("missing key: Get = %q", got)
	}
}

func TestHeaderCarrierSetReplacesOtherSpellings(t *testing.T) {
	t.Parallel()
	h := nats.Header{"Traceparent": {"stale"}, "TRACEPARENT": {"stale"}, "CG-Configuration": {"acct"}}
	c := queue.HeaderCarrier(h)
	c.Set("traceparent", traceparent)
	if len(h) != 2 || h["traceparent"][0] != traceparent || h["CG-Configuration"][0] != "acct" {
		t.Errorf("header after Set = %v", h)
	}
	keys := c.Keys()
	sort.Strings(keys)
	if len(keys) != 2 || keys[0] != "CG-Configuration" || keys[1] != "traceparent" {
		t.Errorf("Keys = %v", keys)
	}
}

func TestHeaderCarrierInjectRoundTrip(t *testing.T) {
	t.Parallel()
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3},
		SpanID:     trace.SpanID{4, 5, 6},
		TraceFlags: trace.FlagsSampled,
	})
	h := nats.Header{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), queue.HeaderCarrier(h))
	if h.Get("traceparent") == "" {
		t.Fatalf("nothing injected: %v", h)
	}
	got := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), queue.HeaderCarrier(h)))
	if got.TraceID() != sc.TraceID() || got.SpanID() != sc.SpanID() {
		t.Errorf("round trip: %v, want %v", got, sc)
	}
}
