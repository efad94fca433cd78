package queue_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/natstest"
	"github.com/cgworker/cgworker/schemas"
)

func TestPublishStream(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if err := queue.EnsureStreams(f.ctx, f.js, queue.StreamConfig{Names: queue.NewNames("")}); err != nil {
		t.Fatal(err)
	}
	var many strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&many, "{\"n\":%d}\n\n", i)
	}
	for _, tc := range []struct {
		subject, in string
		want        []string
	}{
		{"cg.events.account", "{\n  \"Account Name\": \"ACME\"\n}\n", []string{"{\n  \"Account Name\": \"ACME\"\n}"}},
		{"cg.events.contact", "{\"Email\":\"a@b.c\"}\n\n   \n{\"Email\":\"d@e.f\"}\n", []string{`{"Email":"a@b.c"}`, `{"Email":"d@e.f"}`}},
		{"cg.events.activity", many.String(), nil},
	} {
		var progress bytes.Buffer
		c, err := queue.PublishStream(f.ctx, f.js, queue.StreamInput{Subject: tc.subject, Source: "stdin", Progress: &progress}, strings.NewReader(tc.in))
		n := c.Published
		if err != nil {
			t.Fatalf("%s: %v", tc.subject, err)
		}
		want := len(tc.want)
		if tc.want == nil {
			want = 1000
		}
		if n != want {
			t.Errorf("%s: published %d, want %d", tc.subject, n, want)
		}
		got := readSubject(t, f, tc.subject)
		if len(got) != want {
			t.Fatalf("%s: stream holds %d, want %d", tc.subject, len(got), want)
		}
		for i, w := range tc.want {
			if got[i] != w {
				t.Errorf("%s message %d = %q, want %q", tc.subject, i, got[i], w)
			}
		}
		if tc.want == nil && got[999] != `{"n":999}` {
			t.Errorf("last message = %q (order not kept)", got[999])
		}
	}
}

func TestPublishStreamFailsOnNack(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if _, err := f.js.CreateStream(f.ctx, jetstream.StreamConfig{Name: "SMALL", Subjects: []string{"small"}, MaxMsgSize: 100}); err != nil {
		t.Fatal(err)
	}
	c, err := queue.PublishStream(f.ctx, f.js, queue.StreamInput{Subject: "small", Source: "stdin"}, strings.NewReader("1\n2\n\""+strings.Repeat("long", 50)+"\"\n4\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err = %v, want one naming line 3", err)
	}
	if c.Published < 2 || c.Failed < 1 {
		t.Errorf("counts %+v, want the acknowledged ones and the failure counted", c)
	}
}

// TestPublishStreamRefusesOverSize: a document the API would refuse is an
// error naming its line, not a message that could only be dead-lettered.
func TestPublishStreamRefusesOverSize(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if err := queue.EnsureStreams(f.ctx, f.js, queue.StreamConfig{Names: queue.NewNames("")}); err != nil {
		t.Fatal(err)
	}
	long := `{"a":"` + strings.Repeat("x", schemas.MaxBodyBytes) + `"}`
	c, err := queue.PublishStream(f.ctx, f.js, queue.StreamInput{Subject: "cg.events.activity", Source: "stdin"}, strings.NewReader("{\"n\":1}\n\n"+long+"\n{\"n\":4}\n"))
	n := c.Published
	want := "line 3: document larger than 2097152 bytes; the API takes at most 2 MiB"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if n != 1 {
		t.Errorf("n = %d, want the one before it", n)
	}
	if got := readSubject(t, f, "cg.events.activity"); len(got) != 1 || got[0] != `{"n":1}` {
		t.Errorf("stream holds %q, want only the first document", got)
	}
}

// readSubject returns the bodies stored on subject, in order.
func readSubject(t *testing.T, f fixture, subject string) []string {
	t.Helper()
	var out []string
	for _, m := range natstest.Messages(t, f.js, "CG_EVENTS", subject) {
		out = append(out, string(m.Data))
	}
	return out
}

// TestPublishStreamWaitsAtMostTheTimeout: an acknowledgement that never
// comes (something that is not a stream takes the publish and never
// answers) ends the call after the publish timeout js was made with,
// naming the line, with nothing counted as published.
func TestPublishStreamWaitsAtMostTheTimeout(t *testing.T) {
	t.Parallel()
	f := setup(t)
	sub, err := f.nc.Subscribe("silent", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := f.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(f.nc, jetstream.WithPublishAsyncTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, err := queue.PublishStream(f.ctx, js, queue.StreamInput{Subject: "silent", Source: "stdin"}, strings.NewReader("1\n2\n"))
	if !errors.Is(err, jetstream.ErrAsyncPublishTimeout) || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("err = %v, want the publish timeout naming line 1", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("took %s with a 200ms publish timeout", elapsed)
	}
	// Line 2 is sent before line 1 times out unless the machine stalls.
	if c.Published != 0 || c.Failed < 1 {
		t.Errorf("counts %+v, want the publishes sent counted as failed", c)
	}
}
