package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Publish publishes n copies of body on subject and returns the stream
// sequence of the last once JetStream has acknowledged every one. It
// publishes asynchronously, so a backlog of thousands takes a fraction of a
// second; any publish that fails fails the test.
func Publish(tb testing.TB, js jetstream.JetStream, subject string, body []byte, n int) (last uint64) {
	tb.Helper()
	acks := make([]jetstream.PubAckFuture, 0, n)
	for range n {
		f, err := js.PublishAsync(subject, body, jetstream.WithStallWait(time.Minute))
		if err != nil {
			tb.Fatalf("natstest: publish on %s: %v", subject, err)
		}
		acks = append(acks, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		tb.Fatalf("natstest: %d publishes on %s not acknowledged within a minute", js.PublishAsyncPending(), subject)
	}
	for _, f := range acks { // every one is resolved by now
		select {
		case ack := <-f.Ok():
			last = ack.Sequence
		case err := <-f.Err():
			tb.Fatalf("natstest: publish on %s: %v", subject, err)
		}
	}
	return last
}
