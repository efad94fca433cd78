package deadletter

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/natstest"
)

func TestDeleteLetterTwice(t *testing.T) {
	t.Parallel()
	srv := natstest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	js := srv.JetStream(t)
	names := queue.NewNames("t")
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T_DLQ", Subjects: []string{"t.dlq.>"}})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, "t.dlq.activity", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := deleteLetter(ctx, js, names, stream, &Letter{Seq: ack.Sequence}); err != nil {
			t.Fatalf("delete %d: %v", i+1, err)
		}
	}
	// A sequence never stored is gone as well.
	if err := deleteLetter(ctx, js, names, stream, &Letter{Seq: 99}); err != nil {
		t.Errorf("delete of an unknown sequence: %v", err)
	}
	// A delete that fails for another reason is still an error.
	if err := js.DeleteStream(ctx, "T_DLQ"); err != nil {
		t.Fatal(err)
	}
	if err := deleteLetter(ctx, js, names, stream, &Letter{Seq: ack.Sequence}); err == nil {
		t.Error("delete from a deleted stream succeeded")
	}
}
