package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/schemas"
)

// request is an event made ready for the API.
type request struct {
	kind          schemas.Kind
	body          []byte // activity: the PUT body; records: the record object
	configuration string // records only
	// Activity identity: what was sent, or would have been (dead letters
	// carry them so a replay keeps them).
	reference  string
	happenedAt string
	// unchecked: whether the headers survived decoding could not be told
	// (the stored copy could not be read); the message is tried later.
	unchecked error
}

// header reads a header whatever the case its producer gave it.
func header(h nats.Header, key string) string { return queue.HeaderCarrier(h).Get(key) }

// prepare validates m and builds the API request. A non-nil *schemas.Error
// means the event is invalid: the API is never called for it. The returned
// request still carries the activity's identity fields for the dead letter.
func (w *Worker) prepare(kind schemas.Kind, m jetstream.Msg, meta *jetstream.MsgMetadata) (request, *schemas.Error) {
	req := request{kind: kind}
	if lost, err := queue.HeadersLost(w.stopping, w.js, m, meta); err != nil {
		req.unchecked = err
		return req, nil
	} else if lost {
		return req, headersLostError()
	}
	body := m.Data()
	h := m.Headers()
	var invalid *schemas.Error

	switch kind {
	case schemas.Activity:
		fields, err := w.validator.ValidateActivity(body)
		if err != nil {
			invalid = asSchemaError(err)
		}
		req.reference = fields.Reference
		if hv := header(h, queue.HeaderReference); req.reference == "" && hv != "" {
			// The header stands for the body field and is held to it.
			if msg := schemas.CheckReference(hv); msg != "" && invalid == nil {
				invalid = &schemas.Error{
					Kind:    schemas.Schema,
					Summary: "schema: header " + queue.HeaderReference + ": " + msg,
					Fields:  map[string][]string{"reference": {msg}},
				}
			}
			req.reference = hv
		}
		if req.reference == "" {
			req.reference = DeriveReference(meta.Stream, header(h, nats.MsgIdHdr), meta.Sequence.Stream, meta.Timestamp.UnixNano())
		}
		req.happenedAt = fields.HappenedAt
		if req.happenedAt == "" {
			if hv := header(h, queue.HeaderHappenedAt); hv != "" {
				norm, err := schemas.NormalizeHappenedAt(hv)
				if err != nil && invalid == nil {
					invalid = &schemas.Error{
						Kind:    schemas.Schema,
						Summary: "schema: header " + queue.HeaderHappenedAt + " is not a valid date: " + strconv.Quote(hv),
						Fields:  map[string][]string{"happened_at": {"The " + queue.HeaderHappenedAt + " header is not a valid date."}},
					}
				}
				req.happenedAt = norm
			}
		}
		if req.happenedAt == "" {
			req.happenedAt = schemas.FormatHappenedAt(meta.Timestamp)
		}
		if invalid != nil {
			return req, invalid
		}
		out, err := schemas.RewriteActivity(body, req.reference, req.happenedAt)
		if err != nil {
			return req, asSchemaError(err)
		}
		req.body = out
	default:
		if err := w.validator.Validate(kind, body); err != nil {
			return req, asSchemaError(err)
		}
		req.body = body
		req.configuration = header(h, queue.HeaderConfiguration)
		if req.configuration == "" {
			if kind == schemas.Account {
				req.configuration = w.cfg.AccountConfiguration
			} else {
				req.configuration = w.cfg.ContactConfiguration
			}
		}
	}
	return req, nil
}

// headersLostError is the failure of a message whose headers could not be
// decoded: it is malformed (README, "Outcomes"), since processing it
// without them would drop its CG-Reference, CG-Configuration or
// Nats-Msg-Id unseen.
func headersLostError() *schemas.Error {
	return &schemas.Error{
		Kind:    schemas.Malformed,
		Summary: "malformed: the message headers could not be read",
		Fields:  map[string][]string{"headers": {"The message headers could not be read."}},
	}
}

// asSchemaError returns err as *schemas.Error, wrapping anything else as a
// schema failure so that no invalid event can slip through unexplained.
func asSchemaError(err error) *schemas.Error {
	var se *schemas.Error
	if errors.As(err, &se) {
		return se
	}
	return &schemas.Error{Kind: schemas.Schema, Summary: "schema: " + err.Error(), Fields: map[string][]string{schemas.BodyKey: {err.Error()}}}
}

// DeriveReference is the reference of an activity that has none
// (README, "Events"): "cgw-" and the first 40 hex digits of the SHA-256
// of "<stream>\n<Nats-Msg-Id>", or of "<stream>\n<seq>@<timestamp ns>" when
// the message has no id. This formula never changes between versions: it is
// what makes a redelivered or re-sent event update its activity.
func DeriveReference(stream, msgID string, seq uint64, timestampNanos int64) string {
	buf := make([]byte, 0, 128)
	buf = append(buf, stream...)
	buf = append(buf, '\n')
	if msgID != "" {
		buf = append(buf, msgID...)
	} else {
		buf = strconv.AppendUint(buf, seq, 10)
		buf = append(buf, '@')
		buf = strconv.AppendInt(buf, timestampNanos, 10)
	}
	sum := sha256.Sum256(buf)
	var out [44]byte
	copy(out[:], "cgw-")
	hex.Encode(out[4:], sum[:20])
	return string(out[:])
}
