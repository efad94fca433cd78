package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"

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

// StreamInput is what PublishStream publishes and how it names each
// message.
type StreamInput struct {
	// Subject every document is published to.
	Subject string
	// Source identifies the input in the message ids: the file's absolute
	// path, or "stdin".
	Source string
	// IDPrefix, when set, replaces the derived message ids: the document
	// on line L gets IDPrefix-L.
	IDPrefix string
	// Progress, when not nil, gets a line every 10,000 messages.
	Progress io.Writer
}

// MsgID is the Nats-Msg-Id of the document body starting on line of the
// input (README, "Commands"): IDPrefix-<line> when a prefix is set, else
// <source>-<line>-<body>, where <source> is the first 16 hex digits of
// the SHA-256 of the subject, a NUL and Source, and <body> the first 16 of
// the SHA-256 of the body as published. Publishing the same input again
// thus gives the same ids, and the stream stores nothing twice within its
// duplicate window; an edited line gets a new id.
func (in StreamInput) MsgID(line int, body []byte) string {
	if in.IDPrefix != "" {
		return in.IDPrefix + "-" + strconv.Itoa(line)
	}
	src := sha256.Sum256([]byte(in.Subject + "\x00" + in.Source))
	sum := sha256.Sum256(body)
	return hex.EncodeToString(src[:8]) + "-" + strconv.Itoa(line) + "-" + hex.EncodeToString(sum[:8])
}

// PublishCounts is what became of the documents PublishStream sent.
type PublishCounts struct {
	Published  int // stored by this run
	Duplicates int // already stored under the same message id: not stored again
	Failed     int // sent but not acknowledged
}

// PublishStream publishes the documents of r to in.Subject, as `cgworker
// publish` does: one message when the whole input is one JSON value,
// else one per non-blank line (see schemas.ReadDocuments), each under the
// message id in.MsgID gives it. Bodies are published trimmed but otherwise
// as they are; the worker dead-letters what is not valid. A document
// larger than schemas.MaxBodyBytes is an error instead, since the API
// would only refuse it. Publishes are pipelined, at most about 256 in
// flight, and each is acknowledged by the stream.
//
// Each publish waits for its acknowledgement at most the publish timeout
// js was made with (jetstream.WithPublishAsyncTimeout): without one, a
// server that goes away leaves it waiting until ctx ends. The first
// failure ends the call at once, even while r is waiting for more input
// (a pipe from a quiet producer): what was already sent is settled and
// counted, and the error names the input line. A read of r still blocked
// then is abandoned; its goroutine ends when the read returns.
func PublishStream(ctx context.Context, js jetstream.JetStream, in StreamInput, r io.Reader) (PublishCounts, error) {
	type sent struct {
		line int
		fut  jetstream.PubAckFuture // nil when err is set
		err  error
	}
	var counts PublishCounts

	// settle waits for one publish and counts it.
	settle := func(s sent) error {
		if s.err != nil {
			counts.Failed++
			return s.err
		}
		select {
		case ack := <-s.fut.Ok():
			if ack.Duplicate {
				counts.Duplicates++
				return nil
			}
			counts.Published++
			if in.Progress != nil && counts.Published%publishProgressEvery == 0 {
				fmt.Fprintf(in.Progress, "published %d so far\n", counts.Published)
			}
			return nil
		case err := <-s.fut.Err():
			counts.Failed++
			return fmt.Errorf("line %d: publish to %s: %w", s.line, in.Subject, err)
		case <-ctx.Done():
			counts.Failed++
			return ctx.Err()
		}
	}

	// The input is read and published on its own goroutine, so that a
	// failed publish is seen while the read waits.
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	window := make(chan sent, publishWindow)
	readErr := make(chan error, 1)
	go func() {
		defer close(window)
		readErr <- schemas.ReadDocuments(r, func(d schemas.Document) error {
			if err := readCtx.Err(); err != nil {
				return err
			}
			if d.TooLong {
				return fmt.Errorf("line %d: document larger than %d bytes; the API takes at most 2 MiB", d.Line, schemas.MaxBodyBytes)
			}
			fut, err := js.PublishMsgAsync(&nats.Msg{Subject: in.Subject, Data: d.Data}, jetstream.WithMsgID(in.MsgID(d.Line, d.Data)))
			if err != nil {
				err = fmt.Errorf("line %d: publish to %s: %w", d.Line, in.Subject, err)
			}
			select {
			case window <- sent{d.Line, fut, err}:
			case <-readCtx.Done():
				return readCtx.Err()
			}
			return err
		})
	}()

	var firstErr error
	for firstErr == nil {
		select {
		case s, ok := <-window:
			if !ok {
				return counts, <-readErr
			}
			firstErr = settle(s)
		case <-ctx.Done():
			firstErr = ctx.Err()
		}
	}
	// Stop reading, and settle what was sent, so the counts are exact.
	stopReading()
	for {
		select {
		case s, ok := <-window:
			if !ok {
				return counts, firstErr
			}
			_ = settle(s)
		default:
			return counts, firstErr
		}
	}
}
