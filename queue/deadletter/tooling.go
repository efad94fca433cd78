package deadletter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/schemas"
)

// Letter is a dead letter as stored in the dead-letter stream.
type Letter struct {
	Seq     uint64 // dead-letter stream sequence
	Subject string // <prefix>.dlq.<kind>.<letter id>, or <prefix>.dlq.<kind> from earlier versions
	Stored  time.Time
	Header  nats.Header
	Data    []byte // nil when read headers only
	kind    string
}

func newLetter(names queue.Names, seq uint64, subject string, stored time.Time, h nats.Header) *Letter {
	return &Letter{Seq: seq, Subject: subject, Stored: stored, Header: h, kind: string(letterKind(names, subject, h))}
}

// Kind is the event kind ("unknown" for an unknown subject): the token
// after <prefix>.dlq. in the subject, which both the new and the earlier
// subjects have, else the kind of CG-Original-Subject.
func (l *Letter) Kind() string { return l.kind }

func letterKind(names queue.Names, subject string, h nats.Header) schemas.Kind {
	if k, ok := names.DLQKindOf(subject); ok {
		return k
	}
	return originalKind(names, h.Get(HeaderOriginalSubject))
}

// ReplayMsgID is the message id a replay publishes the dead letter at seq
// of dlqStream under, the same on every run.
func ReplayMsgID(dlqStream string, seq uint64) string {
	return "cg-replay-" + dlqStream + "-" + strconv.FormatUint(seq, 10)
}

// ReplayHeader returns the headers a replay publishes: the dead letter's
// minus the dead-letter headers (error, origin, attempts, failure time)
// and any Nats-* header. The producer's own headers, CG-Configuration,
// CG-Reference and CG-Happened-At stay, so a replayed activity keeps its
// identity and its time.
func ReplayHeader(h nats.Header) nats.Header {
	out := make(nats.Header, len(h))
	for k, v := range h {
		if isDeadLetterHeader(k) {
			continue
		}
		out[k] = append([]string(nil), v...)
	}
	return out
}

// progressEvery is how often Replay and Purge report on long runs.
const progressEvery = 1000

// fetchBatch is how many dead letters a scan asks for at a time; bodies
// can be megabytes, so it stays small.
const fetchBatch = 64

// scanConsumerIdle lets the server remove a scan's consumer if the
// process dies before deleting it.
const scanConsumerIdle = 5 * time.Minute

func dlqStream(ctx context.Context, js jetstream.JetStream, names queue.Names) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, names.DLQStream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("dead-letter stream %s not found (no worker with subject prefix %q has started yet)", names.DLQStream(), names.Prefix)
	}
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", names.DLQStream(), err)
	}
	return s, nil
}

// scan calls fn for every dead letter matching f, in stream order, among
// those stored when the scan started (so a replay never chases the dead
// letters it causes). withBody false reads headers only.
func scan(ctx context.Context, stream jetstream.Stream, names queue.Names, f Filter, withBody bool, fn func(*Letter) error) error {
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("dead-letter stream %s: %w", names.DLQStream(), err)
	}
	last := info.State.LastSeq
	if f.SeqTo != 0 && f.SeqTo < last {
		last = f.SeqTo
	}
	if info.State.Msgs == 0 || last == 0 || f.SeqFrom > last {
		return nil
	}

	cfg := jetstream.ConsumerConfig{
		AckPolicy:         jetstream.AckNonePolicy,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		HeadersOnly:       !withBody,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: scanConsumerIdle,
	}
	if f.Kind != "" {
		// Letters of earlier versions, and this version's.
		k := schemas.Kind(f.Kind)
		cfg.FilterSubjects = []string{names.DLQKindSubject(k), names.DLQKindWildcard(k)}
	}
	switch {
	case f.SeqFrom > 0:
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = f.SeqFrom
	case !f.Since.IsZero():
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		since := f.Since
		cfg.OptStartTime = &since
	}
	cons, err := stream.CreateConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("read dead-letter stream %s: %w", names.DLQStream(), err)
	}
	defer func() {
		// Clean up even when ctx was cancelled (Ctrl-C).
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = stream.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()

	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch, err := cons.FetchNoWait(fetchBatch)
		if err != nil {
			return fmt.Errorf("read dead-letter stream %s: %w", names.DLQStream(), err)
		}
		got := 0
		done := false
		for msg := range batch.Messages() {
			got++
			if done {
				continue // drain the batch
			}
			meta, err := msg.Metadata()
			if err != nil {
				return fmt.Errorf("read dead-letter stream %s: %w", names.DLQStream(), err)
			}
			seq := meta.Sequence.Stream
			if seq > last {
				done = true
				continue
			}
			if meta.NumPending == 0 || seq == last {
				done = true
			}
			if !f.Since.IsZero() && meta.Timestamp.Before(f.Since) {
				continue
			}
			if f.ErrorKind != "" && msg.Headers().Get(HeaderErrorKind) != f.ErrorKind {
				continue
			}
			l := newLetter(names, seq, msg.Subject(), meta.Timestamp, msg.Headers())
			if withBody {
				l.Data = msg.Data()
			}
			if err := fn(l); err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("read dead-letter stream %s: %w", names.DLQStream(), err)
		}
		if done || got == 0 {
			return nil
		}
	}
}

// Entry is one dead letter as `cgworker dlq list --json` prints it.
type Entry struct {
	Seq             uint64          `json:"seq"`
	Kind            string          `json:"kind"`
	ErrorKind       string          `json:"error_kind"`
	Error           string          `json:"error"`
	Errors          json.RawMessage `json:"errors,omitempty"`
	HTTPStatus      int             `json:"http_status,omitempty"`
	Attempts        uint64          `json:"attempts"`
	FailedAt        string          `json:"failed_at"`
	OriginalSubject string          `json:"original_subject"`
	OriginalStream  string          `json:"original_stream,omitempty"`
	OriginalSeq     uint64          `json:"original_seq,omitempty"`
	OriginalMsgID   string          `json:"original_msg_id,omitempty"`
	Reference       string          `json:"reference,omitempty"`
	HappenedAt      string          `json:"happened_at,omitempty"`
}

// EntryOf summarises l.
func EntryOf(l *Letter) Entry {
	h := l.Header
	e := Entry{
		Seq:             l.Seq,
		Kind:            l.Kind(),
		ErrorKind:       h.Get(HeaderErrorKind),
		Error:           h.Get(HeaderError),
		FailedAt:        h.Get(HeaderFailedAt),
		OriginalSubject: h.Get(HeaderOriginalSubject),
		OriginalStream:  h.Get(HeaderOriginalStream),
		OriginalMsgID:   h.Get(HeaderOriginalMsgID),
		Reference:       h.Get(HeaderReference),
		HappenedAt:      h.Get(HeaderHappenedAt),
	}
	if errs := h.Get(HeaderErrors); errs != "" && json.Valid([]byte(errs)) {
		e.Errors = json.RawMessage(errs)
	}
	e.HTTPStatus, _ = strconv.Atoi(h.Get(HeaderHTTPStatus))
	e.Attempts, _ = strconv.ParseUint(h.Get(HeaderAttempts), 10, 64)
	e.OriginalSeq, _ = strconv.ParseUint(h.Get(HeaderOriginalSeq), 10, 64)
	return e
}

// listSummaryBytes bounds the error summary in List's table.
const listSummaryBytes = 80

// Entries calls fn with the entry of every dead letter matching f, in
// stream order, reading headers only. It is what List prints and what
// `cgworker status` counts, so the two never disagree on a letter.
func Entries(ctx context.Context, js jetstream.JetStream, names queue.Names, f Filter, fn func(Entry) error) error {
	stream, err := dlqStream(ctx, js, names)
	if err != nil {
		return err
	}
	return scan(ctx, stream, names, f, false, func(l *Letter) error { return fn(EntryOf(l)) })
}

// List writes the dead letters matching f to w, one per line: a table for
// people, or with jsonOut one JSON object (Entry) per line and nothing
// else, for scripts. It returns how many it wrote.
func List(ctx context.Context, js jetstream.JetStream, names queue.Names, f Filter, w io.Writer, jsonOut bool) (n int, err error) {
	const row = "%-10v %-8v %-10v %-8v %-20v %v\n"
	// The table's head, once: before the first letter, or alone.
	head := sync.OnceFunc(func() { fmt.Fprintf(w, row, "SEQ", "KIND", "ERROR-KIND", "ATTEMPTS", "FAILED-AT", "ERROR") })
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	err = Entries(ctx, js, names, f, func(e Entry) error {
		n++
		if jsonOut {
			return enc.Encode(e)
		}
		head()
		_, err := fmt.Fprintf(w, row, e.Seq, e.Kind, e.ErrorKind, e.Attempts, e.FailedAt, schemas.OneLine(e.Error, listSummaryBytes))
		return err
	})
	if !jsonOut && err == nil {
		head()
		fmt.Fprintf(w, "%s\n", count(n, "dead letter"))
	}
	return n, err
}

// Show writes the dead letter at seq to w: where it is, its headers, its
// errors and its body, JSON pretty-printed (the body as stored when it is
// not JSON).
func Show(ctx context.Context, js jetstream.JetStream, names queue.Names, seq uint64, w io.Writer) error {
	stream, err := dlqStream(ctx, js, names)
	if err != nil {
		return err
	}
	raw, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("no dead letter at sequence %d in %s", seq, names.DLQStream())
	}
	if err != nil {
		return fmt.Errorf("dead letter %d: %w", seq, err)
	}
	l := newLetter(names, raw.Sequence, raw.Subject, raw.Time, raw.Header)
	l.Data = raw.Data
	ref := l.Header.Get(HeaderBodyRef)
	if err := resolve(ctx, js, names, l); err != nil {
		return err
	}

	var b bytes.Buffer
	fmt.Fprintf(&b, "seq:     %d\n", l.Seq)
	fmt.Fprintf(&b, "subject: %s\n", l.Subject)
	fmt.Fprintf(&b, "stored:  %s\n", l.Stored.UTC().Format(time.RFC3339Nano))
	if ref != "" {
		fmt.Fprintf(&b, "body in: object store %s, object %s\n", names.DLQBodiesBucket(), ref)
	}
	b.WriteString("headers:\n")
	keys := make([]string, 0, len(l.Header))
	for k := range l.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range l.Header[k] {
			fmt.Fprintf(&b, "  %s: %s\n", k, v)
		}
	}
	if errs := l.Header.Get(HeaderErrors); errs != "" {
		b.WriteString("errors:\n  ")
		if err := json.Indent(&b, []byte(errs), "  ", "  "); err != nil {
			b.WriteString(errs)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "body (%d bytes):\n", len(l.Data))
	if err := json.Indent(&b, l.Data, "", "  "); err != nil {
		b.Write(l.Data)
	}
	b.WriteByte('\n')
	_, err = w.Write(b.Bytes())
	return err
}

// ReplayOptions change what Replay does.
type ReplayOptions struct {
	DryRun bool // only write what would be done
	// To sends letters of events on an unknown subject to this kind's
	// subject (once the producer is fixed). Letters of a kind are still
	// replayed to their own subject, and refused when To names another.
	To schemas.Kind
}

// Replay republishes every dead letter matching f to its original subject
// with ReplayHeader's headers, under ReplayMsgID, waits for the events
// stream to acknowledge it, and only then deletes the dead letter (and
// then its body in the object store, if it had one there). A letter whose
// body is in the object store is replayed with that body and its headers,
// as if it had been stored whole. With opts.DryRun it only writes what it
// would do. It writes progress every 1,000 dead letters and a final count
// to w, and returns how many it replayed.
//
// Re-running an interrupted replay replays nothing twice within the events
// stream's duplicate window (2 minutes by default): a dead letter that was
// published but not yet deleted is published again under the same message
// id, deduplicated, and then deleted. At most one dead letter per
// interruption is in that state, and only a re-run after the window could
// publish it a second time (for an activity the API upserts on its
// reference, so it still updates the same activity).
//
// Some letters are refused, reported on w and left in place, and the
// replay then ends with an error once the others are replayed: a letter
// whose dead-letter subject and CG-Original-Subject name different kinds
// (someone published it by hand, or moved it), a letter of a kind when
// opts.To names another, and a letter of an unknown subject without
// opts.To (no consumer would read it there, and the letter would be
// deleted for nothing).
func Replay(ctx context.Context, js jetstream.JetStream, names queue.Names, f Filter, opts ReplayOptions, w io.Writer) (n int, err error) {
	stream, err := dlqStream(ctx, js, names)
	if err != nil {
		return 0, err
	}
	refused := 0
	err = scan(ctx, stream, names, f, !opts.DryRun, func(l *Letter) error {
		subject, why := replaySubject(names, l, opts.To)
		if why != "" {
			refused++
			fmt.Fprintf(w, "refused seq %d: %s\n", l.Seq, why)
			return nil
		}
		if opts.DryRun {
			n++
			fmt.Fprintf(w, "would replay seq %d (%s, %s) to %s\n", l.Seq, l.Kind(), l.Header.Get(HeaderErrorKind), subject)
			return nil
		}
		if err := resolve(ctx, js, names, l); err != nil {
			return err
		}
		msg := &nats.Msg{Subject: subject, Header: ReplayHeader(l.Header), Data: l.Data}
		if _, err := queue.Publish(ctx, js, msg, ReplayMsgID(names.DLQStream(), l.Seq)); err != nil {
			return fmt.Errorf("replay dead letter %d: %w", l.Seq, err)
		}
		if _, err := deleteLetter(ctx, js, names, stream, l); err != nil {
			return fmt.Errorf("dead letter %d was replayed but not deleted (a re-run deduplicates it): %w", l.Seq, err)
		}
		n++
		if n%progressEvery == 0 {
			fmt.Fprintf(w, "replayed %d dead letters so far\n", n)
		}
		return nil
	})
	verb := "replayed"
	if opts.DryRun {
		verb = "would replay"
	}
	line := verb + " " + count(n, "dead letter")
	if refused > 0 {
		line += fmt.Sprintf("; refused %d", refused)
	}
	fmt.Fprintln(w, line)
	if err == nil && refused > 0 {
		err = fmt.Errorf("refused %s (see above); they stay in %s", count(refused, "dead letter"), names.DLQStream())
	}
	return n, err
}

// replaySubject is where l is replayed to, or why it is not.
func replaySubject(names queue.Names, l *Letter, to schemas.Kind) (subject, refused string) {
	orig := l.Header.Get(HeaderOriginalSubject)
	origKind := originalKind(names, orig)
	if kind := schemas.Kind(l.Kind()); kind != origKind {
		return "", fmt.Sprintf("kinds disagree: its subject %s says %s but %s %q says %s; replay it by hand if you know which is right",
			l.Subject, kind, HeaderOriginalSubject, orig, origKind)
	}
	switch {
	case origKind == queue.UnknownKind && to == "":
		return "", fmt.Sprintf("%s %q is not an event subject; send it to a kind's subject with --to KIND", HeaderOriginalSubject, orig)
	case origKind == queue.UnknownKind:
		return names.EventSubject(to), ""
	case to != "" && to != origKind:
		return "", fmt.Sprintf("it is a dead letter of kind %s, not %s (--to)", origKind, to)
	}
	return orig, ""
}

// Purge deletes every dead letter matching f, writing progress every
// 1,000 and a final count to w, and returns how many it deleted.
func Purge(ctx context.Context, js jetstream.JetStream, names queue.Names, f Filter, w io.Writer) (n int, err error) {
	stream, err := dlqStream(ctx, js, names)
	if err != nil {
		return 0, err
	}
	err = scan(ctx, stream, names, f, false, func(l *Letter) error {
		deleted, err := deleteLetter(ctx, js, names, stream, l)
		if err != nil {
			return fmt.Errorf("delete dead letter %d: %w", l.Seq, err)
		}
		if !deleted {
			return nil // another purge or replay took it
		}
		n++
		if n%progressEvery == 0 {
			fmt.Fprintf(w, "purged %d dead letters so far\n", n)
		}
		return nil
	})
	fmt.Fprintf(w, "purged %s\n", count(n, "dead letter"))
	return n, err
}

// deleteLetter deletes the letter l, then its body in the object store if
// it has one there (the reverse of Store's order, so no letter is ever
// left without its body). A letter already gone (a concurrent purge or
// replay) is not an error; deleted reports whether this call removed it,
// so two purges at once count each letter once between them. A failed
// delete says why only as text (ErrMsgDeleteUnsuccessful), so a failure is
// followed by a look-up that tells "already gone" apart from a real
// failure.
func deleteLetter(ctx context.Context, js jetstream.JetStream, names queue.Names, stream jetstream.Stream, l *Letter) (deleted bool, err error) {
	deleted = true
	if err := stream.DeleteMsg(ctx, l.Seq); err != nil {
		if _, gerr := stream.GetMsg(ctx, l.Seq); !errors.Is(gerr, jetstream.ErrMsgNotFound) {
			return false, err
		}
		deleted = false
	}
	return deleted, deleteBody(ctx, js, names, l.Header)
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
