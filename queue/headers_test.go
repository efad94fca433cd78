package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/natstest"
)

// TestHeadersLost publishes, over the raw protocol, a message whose header
// section has a folded line, and checks what nats.go does with it (nil
// headers, an async error) and that HeadersLost tells it from a message
// without headers and from one with good headers.
func TestHeadersLost(t *testing.T) {
	t.Parallel()
	f := setup(t)
	asyncErr := make(chan error, 10)
	js := f.srv.JetStream(t, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case asyncErr <- err:
		default:
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}})
	if err != nil {
		t.Fatal(err)
	}

	plain, err := js.Publish(ctx, "raw.plain", []byte("no headers"))
	if err != nil {
		t.Fatal(err)
	}
	good := natstest.PublishRawHeader(t, f.srv.URL, "raw.good", []byte("NATS/1.0\r\nCG-Reference: r1\r\n\r\n"), []byte("good headers"))
	folded := natstest.PublishRawHeader(t, f.srv.URL, "raw.folded",
		[]byte("NATS/1.0\r\nCG-Reference: r1\r\n continued on a folded line\r\nCG-Configuration: c\r\n\r\n"), []byte("folded"))

	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Fetch(3, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]bool{plain.Sequence: false, good: false, folded: true}
	n := 0
	var foldedMsg jetstream.Msg
	var foldedMeta *jetstream.MsgMetadata
	for m := range batch.Messages() {
		n++
		meta, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		if meta.Sequence.Stream == folded {
			foldedMsg, foldedMeta = m, meta
		}
		if meta.Sequence.Stream == folded && m.Headers() != nil {
			t.Errorf("nats.go decoded the folded headers (%v): the case this guards against is gone", m.Headers())
		}
		lost, err := queue.HeadersLost(ctx, js, m, meta)
		if err != nil {
			t.Fatalf("seq %d: %v", meta.Sequence.Stream, err)
		}
		if lost != want[meta.Sequence.Stream] {
			t.Errorf("%s (seq %d): HeadersLost = %v", m.Subject(), meta.Sequence.Stream, lost)
		}
	}
	if n != 3 || batch.Error() != nil {
		t.Fatalf("fetched %d messages: %v", n, batch.Error())
	}
	select {
	case err := <-asyncErr:
		if !errors.Is(err, nats.ErrBadHeaderMsg) {
			t.Errorf("async error %v, want %v", err, nats.ErrBadHeaderMsg)
		}
	case <-time.After(10 * time.Second):
		t.Error("nats.go reported nothing to the async error handler")
	}

	if foldedMsg == nil {
		t.Fatal("folded message not fetched")
	}

	// The stored copy cannot be read (no JetStream behind that domain):
	// an error, never a guess.
	elsewhere, err := jetstream.NewWithDomain(js.Conn(), "nowhere")
	if err != nil {
		t.Fatal(err)
	}
	if lost, err := queue.HeadersLost(ctx, elsewhere, foldedMsg, foldedMeta); err == nil {
		t.Errorf("stored copy unreadable: HeadersLost = %v, nil; want an error", lost)
	}
	// Gone from the stream: nothing to compare with, not lost.
	if err := s.DeleteMsg(ctx, folded); err != nil {
		t.Fatal(err)
	}
	if lost, err := queue.HeadersLost(ctx, js, foldedMsg, foldedMeta); lost || err != nil {
		t.Errorf("deleted: HeadersLost = %v, %v; want false, nil", lost, err)
	}
}
