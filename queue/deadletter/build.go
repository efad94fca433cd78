package deadletter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/schemas"
)

// Header names of dead letters (CONTRACT.md section 5), and the producer
// headers a replay keeps.
const (
	HeaderErrorKind       = "CG-Error-Kind"
	HeaderError           = "CG-Error"
	HeaderErrors          = "CG-Errors"
	HeaderHTTPStatus      = "CG-HTTP-Status"
	HeaderOriginalSubject = "CG-Original-Subject"
	HeaderOriginalStream  = "CG-Original-Stream"
	HeaderOriginalSeq     = "CG-Original-Seq"
	HeaderOriginalMsgID   = "CG-Original-Msg-Id"
	HeaderReference       = "CG-Reference"
	HeaderHappenedAt      = "CG-Happened-At"
	HeaderAttempts        = "CG-Attempts"
	HeaderFailedAt        = "CG-Failed-At"
	HeaderConfiguration   = "CG-Configuration"
)

// Error kinds, as in CG-Error-Kind. The first two are the validator's.
const (
	ErrorKindMalformed = string(schemas.Malformed)
	ErrorKindSchema    = string(schemas.Schema)
	ErrorKindAPI422    = "api-422"
	ErrorKindAPI4xx    = "api-4xx"
)

// Size limits of the error headers, so that a dead letter of a message
// close to max_payload still fits.
const (
	MaxErrorBytes  = 1 << 10 // CG-Error
	MaxErrorsBytes = 4 << 10 // CG-Errors
)

// maxErrorsMessageBytes shortens single messages once CG-Errors is over
// its limit, so that one long message does not crowd out the others.
const maxErrorsMessageBytes = 256

// Info is why and when a message was dead-lettered.
type Info struct {
	Kind       string              // event kind; "" takes the last token of the original subject
	ErrorKind  string              // malformed, schema, api-422 or api-4xx
	Error      string              // summary; newlines are flattened
	Errors     map[string][]string // field -> messages, the API's 422 shape
	HTTPStatus int                 // the API's status, 0 when it was not called
	Reference  string              // activity: the reference used or that would have been
	HappenedAt string              // activity: the happened_at used or that would have been
	Attempts   uint64              // delivery count; 0 takes the metadata's
	FailedAt   time.Time           // zero means now
}

// MsgID is the dead-letter message id of the message stored in stream at
// seq at time stored: unique per stored message, equal across its
// redeliveries.
func MsgID(stream string, seq uint64, stored time.Time) string {
	return fmt.Sprintf("cg-dlq-%s-%d-%d", stream, seq, stored.UnixNano())
}

// BuildMsg is Build for a message as the consumer received it.
func BuildMsg(names queue.Names, msg jetstream.Msg, info Info) (*nats.Msg, string, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return nil, "", fmt.Errorf("dead letter: %w", err)
	}
	m, id := Build(names, msg.Subject(), msg.Headers(), msg.Data(), meta, info)
	return m, id, nil
}

// Build returns the dead letter of a message (its subject, headers, body
// and JetStream metadata) and the message id to publish it under (see
// queue.Publish). The body is shared, not copied; headers are copied.
func Build(names queue.Names, subject string, header nats.Header, data []byte, meta *jetstream.MsgMetadata, info Info) (*nats.Msg, string) {
	if meta == nil {
		meta = &jetstream.MsgMetadata{}
	}
	kind := info.Kind
	if kind == "" {
		kind = subject[strings.LastIndexByte(subject, '.')+1:]
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
		if hasPrefixFold(k, "Nats-") || isOwnHeader(k) ||
			// Our values replace the producer's, in any spelling.
			(info.Reference != "" && strings.EqualFold(k, HeaderReference)) ||
			(info.HappenedAt != "" && strings.EqualFold(k, HeaderHappenedAt)) {
			continue
		}
		h[k] = append([]string(nil), v...)
	}
	set := func(k, v string) { h[k] = []string{v} }
	set(HeaderErrorKind, info.ErrorKind)
	set(HeaderError, OneLine(info.Error, MaxErrorBytes))
	set(HeaderErrors, EncodeErrors(info.Errors, MaxErrorsBytes))
	if info.HTTPStatus != 0 {
		set(HeaderHTTPStatus, strconv.Itoa(info.HTTPStatus))
	}
	set(HeaderOriginalSubject, subject)
	set(HeaderOriginalStream, meta.Stream)
	set(HeaderOriginalSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
	if id := header.Get(jetstream.MsgIDHeader); id != "" {
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

	msg := &nats.Msg{
		Subject: names.DLQSubject(schemas.Kind(kind)),
		Header:  h,
		Data:    data,
	}
	return msg, MsgID(meta.Stream, meta.Sequence.Stream, meta.Timestamp)
}

// ownHeaders are set by Build from the failure alone: a value the message
// brought along (from an earlier replay gone wrong, say) is dropped rather
// than left beside ours.
var ownHeaders = []string{
	HeaderErrorKind, HeaderError, HeaderErrors, HeaderHTTPStatus,
	HeaderAttempts, HeaderFailedAt,
}

func isOwnHeader(k string) bool {
	if hasPrefixFold(k, "CG-Original-") {
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

// OneLine makes s a single header line of at most max bytes: control
// characters (newlines included) become spaces, invalid UTF-8 is replaced,
// and a cut is marked with "…".
func OneLine(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", " ")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	return truncate(s, max)
}

// truncate cuts s to at most max bytes on a rune boundary, ending in "…".
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	cut := max - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// EncodeErrors returns errs as a JSON object of at most max bytes (max
// should be at least 256). When the whole does not fit, long messages are
// shortened, messages that still do not fit are left out (fields in name
// order, messages in their order), and a "_truncated" member says how
// many were left out; the result is always valid JSON.
func EncodeErrors(errs map[string][]string, max int) string {
	if full, ok := encodeErrorsFull(errs, max); ok {
		return full
	}

	keys := make([]string, 0, len(errs))
	total := 0
	for k, msgs := range errs {
		keys = append(keys, k)
		total += len(msgs)
	}
	sort.Strings(keys)

	noteFor := func(dropped int) string {
		if dropped == 0 {
			return fmt.Sprintf("CG-Errors was cut to %d bytes; messages were shortened", max)
		}
		return fmt.Sprintf("CG-Errors was cut to %d bytes; %d more messages", max, dropped)
	}
	// Reserve room for the longest note there can be.
	reserve := len(`,"_truncated":[]`) + len(jsonString(noteFor(total)))
	budget := max - len("{}") - reserve

	var b bytes.Buffer
	b.WriteByte('{')
	kept := 0
	for _, k := range keys {
		if budget-(b.Len()-1) < len(`,"":[""]`) {
			break // not even an empty message would fit
		}
		kj := jsonString(k)
		entryStart := b.Len()
		opened := false
		for _, m := range errs[k] {
			mj := jsonString(truncate(m, maxErrorsMessageBytes))
			cost := len(mj)
			if opened {
				cost++ // comma between messages
			} else {
				cost += len(kj) + len(":[]")
				if entryStart > 1 {
					cost++ // comma between fields
				}
			}
			used := b.Len() - 1 // without the opening brace
			if opened {
				used++ // the bracket that will close this field
			}
			if used+cost > budget {
				continue
			}
			if !opened {
				if entryStart > 1 {
					b.WriteByte(',')
				}
				b.WriteString(kj)
				b.WriteString(":[")
				opened = true
			} else {
				b.WriteByte(',')
			}
			b.WriteString(mj)
			kept++
		}
		if opened {
			b.WriteByte(']')
		}
	}
	if b.Len() > 1 {
		b.WriteByte(',')
	}
	b.WriteString(`"_truncated":[`)
	b.WriteString(jsonString(noteFor(total - kept)))
	b.WriteString("]}")
	return b.String()
}

// encodeErrorsFull encodes errs whole, giving up once it is over max.
func encodeErrorsFull(errs map[string][]string, max int) (string, bool) {
	if len(errs) == 0 {
		return "{}", true
	}
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if b.Len() > max {
			return "", false
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(jsonString(k))
		b.WriteString(":[")
		for j, m := range errs[k] {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(jsonString(m))
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.String(), b.Len() <= max
}

// jsonString encodes s as a JSON string without HTML escaping, which
// only makes header values harder to read.
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}
