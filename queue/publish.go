package queue

import (
	"context"
	"fmt"
	"io"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/schemas"
)

// Publish publishes msg with JetStream under message id msgID (unless
// empty) and waits for the publish acknowledgement. A duplicate (the
// stream already holds msgID within its duplicate window) is a success:
// the message is stored; ack.Duplicate tells the caller it was stored
// before.
func Publish(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, msgID string, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if msgID != "" {
		opts = append(opts[:len(opts):len(opts)], jetstream.WithMsgID(msgID))
	}
	ack, err := js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		return nil, fmt.Errorf("publish to %s: %w", msg.Subject, err)
	}
	return ack, nil
}

// publishWindow bounds the publishes PublishStream has in flight: enough
// to hide the round trip, few enough to stop soon after a failure.
const publishWindow = 256

// publishProgressEvery is how often PublishStream reports progress.
const publishProgressEvery = 10_000

// PublishStream publishes the documents of r to subject, as `cgworker
// publish` does: one message when the whole input is one JSON value,
// else one per non-blank line (see schemas.ReadDocuments). Bodies are
// published trimmed but otherwise as they are; the worker dead-letters
// what is not valid. A document larger than schemas.MaxBodyBytes is an
// error instead, since the API would only refuse it. Publishes are
// pipelined and each is acknowledged by the stream. On the first failure
// it stops reading, waits for what is in flight, and returns the error
// naming the input line; n counts the messages the stream acknowledged.
// When progress is not nil, a line is written to it every 10,000 messages.
func PublishStream(ctx context.Context, js jetstream.JetStream, subject string, r io.Reader, progress io.Writer) (n int, err error) {
	type pending struct {
		line int
		fut  jetstream.PubAckFuture
	}
	var inflight []pending
	var firstErr error

	// settle waits for the oldest publish and counts it.
	settle := func() error {
		p := inflight[0]
		inflight = inflight[1:]
		select {
		case <-p.fut.Ok():
			n++
			if progress != nil && n%publishProgressEvery == 0 {
				fmt.Fprintf(progress, "published %d so far\n", n)
			}
			return nil
		case err := <-p.fut.Err():
			return fmt.Errorf("line %d: %w", p.line, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	readErr := schemas.ReadDocuments(r, func(d schemas.Document) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.TooLong {
			return fmt.Errorf("line %d: document larger than %d bytes; the API takes at most 2 MiB", d.Line, schemas.MaxBodyBytes)
		}
		for len(inflight) >= publishWindow {
			if err := settle(); err != nil {
				return err
			}
		}
		fut, err := js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: d.Data})
		if err != nil {
			return fmt.Errorf("line %d: publish to %s: %w", d.Line, subject, err)
		}
		inflight = append(inflight, pending{d.Line, fut})
		return nil
	})
	firstErr = readErr
	// Settle everything still in flight, so n is exact even after a failure.
	for len(inflight) > 0 {
		if err := settle(); err != nil && firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return n, firstErr
}
