package deadletter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
)

// An object in CG_DLQ_BODIES is the headers the small letter leaves out, as
// one line of JSON (a JSON text holds no raw newline), a newline, and the
// body byte for byte. One object keeps body and headers together, so that
// neither can be found without the other.

func encodeBodyHeader(h nats.Header) ([]byte, error) {
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode dead-letter headers: %w", err)
	}
	return append(b, '\n'), nil
}

func decodeBody(data []byte) (nats.Header, []byte, error) {
	head, body, ok := bytes.Cut(data, []byte{'\n'})
	if !ok {
		return nil, nil, errors.New("no header line")
	}
	var h nats.Header
	if err := json.Unmarshal(head, &h); err != nil {
		return nil, nil, fmt.Errorf("header line: %w", err)
	}
	return h, body, nil
}

// bodyTimeout bounds reading one body from the object store.
const bodyTimeout = 2 * time.Minute

// resolve gives a letter whose body is in the object store (CG-Body-Ref)
// its body and left-out headers back, so that Show and Replay see it as
// it would have been stored whole. Other letters are left as they are.
func resolve(ctx context.Context, js jetstream.JetStream, names queue.Names, l *Letter) error {
	ref := l.Header.Get(HeaderBodyRef)
	if ref == "" {
		return nil
	}
	obs, err := js.ObjectStore(ctx, names.DLQBodiesBucket())
	if err != nil {
		return fmt.Errorf("dead letter %d: its body is in object store %s: %w", l.Seq, names.DLQBodiesBucket(), err)
	}
	if _, ok := ctx.Deadline(); !ok {
		// Without a deadline nats.go allows its default 5 s for the
		// whole object; megabytes on a busy server may need longer.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, bodyTimeout)
		defer cancel()
	}
	data, err := obs.GetBytes(ctx, ref)
	if err != nil {
		return fmt.Errorf("dead letter %d: body %s in object store %s: %w", l.Seq, ref, names.DLQBodiesBucket(), err)
	}
	h, body, err := decodeBody(data)
	if err != nil {
		return fmt.Errorf("dead letter %d: body %s in object store %s: %w", l.Seq, ref, names.DLQBodiesBucket(), err)
	}
	merged := make(nats.Header, len(h)+len(l.Header))
	maps.Copy(merged, h)
	maps.Copy(merged, l.Header) // the letter's own win
	l.Header, l.Data = merged, body
	return nil
}

// deleteBody removes the object of a letter stored with CG-Body-Ref, after
// the letter itself is gone (the reverse of Store's order). An object
// already gone is not an error, and neither is a bucket deleted with it.
func deleteBody(ctx context.Context, js jetstream.JetStream, names queue.Names, h nats.Header) error {
	ref := h.Get(HeaderBodyRef)
	if ref == "" {
		return nil
	}
	obs, err := js.ObjectStore(ctx, names.DLQBodiesBucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("object store %s: %w", names.DLQBodiesBucket(), err)
	}
	if err := obs.Delete(ctx, ref); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete body %s from object store %s: %w", ref, names.DLQBodiesBucket(), err)
	}
	return nil
}
