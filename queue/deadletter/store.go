package deadletter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
)

// Stored says how a dead letter was stored.
type Stored struct {
	Seq uint64 // the letter's dead-letter stream sequence; 0 when Existing
	// Existing: the letter was already in the stream, put there by an
	// earlier delivery of the same message; nothing new was stored.
	Existing bool
	// BodyRef is the object holding the body and producer headers when
	// the letter was too large to store whole; "" otherwise.
	BodyRef string
}

// maxHeaderBytes is JetStream's limit on a stored message's headers.
const maxHeaderBytes = 64 << 10

// sizeMargin is room left under the limits for what the client adds to a
// message on the wire (the publish's Nats-* headers are counted apart).
const sizeMargin = 512

// maxChunkBytes is the object store's chunk size, kept well under the
// smallest max_payload a server is likely to have.
const maxChunkBytes = 128 << 10

// Store stores the dead letter msg built by Build under letterID, exactly
// once whatever happened before (README, "Dead letters"):
//
//   - The letter's subject is its own (<prefix>.dlq.<kind>.<letter id>)
//     and the publish demands that the subject hold nothing yet
//     (Nats-Expected-Last-Subject-Sequence: 0). A "wrong last sequence"
//     answer therefore means an earlier delivery stored it: Existing. This
//     holds however long ago that was, unlike the duplicate window, and
//     whatever the delivery count says (a consumer created again starts it
//     at 1). The message id is kept as well.
//   - A letter too large for the server (body plus headers over
//     max_payload, headers over 64 KiB, or over the stream's message size)
//     puts its body and every header that is not the letter's own into the
//     CG_DLQ_BODIES object store under the letter id first, and then
//     publishes the letter with an empty body, its own headers and
//     CG-Body-Ref naming the object. A crash in between leaves an object
//     that the next delivery writes again; never a letter without its
//     body. Deletes go in reverse (the letter, then its object).
//
// Nothing of msg is retained: a letter that cannot be stored is an error,
// and the caller hands the message back to be tried again.
func Store(ctx context.Context, js jetstream.JetStream, names queue.Names, msg *nats.Msg, letterID string) (Stored, error) {
	msgID := MsgID(names, letterID)
	if fits(js.Conn().MaxPayload(), msg, msgID) {
		st, err := publishOnce(ctx, js, msg, msgID)
		if err == nil || !tooLarge(err) {
			return st, err
		}
	}
	// An earlier delivery may have stored it already: look before writing
	// megabytes again.
	if found, err := letterExists(ctx, js, names, msg.Subject); err != nil || found {
		return Stored{Existing: found}, err
	}
	if err := putBody(ctx, js, names, letterID, msg); err != nil {
		return Stored{}, err
	}
	letter := &nats.Msg{Subject: msg.Subject, Header: make(nats.Header, len(letterHeaders)+1)}
	for _, k := range letterHeaders {
		if v, ok := msg.Header[k]; ok {
			letter.Header[k] = v
		}
	}
	letter.Header.Set(HeaderBodyRef, letterID)
	st, err := publishOnce(ctx, js, letter, msgID)
	st.BodyRef = letterID
	return st, err
}

// letterHeaders are the headers a letter whose body is in the object
// store keeps: its own, bounded in size. The producer's, the reference
// and happened_at (which may be the producer's) and the original message
// id go to the object with the body.
var letterHeaders = []string{
	HeaderErrorKind, HeaderError, HeaderErrors, HeaderHTTPStatus,
	HeaderOriginalSubject, HeaderOriginalStream, HeaderOriginalSeq,
	HeaderAttempts, HeaderFailedAt,
}

// publishOnce publishes msg on its subject, which must be empty.
func publishOnce(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, msgID string) (Stored, error) {
	ack, err := queue.Publish(ctx, js, msg, msgID, jetstream.WithExpectLastSequencePerSubject(0))
	if queue.WrongLastSequence(err) {
		return Stored{Existing: true}, nil
	}
	if err != nil {
		return Stored{}, err
	}
	if ack.Duplicate {
		return Stored{Existing: true}, nil
	}
	return Stored{Seq: ack.Sequence}, nil
}

// letterExists reports whether the dead-letter stream holds a letter on
// subject.
func letterExists(ctx context.Context, js jetstream.JetStream, names queue.Names, subject string) (bool, error) {
	s, err := js.Stream(ctx, names.DLQStream())
	if err != nil {
		return false, fmt.Errorf("dead-letter stream %s: %w", names.DLQStream(), err)
	}
	_, err = s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("dead-letter stream %s: %w", names.DLQStream(), err)
	}
	return true, nil
}

// fits reports whether msg, published under msgID with an expected last
// subject sequence, stays within the server's limits.
func fits(maxPayload int64, msg *nats.Msg, msgID string) bool {
	hdr := len("NATS/1.0\r\n\r\n") + headerLine(jetstream.MsgIDHeader, msgID) +
		headerLine(jetstream.ExpectedLastSubjSeqHeader, "0")
	for k, vs := range msg.Header {
		for _, v := range vs {
			hdr += headerLine(k, v)
		}
	}
	return hdr+sizeMargin <= maxHeaderBytes && int64(hdr+len(msg.Data)+sizeMargin) <= maxPayload
}

func headerLine(k, v string) int { return len(k) + len(": ") + len(v) + len("\r\n") }

// tooLarge reports a publish refused for its size, by the client or by
// the stream, which storing the body apart cures.
func tooLarge(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum || apiErr.ErrorCode == errCodeHeaderExceedsMaximum)
}

// errCodeHeaderExceedsMaximum is the server's "header size exceeds maximum
// allowed of 64k" (nats.go has no constant for it).
const errCodeHeaderExceedsMaximum jetstream.ErrorCode = 10097

// putBody writes msg's body and the headers the small letter leaves out to
// the object letterID, streamed: nothing is copied.
func putBody(ctx context.Context, js jetstream.JetStream, names queue.Names, letterID string, msg *nats.Msg) error {
	obs, err := js.ObjectStore(ctx, names.DLQBodiesBucket())
	if err != nil {
		return fmt.Errorf("object store %s: %w", names.DLQBodiesBucket(), err)
	}
	h := make(nats.Header, len(msg.Header))
	for k, v := range msg.Header {
		if !isLetterHeader(k) {
			h[k] = v
		}
	}
	head, err := encodeBodyHeader(h)
	if err != nil {
		return err
	}
	chunk := uint32(maxChunkBytes)
	if room := js.Conn().MaxPayload() - 4<<10; room > 0 && room < int64(chunk) {
		chunk = uint32(room)
	}
	meta := jetstream.ObjectMeta{
		Name:        letterID,
		Description: "dead letter " + msg.Subject,
		Headers:     nats.Header{"CG-Body-Bytes": {strconv.Itoa(len(msg.Data))}},
		Opts:        &jetstream.ObjectMetaOptions{ChunkSize: chunk},
	}
	if _, err := obs.Put(ctx, meta, io.MultiReader(bytes.NewReader(head), bytes.NewReader(msg.Data))); err != nil {
		return fmt.Errorf("store dead-letter body %s in %s: %w", letterID, names.DLQBodiesBucket(), err)
	}
	return nil
}

func isLetterHeader(k string) bool { return slices.Contains(letterHeaders, k) }
