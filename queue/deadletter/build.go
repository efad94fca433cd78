package deadletter

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/schemas"
)

// Header names of dead letters (README, "Outcomes"). CG-Reference and
// CG-Happened-At are the inbound event headers of the same names
// (queue.HeaderReference, queue.HeaderHappenedAt): a replay hands them back
// to the worker as such.
const (
	HeaderErrorKind       = "CG-Error-Kind"
	HeaderError           = "CG-Error"
	HeaderErrors          = "CG-Errors"
	HeaderHTTPStatus      = "CG-HTTP-Status"
	HeaderOriginalSubject = "CG-Original-Subject"
	HeaderOriginalStream  = "CG-Original-Stream"
	HeaderOriginalSeq     = "CG-Original-Seq"
	HeaderOriginalMsgID   = "CG-Original-Msg-Id"
	HeaderReference       = queue.HeaderReference
	HeaderHappenedAt      = queue.HeaderHappenedAt
	HeaderAttempts        = "CG-Attempts"
	HeaderFailedAt        = "CG-Failed-At"
	// HeaderBodyRef names the object in the CG_DLQ_BODIES object store
	// that holds the body and producer headers of a dead letter too large
	// to store whole.
	HeaderBodyRef = "CG-Body-Ref"
)

// Error kinds, as in CG-Error-Kind. The first two are the validator's.
const (
	ErrorKindMalformed = string(schemas.Malformed)
	ErrorKindSchema    = string(schemas.Schema)
	ErrorKindAPI422    = "api-422"
	ErrorKindAPI4xx    = "api-4xx"
	// ErrorKindUnknownSubject: the event came on a subject that is no
	// kind's, such as a producer's typo.
	ErrorKindUnknownSubject = "unknown-subject"
)

// ErrorKinds lists every CG-Error-Kind, as --error-kind takes them.
var ErrorKinds = []string{ErrorKindMalformed, ErrorKindSchema, ErrorKindAPI422, ErrorKindAPI4xx, ErrorKindUnknownSubject}

// Size limits of the error headers, so that a dead letter of a message
// close to max_payload still fits.
const (
	MaxErrorBytes  = 1 << 10 // CG-Error
	MaxErrorsBytes = 4 << 10 // CG-Errors
)

// maxErrorsMessageBytes shortens single messages once CG-Errors is over
// its limit, so that one long message does not crowd out the others.
// maxErrorsKeyBytes does the same for field names: a producer's 1 MB
// unknown field name is cut, not dropped, so CG-Errors still names it.
const (
	maxErrorsMessageBytes = 256
	maxErrorsKeyBytes     = 256
)

// Info is why and when a message was dead-lettered.
type Info struct {
	Kind       string              // event kind, or "unknown"; "" takes it from the original subject
	ErrorKind  string              // one of ErrorKinds
	Error      string              // summary; newlines are flattened
	Errors     map[string][]string // field -> messages, the API's 422 shape
	HTTPStatus int                 // the API's status, 0 when it was not called
	Reference  string              // activity: the reference used or that would have been
	HappenedAt string              // activity: the happened_at used or that would have been
	Attempts   uint64              // delivery count; 0 takes the metadata's
	FailedAt   time.Time           // zero means now
}

// LetterID names the dead letter of the message stored in stream at seq
// at time stored: unique per stored message (the time keeps a recreated
// stream's sequences apart), equal across its redeliveries. It is the last
// token of the letter's subject and the name of its object, if any.
func LetterID(stream string, seq uint64, stored time.Time) string {
	return fmt.Sprintf("%s-%d-%d", stream, seq, stored.UnixNano())
}

// MsgID is the message id of the dead letter with letterID: a second line
// of defence within the duplicate window, after the empty-subject check.
func MsgID(names queue.Names, letterID string) string {
	return names.Prefix + "-dlq-" + letterID
}

// Build returns the dead letter of a message (its subject, headers, body
// and JetStream metadata) and its letter id (see Store). The body is
// shared, not copied; headers are copied.
func Build(names queue.Names, subject string, header nats.Header, data []byte, meta *jetstream.MsgMetadata, info Info) (*nats.Msg, string) {
	if meta == nil {
		meta = &jetstream.MsgMetadata{}
	}
	kind := info.Kind
	if kind == "" {
		kind = string(originalKind(names, subject))
	}
	attempts := info.Attempts
	if attempts == 0 {
		attempts = meta.NumDelivered
	}
	failedAt := info.FailedAt
	if failedAt.IsZero() {
		failedAt = time.Now()
	}

	h := make(nats.Header, len(header)+14)
	for k, v := range header {
		if isDeadLetterHeader(k) ||
			// Our values replace the producer's, in any spelling.
			(info.Reference != "" && strings.EqualFold(k, HeaderReference)) ||
			(info.HappenedAt != "" && strings.EqualFold(k, HeaderHappenedAt)) {
			continue
		}
		h[k] = append([]string(nil), v...)
	}
	set := func(k, v string) { h[k] = []string{v} }
	set(HeaderErrorKind, info.ErrorKind)
	set(HeaderError, schemas.OneLine(info.Error, MaxErrorBytes))
	set(HeaderErrors, EncodeErrors(info.Errors, MaxErrorsBytes))
	if info.HTTPStatus != 0 {
		set(HeaderHTTPStatus, strconv.Itoa(info.HTTPStatus))
	}
	set(HeaderOriginalSubject, subject)
	set(HeaderOriginalStream, meta.Stream)
	set(HeaderOriginalSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
	// Found in any spelling, as the worker finds it for the reference.
	if id := queue.HeaderCarrier(header).Get(jetstream.MsgIDHeader); id != "" {
		set(HeaderOriginalMsgID, id)
	}
	if info.Reference != "" {
		set(HeaderReference, info.Reference)
	}
	if info.HappenedAt != "" {
		set(HeaderHappenedAt, info.HappenedAt)
	}
	set(HeaderAttempts, strconv.FormatUint(attempts, 10))
	set(HeaderFailedAt, failedAt.UTC().Format(time.RFC3339))

	id := LetterID(meta.Stream, meta.Sequence.Stream, meta.Timestamp)
	msg := &nats.Msg{
		Subject: names.DeadLetterSubject(schemas.Kind(kind), id),
		Header:  h,
		Data:    data,
	}
	return msg, id
}

// originalKind is the kind of an event subject, or queue.UnknownKind.
func originalKind(names queue.Names, subject string) schemas.Kind {
	if k, ok := names.EventKindOf(subject); ok {
		return k
	}
	return queue.UnknownKind
}

// ownHeaders are set by Build from the failure alone: a value the message
// brought along (from an earlier replay gone wrong, say) is dropped rather
// than left beside ours.
var ownHeaders = []string{
	HeaderErrorKind, HeaderError, HeaderErrors, HeaderHTTPStatus,
	HeaderAttempts, HeaderFailedAt, HeaderBodyRef,
}

// isDeadLetterHeader reports whether k, in any spelling, is a header that
// neither a dead letter takes from its message nor a replay takes from its
// dead letter: the server's Nats-* control headers, which would break or
// alter the publish, and the dead-letter headers of section 5.
func isDeadLetterHeader(k string) bool {
	if hasPrefixFold(k, "Nats-") || hasPrefixFold(k, "CG-Original-") {
		return true
	}
	for _, o := range ownHeaders {
		if strings.EqualFold(k, o) {
			return true
		}
	}
	return false
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// EncodeErrors returns errs as a JSON object of at most max bytes (max
// should be at least 256). When the whole does not fit, long messages are
// shortened, messages that still do not fit are left out (fields in name
// order, messages in their order), and a "_truncated" member says how
// many were left out; the result is always valid JSON.
func EncodeErrors(errs map[string][]string, max int) string {
	if len(errs) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(errs))
	total := 0
	for k, msgs := range errs {
		keys = append(keys, k)
		total += len(msgs)
	}
	slices.Sort(keys)
	b := make([]byte, 0, min(max, 512))
	full, ok := appendErrorsFull(b, errs, keys, max)
	if ok {
		return string(full)
	}
	b = full[:0]

	noteFor := func(dropped int) string {
		if dropped == 0 {
			return fmt.Sprintf("CG-Errors was cut to %d bytes; messages were shortened", max)
		}
		return fmt.Sprintf("CG-Errors was cut to %d bytes; %d more messages", max, dropped)
	}
	// Reserve room for the longest note there can be (b serves as scratch).
	reserve := len(`,"_truncated":[]`) + len(schemas.AppendJSONString(b[:0], noteFor(total)))
	budget := max - len("{}") - reserve

	b = append(b[:0], '{')
	kept := 0
	prevKey := ""
	for _, k := range keys {
		if budget-(len(b)-1) < len(`,"":[""]`) {
			break // not even an empty message would fit
		}
		name := k
		if len(name) > maxErrorsKeyBytes {
			name = schemas.OneLine(name, maxErrorsKeyBytes)
			if name == prevKey {
				continue // two long names cut alike: keep the first, count the rest out
			}
		}
		prevKey = name
		entryStart := len(b)
		opened := false
		for _, m := range errs[k] {
			mark := len(b)
			if opened {
				b = append(b, ',')
			} else {
				if entryStart > 1 {
					b = append(b, ',') // between fields
				}
				b = schemas.AppendJSONString(b, name)
				b = append(b, ':', '[')
			}
			b = schemas.AppendJSONString(b, schemas.OneLine(m, maxErrorsMessageBytes))
			// Without the opening brace, with the bracket that will close
			// this field.
			if len(b)-1+1 > budget {
				b = b[:mark]
				continue
			}
			opened = true
			kept++
		}
		if opened {
			b = append(b, ']')
		}
	}
	if len(b) > 1 {
		b = append(b, ',')
	}
	b = append(b, `"_truncated":[`...)
	b = schemas.AppendJSONString(b, noteFor(total-kept))
	b = append(b, ']', '}')
	return string(b)
}

// appendErrorsFull appends errs whole, keys in the given order, giving up
// once it is over max.
func appendErrorsFull(b []byte, errs map[string][]string, keys []string, max int) ([]byte, bool) {
	b = append(b, '{')
	for i, k := range keys {
		if len(b) > max {
			return b, false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = schemas.AppendJSONString(b, k)
		b = append(b, ':', '[')
		for j, m := range errs[k] {
			if j > 0 {
				b = append(b, ',')
			}
			b = schemas.AppendJSONString(b, m)
		}
		b = append(b, ']')
	}
	b = append(b, '}')
	return b, len(b) <= max
}
