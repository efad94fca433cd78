package deadletter

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

func TestDeleteLetterTwice(t *testing.T) {
	t.Parallel()
	ctx, js, names := deleteFixture(t)
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

// TestDeleteBody: the body of a letter stored in the object store goes
// with it; a body already gone, or its whole bucket, is not an error.
func TestDeleteBody(t *testing.T) {
	t.Parallel()
	ctx, js, names := deleteFixture(t)
	obs, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: names.DLQBodiesBucket()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(ctx, "letter-1", []byte("body")); err != nil {
		t.Fatal(err)
	}
	h := nats.Header{HeaderBodyRef: {"letter-1"}}
	for i := range 2 {
		if err := deleteBody(ctx, js, names, h); err != nil {
			t.Fatalf("delete %d: %v", i+1, err)
		}
	}
	if _, err := obs.GetInfo(ctx, "letter-1"); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Errorf("the body is still there: %v", err)
	}
	if err := js.DeleteObjectStore(ctx, names.DLQBodiesBucket()); err != nil {
		t.Fatal(err)
	}
	if err := deleteBody(ctx, js, names, h); err != nil {
		t.Errorf("delete with the bucket gone: %v", err)
	}
}

// deleteFixture is a server of its own, a context bounding the test and
// the names of the prefix "t".
func deleteFixture(t *testing.T) (context.Context, jetstream.JetStream, queue.Names) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx, natstest.NewServer(t).JetStream(t), queue.NewNames("t")
}
