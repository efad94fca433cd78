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
	for i, want := range []bool{true, false} {
		if deleted, err := deleteLetter(ctx, js, names, stream, &Letter{Seq: ack.Sequence}); err != nil || deleted != want {
			t.Fatalf("delete %d: deleted %v, %v; want deleted %v", i+1, deleted, err, want)
		}
	}
	// A sequence never stored is gone as well.
	if deleted, err := deleteLetter(ctx, js, names, stream, &Letter{Seq: 99}); err != nil || deleted {
		t.Errorf("delete of an unknown sequence: deleted %v, %v", deleted, err)
	}
	// A delete that fails for another reason is still an error.
	if err := js.DeleteStream(ctx, "T_DLQ"); err != nil {
		t.Fatal(err)
	}
	if _, err := deleteLetter(ctx, js, names, stream, &Letter{Seq: ack.Sequence}); err == nil {
		t.Error("delete from a deleted stream succeeded")
	}
}
