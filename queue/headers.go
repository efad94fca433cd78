package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Header names a producer may set on an event (README, "Events"). They
// live here, beside the stream plumbing, because they are part of what an
// event on the stream is; the dead-letter package reuses the first two,
// which a dead letter carries so that a replay keeps the activity's
// identity and time.
const (
	// HeaderReference stands for an activity's "reference" when the body
	// has none (replay sets it).
	HeaderReference = "CG-Reference"
	// HeaderHappenedAt stands for an activity's "happened_at" when the
	// body has none (replay sets it).
	HeaderHappenedAt = "CG-Happened-At"
	// HeaderConfiguration is the mapping a record (account, contact) is
	// imported with, in place of CG_ACCOUNT_CONFIGURATION or
	// CG_CONTACT_CONFIGURATION.
	HeaderConfiguration = "CG-Configuration"
)

// HeadersLost reports whether m reached us without the headers its
// producer gave it: nats.go could not decode its header section (a folded
// line, say) and, rather than fail, passed the message on with nil
// headers, telling only the connection's async error handler. Processing
// such a message would silently drop its CG-Reference, CG-Configuration or
// Nats-Msg-Id, so the worker dead-letters it instead (README, "Outcomes").
//
// The check is cheap for nearly every message: only one without headers,
// on a connection whose last error is nats.ErrBadHeaderMsg (set before the
// message is handed over; see DESIGN.md, "Hostile input", for the one
// race), costs a look at the stored copy's raw header section. That look decides: a message stored
// without headers is fine, one whose stored headers do not decode is lost.
// Until the connection's last error changes (a reconnect, another error),
// every message without headers pays that look.
//
// An error means the stored copy could not be read within ctx, or within
// storedHeaderTimeout; the caller should try again later rather than guess.
func HeadersLost(ctx context.Context, js jetstream.JetStream, m jetstream.Msg, meta *jetstream.MsgMetadata) (bool, error) {
	if m.Headers() != nil {
		return false, nil
	}
	nc := js.Conn()
	if nc == nil || !errors.Is(nc.LastError(), nats.ErrBadHeaderMsg) {
		return false, nil
	}
	raw, found, err := storedHeader(ctx, js, meta.Stream, meta.Sequence.Stream)
	if err != nil || !found || len(raw) == 0 {
		// Gone from the stream (deleted, purged): nothing to compare with,
		// and nothing another delivery would find either.
		return false, err
	}
	_, err = nats.DecodeHeadersMsg(raw)
	return err != nil, nil
}

// storedHeaderTimeout bounds the look at a stored copy.
const storedHeaderTimeout = 5 * time.Second

// storedHeader reads the raw header section of a stored message through
// the stream's message-get API. jetstream's GetMsg decodes the headers
// itself, and fails on exactly the messages this is asked about.
func storedHeader(ctx context.Context, js jetstream.JetStream, stream string, seq uint64) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, storedHeaderTimeout)
	defer cancel()
	req, err := json.Marshal(struct {
		Seq uint64 `json:"seq"`
	}{seq})
	if err != nil {
		return nil, false, err
	}
	msg, err := js.Conn().RequestWithContext(ctx, apiPrefix(js.Options())+"STREAM.MSG.GET."+stream, req)
	if err != nil {
		return nil, false, fmt.Errorf("reading stored message %s/%d: %w", stream, seq, err)
	}
	var resp struct {
		Message *struct {
			Hdrs []byte `json:"hdrs"` // base64 in the JSON
		} `json:"message"`
		Error *struct {
			Code        int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, false, fmt.Errorf("reading stored message %s/%d: %w", stream, seq, err)
	}
	switch {
	case resp.Error != nil && resp.Error.Code == int(jetstream.JSErrCodeMessageNotFound):
		return nil, false, nil
	case resp.Error != nil:
		return nil, false, fmt.Errorf("reading stored message %s/%d: %s", stream, seq, resp.Error.Description)
	case resp.Message == nil:
		return nil, false, fmt.Errorf("reading stored message %s/%d: empty answer", stream, seq)
	}
	return resp.Message.Hdrs, true, nil
}

// apiPrefix is the JetStream API subject prefix js sends its requests to.
func apiPrefix(o jetstream.JetStreamOptions) string {
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "."
	}
	return jetstream.DefaultAPIPrefix
}
