package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue/natstest"
)

func TestRestartKeepsPortAndData(t *testing.T) {
	t.Parallel()
	srv := natstest.NewServer(t)
	url := srv.URL
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)

	js := srv.JetStream(t, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s", []byte("before")); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	srv.Stop() // stopping twice is harmless
	srv.Start(t)
	srv.Start(t) // so is starting twice
	if srv.URL != url {
		t.Errorf("URL changed: %s -> %s", url, srv.URL)
	}
	srv.Restart(t)

	for {
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err := js.Publish(pctx, "s", []byte("after"))
		pcancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no publish after restart: %v", err)
		}
	}
	s, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
}
