package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/deadletter"
	"github.com/cgworker/cgworker/queue/embedded"
	"github.com/cgworker/cgworker/queue/natstest"
	"github.com/cgworker/cgworker/schemas"
	"github.com/cgworker/cgworker/worker"
	"github.com/cgworker/cgworker/worker/health"
)

// A message whose dead letter was stored, but which came back after the
// worker died before acknowledging it, and after longer than the
// dead-letter stream's duplicate window, with a delivery count of 1 again
// (its consumer made anew): it is still dead-lettered once.
func TestDeadLetteredOnceAfterTheDuplicateWindow(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	ctx := context.Background()
	const window = 100 * time.Millisecond // the server's shortest
	s, err := w.js.Stream(ctx, w.names.DLQStream())
	if err != nil {
		t.Fatal(err)
	}
	sc := s.CachedInfo().Config
	sc.Duplicates = window
	if _, err := w.js.UpdateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}

	seq := w.publish(schemas.Activity, `{"account":"ACME"}`, nil)
	first := w.start(nil, testConfig())
	waitFor(t, 10*time.Second, "first dead letter", func() bool { _, ok := first.final(seq); return ok })
	if err := first.stop(t); err != nil {
		t.Fatal(err)
	}
	letters := w.deadLetters()
	if len(letters) != 1 {
		t.Fatalf("%d dead letters after the first worker, want 1", len(letters))
	}
	// The crash: the acknowledgement never happened, so the message is
	// delivered again from the start, counted as a first delivery.
	if err := w.js.DeleteConsumer(ctx, w.names.EventsStream(), w.names.Consumer(schemas.Activity)); err != nil {
		t.Fatal(err)
	}
	stored := letters[0].Time
	waitFor(t, 5*time.Second, "the duplicate window to pass", func() bool { return time.Since(stored) > 3*window })

	second := w.start(nil, testConfig())
	waitFor(t, 10*time.Second, "second settling", func() bool { _, ok := second.final(seq); return ok })
	if s, _ := second.final(seq); s.Action != worker.DeadLetter {
		t.Fatalf("second worker: %v, want dead-lettered (acknowledged)", s.Action)
	}
	if n := len(w.deadLetters()); n != 1 {
		t.Fatalf("%d dead letters for one message, want 1", n)
	}
	waitFor(t, 5*time.Second, "the message acknowledged", func() bool { return w.consumerSettled(schemas.Activity) })
}

// The dead letter too big to store, on a server with NATS's
// default 1 MiB max_payload (the 8 MiB body on dev's 8 MiB server
// is the same case, eight times slower under the race detector): the event
// fits, its dead letter with the added headers does not. It settles once,
// its body in the object store, and `dlq show` and `dlq replay` give it
// back with its headers.
func TestOversizedDeadLetterSettlesOnce(t *testing.T) {
	t.Parallel()
	const maxPayload = 1 << 20
	w := setupWithMaxPayload(t, maxPayload)
	ctx := context.Background()
	body := bytes.Repeat([]byte("x"), maxPayload-200) // not JSON
	seq := w.publish(schemas.Activity, string(body), map[string]string{"X-Producer": "p1", "CG-Configuration": "c9"})

	cfg := testConfig()
	cfg.AckWait = 10 * time.Second // megabytes under the race detector
	r := w.start(nil, cfg)
	waitFor(t, 20*time.Second, "dead-lettered", func() bool { _, ok := r.final(seq); return ok })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	for _, s := range r.settledOf(seq) {
		if s.Action != worker.DeadLetter {
			t.Fatalf("settled %+v, want dead-lettered and never handed back", s)
		}
	}
	letter := oneLetter(t, w)
	ref := letter.Header.Get(deadletter.HeaderBodyRef)
	if ref == "" || len(letter.Data) != 0 || letter.Header.Get("X-Producer") != "" {
		t.Fatalf("letter not stored in its small form: ref %q, %d body bytes, headers %v", ref, len(letter.Data), letter.Header)
	}
	if !strings.HasPrefix(letter.Subject, "cg.dlq.activity.CG_EVENTS-") || letter.Header.Get(deadletter.HeaderErrorKind) == "" {
		t.Fatalf("letter %s %v", letter.Subject, letter.Header)
	}

	var out bytes.Buffer
	if err := deadletter.Show(ctx, w.js, w.names, letter.Sequence, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"body in: object store CG_DLQ_BODIES, object " + ref, "  X-Producer: p1\n", fmt.Sprintf("body (%d bytes):\nxxxx", len(body))} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("show lacks %q", want)
		}
	}

	out.Reset()
	if n, err := deadletter.Replay(ctx, w.js, w.names, deadletter.Filter{}, deadletter.ReplayOptions{}, &out); err != nil || n != 1 {
		t.Fatalf("replay = %d, %v: %s", n, err, out.String())
	}
	events, err := w.js.Stream(ctx, w.names.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	replayed, err := events.GetMsg(ctx, events.CachedInfo().State.LastSeq)
	if err != nil {
		t.Fatal(err)
	}
	if replayed.Sequence == seq || !bytes.Equal(replayed.Data, body) || replayed.Header.Get("X-Producer") != "p1" || replayed.Header.Get("CG-Configuration") != "c9" {
		t.Errorf("replayed seq %d, %d bytes with headers %v", replayed.Sequence, len(replayed.Data), replayed.Header)
	}
	if n := len(w.deadLetters()); n != 0 {
		t.Errorf("%d dead letters left after the replay", n)
	}
	assertNoBody(t, w, ref)
}

// A small invalid body with a 65,300-byte header: the event fits in
// JetStream's 64 KiB header limit, its dead letter would not. It is stored
// in its small form; a purge removes the letter and its object.
func TestHugeHeaderDeadLetterSettlesOnce(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	ctx := context.Background()
	seq := w.publish(schemas.Activity, `{"account":"ACME"}`, map[string]string{"X-Big": strings.Repeat("h", 65_300)})

	r := w.start(nil, testConfig())
	waitFor(t, 10*time.Second, "dead-lettered", func() bool { _, ok := r.final(seq); return ok })
	if got := r.settledOf(seq); len(got) != 1 || got[0].Action != worker.DeadLetter {
		t.Fatalf("settled %+v, want one dead letter and no hand-back", got)
	}
	letter := oneLetter(t, w)
	ref := letter.Header.Get(deadletter.HeaderBodyRef)
	if ref == "" || letter.Header.Get("X-Big") != "" {
		t.Fatalf("letter not stored in its small form: %v", letter.Header)
	}
	var out bytes.Buffer
	if err := deadletter.Show(ctx, w.js, w.names, letter.Sequence, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "  X-Big: hhhh") || !strings.Contains(out.String(), `"account": "ACME"`) {
		t.Errorf("show lacks the header or the body:\n%.300s", out.String())
	}
	if n, err := deadletter.Purge(ctx, w.js, w.names, deadletter.Filter{}, &out); err != nil || n != 1 {
		t.Fatalf("purge = %d, %v", n, err)
	}
	if n := len(w.deadLetters()); n != 0 {
		t.Errorf("%d dead letters left after the purge", n)
	}
	assertNoBody(t, w, ref)
}

// TestDeadLetterBodyStoreUnavailable: a letter that needs the object store
// while its bucket is gone is not stored by half (never a letter without
// its body): the message is handed back, and dead-lettered whole once the
// bucket is back. A letter whose object has gone since says so to show and
// replay, and replay keeps it.
func TestDeadLetterBodyStoreUnavailable(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	ctx := context.Background()
	if err := w.js.DeleteObjectStore(ctx, w.names.DLQBodiesBucket()); err != nil {
		t.Fatal(err)
	}
	seq := w.publish(schemas.Activity, `{"account":"ACME"}`, map[string]string{"X-Big": strings.Repeat("h", 65_300)})
	r := w.start(nil, testConfig())
	waitFor(t, 10*time.Second, "handed back", func() bool {
		return slices.ContainsFunc(r.settledOf(seq), func(s worker.Settled) bool { return s.Action == worker.Retry })
	})
	if n := len(w.deadLetters()); n != 0 {
		t.Fatalf("%d letters stored while their body could not be", n)
	}
	if _, err := queue.EnsureDLQBodies(ctx, w.js, queue.StreamConfig{Names: w.names}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "dead-lettered once the bucket is back", func() bool { _, ok := r.final(seq); return ok })
	if s, _ := r.final(seq); s.Action != worker.DeadLetter {
		t.Fatalf("settled %+v, want dead-lettered", s)
	}
	letter := oneLetter(t, w)
	ref := letter.Header.Get(deadletter.HeaderBodyRef)

	obs, err := w.js.ObjectStore(ctx, w.names.DLQBodiesBucket())
	if err != nil {
		t.Fatal(err)
	}
	if err := obs.Delete(ctx, ref); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := deadletter.Show(ctx, w.js, w.names, letter.Sequence, &out); err == nil || !strings.Contains(err.Error(), ref) {
		t.Errorf("show of a letter without its object = %v, want an error naming %s", err, ref)
	}
	if n, err := deadletter.Replay(ctx, w.js, w.names, deadletter.Filter{}, deadletter.ReplayOptions{}, &out); err == nil || n != 0 {
		t.Errorf("replay of a letter without its object = %d, %v; want an error", n, err)
	}
	if n := len(w.deadLetters()); n != 1 {
		t.Errorf("%d letters after a failed replay, want the one kept", n)
	}
}

// While the dead letters cannot be stored at all, the message is handed
// back with a delay that grows with each delivery; once the store is back,
// it is dead-lettered once.
func TestDeadLetterStoreDownHandBackGrows(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	ctx := context.Background()
	if err := w.js.DeleteStream(ctx, w.names.DLQStream()); err != nil {
		t.Fatal(err)
	}
	seq := w.publish(schemas.Activity, `{"account":"ACME"}`, nil)
	hl := health.New(true, false)
	mp, base := metricsServer(t, hl)
	cfg := testConfig()
	cfg.MeterProvider, cfg.Health = mp, hl
	r := w.start(nil, cfg)
	waitFor(t, 10*time.Second, "three hand-backs", func() bool { return len(r.settledOf(seq)) >= 3 })
	got := r.settledOf(seq)[:3]
	for i, s := range got {
		if s.Action != worker.Retry || s.Delay <= 0 {
			t.Fatalf("settling %d: %+v, want a hand-back with a delay", i, s)
		}
		if i > 0 && s.Delay <= got[i-1].Delay {
			t.Fatalf("hand-back delays %v, %v: not growing", got[i-1].Delay, s.Delay)
		}
	}
	labels := map[string]string{"kind": "activity", "error_kind": "schema"}
	if n := scrapeMetrics(t, base).value(t, "cgworker_dead_letter_failures_total", labels); n < 3 {
		t.Errorf("cgworker_dead_letter_failures_total = %v, want at least 3", n)
	}

	if err := queue.EnsureStreams(ctx, w.js, queue.StreamConfig{Names: w.names, AckWait: time.Second}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "dead-lettered once the store is back", func() bool { _, ok := r.final(seq); return ok })
	if n := len(w.deadLetters()); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}
}

// Events on subjects of an operator's cg.events.> stream that are no
// kind's are dead-lettered as unknown-subject, each once, including a
// subject that appears later with earlier sequences behind the consumer;
// a kind not consumed for want of its configuration is not unknown. Such a
// letter is listed by --error-kind unknown-subject and replayed with --to.
func TestUnknownSubjectsAreDeadLettered(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	ctx := context.Background()
	w.widenEventsStream(t)
	publish := func(subject, body string) uint64 {
		return w.publishOn(subject, body, map[string]string{"X-Producer": "p"})
	}
	valid := `{"account":"ACME","type":"T","source":"S"}`
	unknown := map[uint64]string{}
	for _, subj := range []string{"cg.events.ticket", "cg.events.Activity", "cg.events.activity.v2"} {
		unknown[publish(subj, valid)] = subj
	}
	account := w.publish(schemas.Account, `{"Account Name":"ACME"}`, nil) // not consumed: no configuration

	cfg := testConfig()
	cfg.Kinds = []schemas.Kind{schemas.Activity}
	cfg.UnknownSubjectsInterval = 50 * time.Millisecond
	r := w.start(nil, cfg)
	allSettled := func() bool {
		for seq := range unknown {
			if _, ok := r.final(seq); !ok {
				return false
			}
		}
		return true
	}
	waitFor(t, 10*time.Second, "unknown subjects dead-lettered", allSettled)
	// A new subject, and more on a known one: the new subject's earlier
	// message must not be skipped when the consumer takes it on.
	unknown[publish("cg.events.new", valid)] = "cg.events.new"
	unknown[publish("cg.events.ticket", valid)] = "cg.events.ticket"
	waitFor(t, 10*time.Second, "later unknown subjects dead-lettered", allSettled)
	// A subject's consumer deleted under the running worker (by hand, say):
	// a sweep makes it again, and the subject's new events are still read;
	// its old ones, read again, find their letters stored already.
	if err := w.js.DeleteConsumer(ctx, w.names.EventsStream(), w.names.UnknownConsumer("cg.events.ticket")); err != nil {
		t.Fatal(err)
	}
	unknown[publish("cg.events.ticket", valid)] = "cg.events.ticket"
	waitFor(t, 10*time.Second, "unknown events dead-lettered after their consumer was deleted", allSettled)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}

	letters := w.deadLetters()
	if len(letters) != len(unknown) {
		t.Fatalf("%d dead letters, want %d", len(letters), len(unknown))
	}
	for _, l := range letters {
		orig := l.Header.Get(deadletter.HeaderOriginalSubject)
		if !strings.HasPrefix(l.Subject, "cg.dlq.unknown.CG_EVENTS-") || l.Header.Get(deadletter.HeaderErrorKind) != "unknown-subject" ||
			!strings.Contains(orig, ".") || l.Header.Get("X-Producer") != "p" {
			t.Errorf("letter %s: %v", l.Subject, l.Header)
		}
	}
	for _, st := range r.settledOf(account) {
		t.Errorf("the account event of an unconsumed kind was settled: %+v", st)
	}

	var out bytes.Buffer
	f, err := deadletter.ParseFilter("", "unknown-subject", "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := deadletter.List(ctx, w.js, w.names, f, &out, true); err != nil || n != len(unknown) {
		t.Fatalf("list --error-kind unknown-subject = %d, %v", n, err)
	}

	// The producer fixed, one letter goes to the activity subject.
	one := deadletter.Filter{SeqFrom: letters[0].Sequence, SeqTo: letters[0].Sequence}
	if n, err := deadletter.Replay(ctx, w.js, w.names, one, deadletter.ReplayOptions{}, &out); err == nil || n != 0 {
		t.Errorf("replay of an unknown-subject letter without --to = %d, %v", n, err)
	}
	if n, err := deadletter.Replay(ctx, w.js, w.names, one, deadletter.ReplayOptions{To: schemas.Activity}, &out); err != nil || n != 1 {
		t.Fatalf("replay --to activity = %d, %v: %s", n, err, out.String())
	}
	got := natstest.Messages(t, w.js, w.names.EventsStream(), w.names.EventSubject(schemas.Activity))
	if len(got) != 1 || string(got[0].Data) != valid || got[0].Header.Get("X-Producer") != "p" {
		t.Fatalf("replayed to %s: %d messages", w.names.EventSubject(schemas.Activity), len(got))
	}
}

// TestUnknownSubjectLettersStayGone: a letter of an unknown subject,
// purged (or replayed elsewhere), does not come back when another unknown
// subject appears; and the events the single consumer of older versions
// had settled are not read again. One consumer per subject, never made
// again while its subject holds messages, is what holds both.
func TestUnknownSubjectLettersStayGone(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	ctx := context.Background()
	w.widenEventsStream(t)
	publish := func(subject string) uint64 {
		return w.publishOn(subject, `{"account":"ACME","type":"T","source":"S"}`, nil)
	}
	// An older version's consumer of cg.events.old settled its first event.
	settledBefore, pending := publish("cg.events.old"), publish("cg.events.old")
	natstest.LegacyUnknownConsumer(t, w.js, w.names, "cg.events.old", 1)
	first := publish("cg.events.typo")

	cfg := testConfig()
	cfg.Kinds = []schemas.Kind{schemas.Activity}
	cfg.UnknownSubjectsInterval = 50 * time.Millisecond
	r := w.start(nil, cfg)
	settled := func(seqs ...uint64) func() bool {
		return func() bool {
			for _, seq := range seqs {
				if _, ok := r.final(seq); !ok {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, 10*time.Second, "unknown subjects dead-lettered", settled(pending, first))
	if n, err := deadletter.Purge(ctx, w.js, w.names, deadletter.Filter{}, io.Discard); err != nil || n != 2 {
		t.Fatalf("purge = %d, %v; want the 2 letters", n, err)
	}
	// A new subject that sorts after both: once its event is settled, the
	// sweep has been past their consumers since the subjects changed.
	later := publish("cg.events.zzz")
	waitFor(t, 10*time.Second, "the new subject's event dead-lettered", settled(later))
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{settledBefore, pending, first, later} {
		want := 1
		if seq == settledBefore {
			want = 0 // settled by the older version
		}
		if got := r.settledOf(seq); len(got) != want {
			t.Errorf("event %d settled %d times, want %d: %+v", seq, len(got), want, got)
		}
	}
	if letters := w.deadLetters(); len(letters) != 1 {
		t.Errorf("%d letters after the purge, want only the new subject's", len(letters))
	}
}

// widenEventsStream makes the events stream take <prefix>.events.>, as an
// operator's stream may, so that it stores events on unknown subjects.
func (w *world) widenEventsStream(t *testing.T) {
	t.Helper()
	s, err := w.js.Stream(t.Context(), w.names.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	sc := s.CachedInfo().Config
	sc.Subjects = []string{w.names.EventsWildcard()}
	if _, err := w.js.UpdateStream(t.Context(), sc); err != nil {
		t.Fatal(err)
	}
}

// setupWithMaxPayload is setup on a server with the given max_payload.
func setupWithMaxPayload(t *testing.T, maxPayload int32) *world {
	t.Helper()
	srv, err := embedded.Start(embedded.Options{StoreDir: t.TempDir(), Port: -1, MaxPayload: maxPayload})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	w := setup(t, emulator.Options{}) // for the emulator and the validator
	w.nc, err = nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.nc.Close)
	w.js = mustJS(t, w.nc)
	if err := queue.EnsureStreams(context.Background(), w.js, queue.StreamConfig{Names: w.names, AckWait: time.Second}); err != nil {
		t.Fatal(err)
	}
	return w
}

// oneLetter returns the only dead letter.
func oneLetter(t *testing.T, w *world) *jetstream.RawStreamMsg {
	t.Helper()
	letters := w.deadLetters()
	if len(letters) != 1 {
		t.Fatalf("%d dead letters, want 1", len(letters))
	}
	return letters[0]
}

// assertNoBody fails when the object store still holds ref.
func assertNoBody(t *testing.T, w *world, ref string) {
	t.Helper()
	obs, err := w.js.ObjectStore(context.Background(), w.names.DLQBodiesBucket())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.GetInfo(context.Background(), ref); err == nil {
		t.Errorf("object %s still in %s", ref, w.names.DLQBodiesBucket())
	}
}
