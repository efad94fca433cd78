package responses

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/cgapi/cgapitest"
	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/natstest"
	"github.com/cgworker/cgworker/worker/proctest"
)

// firstNumber is the emulator's number_customergauge of its first response.
const firstNumber = 1001

var testWith = []string{"selected_drivers", "tags", "questions", "properties"}

// world is one test's emulator and NATS server.
type world struct {
	t     testing.TB
	emu   *emulator.Server
	nats  *natstest.Server
	names queue.Names
	js    jetstream.JetStream
	kv    jetstream.KeyValue
}

// setup starts an emulator seeded with responses and a NATS server. With
// dupWindow > 0 the test creates CG_RESPONSES itself with that duplicate
// window before EnsureStreams, as an operator might.
func setup(t testing.TB, responses int, dupWindow time.Duration) *world {
	t.Helper()
	return setupWith(t, emulator.Options{Responses: responses, NoRequestLog: true}, dupWindow)
}

// setupWith is setup with the emulator's options spelt out.
func setupWith(t testing.TB, opts emulator.Options, dupWindow time.Duration) *world {
	t.Helper()
	w := &world{
		t:     t,
		emu:   cgapitest.NewServer(t, opts),
		nats:  natstest.NewServer(t),
		names: queue.NewNames(""),
	}
	w.js, w.kv = w.connect()
	ctx := testContext(t)
	if dupWindow > 0 {
		_, err := w.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:       w.names.ResponsesStream(),
			Subjects:   []string{w.names.ResponsesSubject()},
			Storage:    jetstream.FileStorage,
			Duplicates: dupWindow,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := queue.EnsureStreams(ctx, w.js, queue.StreamConfig{Names: w.names}); err != nil {
		t.Fatal(err)
	}
	return w
}

// connect opens a NATS connection of its own, as another replica would.
func (w *world) connect() (jetstream.JetStream, jetstream.KeyValue) {
	w.t.Helper()
	js := w.nats.JetStream(w.t, nats.ReconnectWait(20*time.Millisecond), nats.MaxReconnects(-1))
	kv, err := queue.EnsureSyncBucket(testContext(w.t), js, queue.StreamConfig{Names: w.names})
	if err != nil {
		w.t.Fatal(err)
	}
	return js, kv
}

func (w *world) client() *cgapi.Client {
	w.t.Helper()
	c := cgapitest.NewClient(w.t, w.emu, emulator.Options{})
	return c
}

// newSync returns a Sync on a connection of its own; cfg's zero fields get
// test defaults.
func (w *world) newSync(cfg Config) *Sync {
	w.t.Helper()
	js, kv := w.connect()
	return w.newSyncOn(js, kv, cfg)
}

func (w *world) newSyncOn(js jetstream.JetStream, kv jetstream.KeyValue, cfg Config) *Sync {
	cfg.Names = w.names
	if cfg.PerPage == 0 {
		cfg.PerPage = 500
	}
	if cfg.With == nil {
		cfg.With = testWith
	}
	if cfg.MaxElapsed == 0 {
		cfg.MaxElapsed = 10 * time.Second
	}
	cfg.retryInitial = 5 * time.Millisecond
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	return New(w.client(), js, kv, cfg)
}

func testLogger() *slog.Logger {
	if os.Getenv("RESPONSES_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// messages returns every message on the responses subject in order.
func (w *world) messages() []*jetstream.RawStreamMsg {
	w.t.Helper()
	return natstest.Messages(w.t, w.js, w.names.ResponsesStream(), w.names.ResponsesSubject())
}

// checkExactlyOnce asserts the subject holds, after the first skip
// messages, exactly the emulator's responses from the first one, once each,
// in order, with the right headers and bodies, published under generation
// gen.
func (w *world) checkExactlyOnce(msgs []*jetstream.RawStreamMsg, gen int) {
	w.t.Helper()
	want := w.emu.Responses(testWith...)
	if len(msgs) != len(want) {
		w.t.Fatalf("%d messages, want %d", len(msgs), len(want))
	}
	for i, m := range msgs {
		n := int64(firstNumber + i)
		if got := m.Header.Get(HeaderNumber); got != strconv.FormatInt(n, 10) {
			w.t.Fatalf("message %d: %s %q, want %d", i, HeaderNumber, got, n)
		}
		if got, want := m.Header.Get(jetstream.MsgIDHeader), MsgID(n, gen); got != want {
			w.t.Fatalf("message %d: Nats-Msg-Id %q, want %q", i, got, want)
		}
		if got := m.Header.Get(HeaderGeneration); got != strconv.Itoa(gen) {
			w.t.Fatalf("message %d: %s %q, want %d", i, HeaderGeneration, got, gen)
		}
		if !bytes.Equal(m.Data, want[i]) {
			w.t.Fatalf("message %d: body differs from the API's\n got %s\nwant %s", i, m.Data, want[i])
		}
	}
}

// checkNumbers asserts the messages carry each of firstNumber..firstNumber+n-1
// exactly once, in increasing order.
// syncResetAndCrash syncs everything, resets the sync, and runs a resync
// that crashes after published publishes. It returns the state as it was
// before the reset, a backup an operator might restore.
func (w *world) syncResetAndCrash(ctx context.Context, published int) (backup []byte) {
	w.t.Helper()
	if _, err := w.newSync(Config{}).Once(ctx); err != nil {
		w.t.Fatal(err)
	}
	e, err := w.kv.Get(ctx, stateKey)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := Reset(ctx, w.kv); err != nil {
		w.t.Fatal(err)
	}
	w.crashAfter(ctx, Config{}, published)
	return e.Value()
}

// crashAfter runs a pass with cfg that crashes (its context cancelled)
// after published publishes were acknowledged.
func (w *world) crashAfter(ctx context.Context, cfg Config, published int) {
	w.t.Helper()
	crashCtx, crash := context.WithCancel(ctx)
	defer crash()
	n := 0
	cfg.afterPublish = func(context.Context, int64) {
		if n++; n == published {
			crash()
		}
	}
	if _, err := w.newSync(cfg).Once(crashCtx); !errors.Is(err, context.Canceled) {
		w.t.Fatalf("crashed pass: %v, want context.Canceled", err)
	}
}

func checkNumbers(t testing.TB, msgs []*jetstream.RawStreamMsg, n int) {
	t.Helper()
	if len(msgs) != n {
		t.Fatalf("%d messages, want %d", len(msgs), n)
	}
	for i, m := range msgs {
		if got, want := m.Header.Get(HeaderNumber), strconv.Itoa(firstNumber+i); got != want {
			t.Fatalf("message %d has number %s, want %s", i, got, want)
		}
	}
}

func TestInitialLoadThenIncrement(t *testing.T) {
	t.Parallel()
	w := setup(t, 3000, 0)
	ctx := testContext(t)
	var cursors []string
	var published int
	s := w.newSync(Config{Hooks: Hooks{
		OnCursor:    func(c string) { cursors = append(cursors, c) },
		OnPublished: func(n int) { published += n },
	}})

	res, err := s.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 3000 || res.Skipped != 0 || res.Pages != 6 || res.Cursor != "3000" || res.LastNumber != 4000 {
		t.Fatalf("result %+v", res)
	}
	if published != 3000 || len(cursors) != 6 || cursors[5] != "3000" {
		t.Fatalf("hooks: published %d, cursors %v", published, cursors)
	}
	w.checkExactlyOnce(w.messages(), 0)

	st, err := Status(ctx, w.kv)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cursor != "3000" || st.LastNumber != 4000 || st.Resets != 0 || st.LastSuccess.IsZero() || st.LastError != "" || st.LeaseHolder != "" {
		t.Fatalf("status %+v", st)
	}

	// Nothing new: nothing published.
	if res, err := s.Once(ctx); err != nil || res.Published != 0 || res.Pages != 0 {
		t.Fatalf("idle pass: %+v, %v", res, err)
	}

	w.emu.AddResponses(750)
	res, err = w.newSync(Config{}).Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 750 || res.Skipped != 0 || res.Cursor != "3750" {
		t.Fatalf("second pass %+v", res)
	}
	w.checkExactlyOnce(w.messages(), 0)
}

func TestSpansAndTraceContext(t *testing.T) {
	t.Parallel()
	w := setup(t, 30, 0)
	ctx := testContext(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	if _, err := w.newSync(Config{PerPage: 20, TracerProvider: tp}).Once(ctx); err != nil {
		t.Fatal(err)
	}
	pages := map[string]bool{} // trace-id/span-id of each responses.page
	var syncs int
	for _, sp := range rec.Ended() {
		switch sp.Name() {
		case "responses.sync":
			syncs++
		case "responses.page":
			pages[sp.SpanContext().TraceID().String()+"-"+sp.SpanContext().SpanID().String()] = true
		}
	}
	if syncs != 1 || len(pages) != 3 { // two with data, one empty
		t.Fatalf("%d sync spans, %d page spans", syncs, len(pages))
	}
	for _, m := range w.messages() {
		tp := strings.Split(m.Header.Get("traceparent"), "-")
		if len(tp) != 4 || !pages[tp[1]+"-"+tp[2]] {
			t.Fatalf("traceparent %q is not a page span", m.Header.Get("traceparent"))
		}
	}
}

func TestConcurrentSyncsPublishOnce(t *testing.T) {
	t.Parallel()
	w := setup(t, 800, 0)
	ctx := testContext(t)
	syncs := []*Sync{w.newSync(Config{}), w.newSync(Config{}), w.newSync(Config{})}
	var wg sync.WaitGroup
	errs := make([]error, len(syncs))
	for i, s := range syncs {
		wg.Go(func() { _, errs[i] = s.Once(ctx) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrLeaseHeld):
			t.Fatalf("Once: %v", err)
		}
	}
	if ok == 0 {
		t.Fatal("no Sync completed")
	}
	// Whoever was turned away catches up with nothing left to do.
	for _, s := range syncs {
		if res, err := s.Once(ctx); err != nil || res.Published != 0 {
			t.Fatalf("catch-up pass: %+v, %v", res, err)
		}
	}
	w.checkExactlyOnce(w.messages(), 0)
}

// TestWritersWithoutSharedLease runs Syncs that keep their state in
// different buckets, so no lease keeps them apart: the expected last
// sequence and the skip rule alone must keep the stream exactly once.
func TestWritersWithoutSharedLease(t *testing.T) {
	t.Parallel()
	w := setup(t, 600, 0)
	ctx := testContext(t)
	var syncs []*Sync
	for i := range 3 {
		js, _ := w.connect()
		kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: fmt.Sprintf("OTHER_%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		syncs = append(syncs, w.newSyncOn(js, kv, Config{PerPage: 50}))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conflicts := 0
	for _, s := range syncs {
		wg.Go(func() {
			for ctx.Err() == nil {
				_, err := s.Once(ctx)
				if err == nil {
					return
				}
				if !errors.Is(err, ErrConcurrentWriter) {
					t.Errorf("Once: %v", err)
					return
				}
				mu.Lock()
				conflicts++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("%d passes stopped by a concurrent writer", conflicts)
	w.checkExactlyOnce(w.messages(), 0)
}

// TestCrashBetweenPublishAndCursorStore stops a pass in the middle of its
// second page, after some publishes were acknowledged and before that
// page's cursor was stored, on a stream whose duplicate window is far too
// short to help. A fresh Sync must publish the rest, no gap, no duplicate.
func TestCrashBetweenPublishAndCursorStore(t *testing.T) {
	t.Parallel()
	w := setup(t, 700, 100*time.Millisecond)
	ctx := testContext(t)
	w.crashAfter(ctx, Config{PerPage: 200}, 300)
	st, err := Status(ctx, w.kv)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cursor != "200" || st.LastNumber != 1200 {
		t.Fatalf("after the crash: %+v; want page 1's cursor", st)
	}
	checkNumbers(t, w.messages(), 300)

	res, err := w.newSync(Config{}).Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The 200 of page 2 already out were skipped by the number rule, not
	// swallowed as duplicates.
	if res.Skipped != 100 || res.Duplicates != 0 || res.Published != 400 {
		t.Fatalf("resumed pass %+v", res)
	}
	w.checkExactlyOnce(w.messages(), 0)
}

func TestMissingCursorNextKeepsCursor(t *testing.T) {
	t.Parallel()
	w := setup(t, 400, 0)
	ctx := testContext(t)
	s := w.newSync(Config{})
	if _, err := s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	w.emu.AddResponses(300)
	w.emu.SetCursorMode(emulator.CursorMissing)
	res, err := s.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 300 || res.Cursor != "400" {
		t.Fatalf("pass without cursor.next %+v", res)
	}
	w.emu.SetCursorMode(emulator.CursorNull)
	if res, err := s.Once(ctx); err != nil || res.Published != 0 || res.Skipped != 300 || res.Cursor != "400" {
		t.Fatalf("pass with null cursor.next %+v, %v", res, err)
	}
	w.emu.SetCursorMode(emulator.CursorString)
	w.emu.AddResponses(10)
	res, err = s.Once(ctx)
	if err != nil || res.Published != 10 || res.Skipped != 300 || res.Cursor != "710" {
		t.Fatalf("pass with cursor.next back %+v, %v", res, err)
	}
	st, _ := Status(ctx, w.kv)
	if st.Cursor != "710" || st.LastNumber != 1710 {
		t.Fatalf("status %+v", st)
	}
	w.checkExactlyOnce(w.messages(), 0)
}

func TestResponseWithoutNumberFailsPage(t *testing.T) {
	t.Parallel()
	w := setup(t, 600, 0)
	ctx := testContext(t)
	w.emu.AddRawResponses(
		json.RawMessage(`{"status":"response","number_customergauge":1601}`),
		json.RawMessage(`{"status":"response","nps":3}`),
		json.RawMessage(`{"status":"response","number_customergauge":1603}`),
	)
	var failures []error
	s := w.newSync(Config{Hooks: Hooks{OnFailure: func(err error) { failures = append(failures, err) }}})
	res, err := s.Once(ctx)
	if err == nil || !errors.Is(err, errNoNumber) {
		t.Fatalf("Once: %v, want a missing number error", err)
	}
	if res.Published != 500 || res.Cursor != "500" || len(failures) != 1 {
		t.Fatalf("result %+v, failures %v", res, failures)
	}
	// Nothing of the second page went out, not even the responses before
	// the bad one.
	checkNumbers(t, w.messages(), 500)
	st, err := Status(ctx, w.kv)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cursor != "500" || st.LastError == "" || st.LastErrorAt.IsZero() || !st.LastSuccess.IsZero() {
		t.Fatalf("status %+v", st)
	}
	// The next poll fails the same way, and publishes nothing.
	if res, err := s.Once(ctx); err == nil || res.Published != 0 {
		t.Fatalf("second pass %+v, %v", res, err)
	}
	checkNumbers(t, w.messages(), 500)
}

// TestOutageRetriedWithinPass breaks the API for a few calls in the middle
// of paging; the pass rides it out.
func TestOutageRetriedWithinPass(t *testing.T) {
	t.Parallel()
	w := setup(t, 800, 0)
	ctx := testContext(t)
	published := 0
	s := w.newSync(Config{PerPage: 200, afterPublish: func(context.Context, int64) {
		if published++; published == 400 { // page 2 done, page 3 next
			w.emu.FailNext(emulator.SyncPath, 503, 2)
			w.emu.FailNext(emulator.SyncPath, 429, 1)
			w.emu.FailNext(emulator.SyncPath, 500, 1)
		}
	}})
	w.emu.SetRetryAfter(-1) // no Retry-After, so the test does not wait a second
	res, err := s.Once(ctx)
	if err != nil || res.Published != 800 {
		t.Fatalf("Once: %+v, %v", res, err)
	}
	w.checkExactlyOnce(w.messages(), 0)
}

// TestOutageFailsPassNextResumes keeps the API down past the retry budget:
// the pass fails with its cursor after page 2, and the next pass resumes.
func TestOutageFailsPassNextResumes(t *testing.T) {
	t.Parallel()
	w := setup(t, 800, 0)
	ctx := testContext(t)
	published := 0
	s := w.newSync(Config{PerPage: 200, MaxElapsed: 100 * time.Millisecond, afterPublish: func(context.Context, int64) {
		if published++; published == 400 {
			w.emu.SetOutage(true)
		}
	}})
	res, err := s.Once(ctx)
	var te *cgapi.TransientError
	if !errors.As(err, &te) || res.Published != 400 || res.Cursor != "400" {
		t.Fatalf("Once during outage: %+v, %v", res, err)
	}
	st, _ := Status(ctx, w.kv)
	if st.Cursor != "400" || st.LastError == "" {
		t.Fatalf("status %+v", st)
	}
	w.emu.SetOutage(false)
	res, err = s.Once(ctx)
	if err != nil || res.Published != 400 || res.Skipped != 0 {
		t.Fatalf("pass after the outage: %+v, %v", res, err)
	}
	w.checkExactlyOnce(w.messages(), 0)
}

// TestResetDuringPass: an operator resets while a pass runs; the pass stops
// at its next cursor store and the next one resyncs everything.
func TestResetDuringPass(t *testing.T) {
	t.Parallel()
	w := setup(t, 600, 0)
	ctx := testContext(t)
	s := w.newSync(Config{PerPage: 200, afterPublish: func(_ context.Context, n int64) {
		if n == firstNumber+300 {
			if err := Reset(ctx, w.kv); err != nil {
				t.Error(err)
			}
		}
	}})
	res, err := s.Once(ctx)
	if !errors.Is(err, ErrStateChanged) || res.Cursor != "200" {
		t.Fatalf("pass during reset: %+v, %v", res, err)
	}
	s.cfg.afterPublish = nil
	if res, err := s.Once(ctx); err != nil || res.Published != 600 {
		t.Fatalf("resync: %+v, %v", res, err)
	}
	msgs := w.messages()
	checkNumbers(t, msgs[:400], 400) // the interrupted pass, generation 0
	w.checkExactlyOnce(msgs[400:], 1)
}

// TestNATSRestartMidPass restarts the server in the middle of a page.
func TestNATSRestartMidPass(t *testing.T) {
	t.Parallel()
	w := setup(t, 600, 0)
	ctx := testContext(t)
	restarted := false
	s := w.newSync(Config{PerPage: 200, afterPublish: func(_ context.Context, n int64) {
		if n == firstNumber+250 {
			w.nats.Restart(t)
			restarted = true
		}
	}})
	res, err := s.Once(ctx)
	if !restarted || err != nil || res.Published != 600 {
		t.Fatalf("Once: %+v, %v", res, err)
	}
	w.checkExactlyOnce(w.messages(), 0)
}

// TestPublishOutcomeUnknown stops the server under a publish, so it times
// out with its outcome unknown, and brings it back once the Sync is
// retrying: the subject's tail settles whether the publish went through.
func TestPublishOutcomeUnknown(t *testing.T) {
	t.Parallel()
	w := setup(t, 400, 0)
	ctx := testContext(t)
	down := false
	logger := slog.New(onLog{"publish failed; retrying", func() {
		if down { // runs on the pass's goroutine, this test's
			down = false
			w.nats.Start(t)
		}
	}})
	s := w.newSync(Config{PerPage: 200, Logger: logger, afterPublish: func(_ context.Context, n int64) {
		if n == firstNumber+250 {
			w.nats.Stop()
			down = true
		}
	}})
	s.cfg.publishTimeout = 200 * time.Millisecond
	res, err := s.Once(ctx)
	if err != nil || res.Published+res.Skipped != 400 {
		t.Fatalf("Once: %+v, %v", res, err)
	}
	w.checkExactlyOnce(w.messages(), 0)
}

// onLog is a slog handler that calls do when msg is logged.
type onLog struct {
	msg string
	do  func()
}

func (h onLog) Enabled(context.Context, slog.Level) bool { return true }
func (h onLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.do()
	}
	return nil
}
func (h onLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h onLog) WithGroup(string) slog.Handler      { return h }

func TestResetResyncs(t *testing.T) {
	t.Parallel()
	w := setup(t, 400, 0)
	ctx := testContext(t)
	s := w.newSync(Config{})
	if _, err := s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	for k := 1; k <= 2; k++ {
		if err := Reset(ctx, w.kv); err != nil {
			t.Fatal(err)
		}
		st, _ := Status(ctx, w.kv)
		if st.Resets != k || st.Cursor != "" || st.LastNumber != 0 {
			t.Fatalf("status after reset %d: %+v", k, st)
		}
		res, err := s.Once(ctx)
		if err != nil || res.Published != 400 || res.Skipped != 0 {
			t.Fatalf("pass after reset %d: %+v, %v", k, res, err)
		}
		msgs := w.messages()
		if len(msgs) != 400*(k+1) {
			t.Fatalf("%d messages after reset %d", len(msgs), k)
		}
		w.checkExactlyOnce(msgs[400*k:], k)
	}
}

// TestResetCrashResume: a resync crashes mid-way; the resumed pass must
// compare against the new generation's numbers, not the old high one.
func TestResetCrashResume(t *testing.T) {
	t.Parallel()
	w := setup(t, 500, 0)
	ctx := testContext(t)
	w.syncResetAndCrash(ctx, 150)
	res, err := w.newSync(Config{}).Once(ctx)
	if err != nil || res.Published != 350 || res.Skipped != 150 {
		t.Fatalf("resumed pass %+v, %v", res, err)
	}
	w.checkExactlyOnce(w.messages()[500:], 1)
}

// TestStateLostResumesFromStream: the state key is deleted (a recreated
// bucket); the stream's last message still says what was published.
func TestStateLostResumesFromStream(t *testing.T) {
	t.Parallel()
	w := setup(t, 300, 0)
	ctx := testContext(t)
	s := w.newSync(Config{PerPage: 100})
	if _, err := s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if err := Reset(ctx, w.kv); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.kv.Purge(ctx, stateKey); err != nil {
		t.Fatal(err)
	}
	w.emu.AddResponses(10)
	res, err := s.Once(ctx)
	if err != nil || res.Published != 10 || res.Skipped != 300 {
		t.Fatalf("pass without state: %+v, %v", res, err)
	}
	if st, _ := Status(ctx, w.kv); st.Resets != 1 || st.Cursor != "310" || st.LastNumber != 1310 {
		t.Fatalf("status %+v", st)
	}
	w.checkExactlyOnce(w.messages()[300:], 1)
}

func TestLeaseKeepsSecondSyncOut(t *testing.T) {
	t.Parallel()
	w := setup(t, 400, 0)
	ctx := testContext(t)
	inside, release := make(chan struct{}), make(chan struct{})
	first := w.newSync(Config{Replica: "first", afterPublish: func(_ context.Context, n int64) {
		if n == firstNumber {
			close(inside)
			<-release
		}
	}})
	done := make(chan error, 1)
	go func() {
		_, err := first.Once(ctx)
		done <- err
	}()
	<-inside

	st, err := Status(ctx, w.kv)
	if err != nil || st.LeaseHolder != "first" {
		t.Fatalf("status while polling: %+v, %v", st, err)
	}
	second := w.newSync(Config{Replica: "second"})
	res, err := second.Once(ctx)
	if !errors.Is(err, ErrLeaseHeld) || res.Published != 0 {
		t.Fatalf("second Sync: %+v, %v; want ErrLeaseHeld", res, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st, _ := Status(ctx, w.kv); st.LeaseHolder != "" {
		t.Fatalf("lease not released: %+v", st)
	}
	w.checkExactlyOnce(w.messages(), 0)
}

// TestLeaseRenewedDuringLongPass makes a pass outlast several lease TTLs:
// it keeps its lease, and a contender is kept out throughout.
func TestLeaseRenewedDuringLongPass(t *testing.T) {
	t.Parallel()
	w := setup(t, 300, 0)
	ctx := testContext(t)
	second := w.newSync(Config{Replica: "second"})
	var turnedAway int
	// The TTL is short enough to let three renewals pass quickly and long
	// enough (each renewal may take a third of it) that a loaded machine
	// does not lose the lease: with 600 ms, one slow KV update under CI
	// load lost it, and the wait below never ended.
	const ttl = 1500 * time.Millisecond
	first := w.newSync(Config{Replica: "first", PerPage: 10, LeaseTTL: ttl, afterPublish: func(_ context.Context, n int64) {
		if n%100 == 0 {
			// Let three renewals, a whole TTL, pass inside the pass, then
			// contend. The watcher reports each renewal as it is stored.
			waitRenewals(ctx, t, w.kv, 3, 4*ttl)
			if _, err := second.Once(ctx); errors.Is(err, ErrLeaseHeld) {
				turnedAway++
			} else {
				t.Errorf("contender during the pass: %v", err)
			}
		}
	}})
	if _, err := first.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if turnedAway != 3 {
		t.Fatalf("contender turned away %d times, want 3", turnedAway)
	}
	w.checkExactlyOnce(w.messages(), 0)
}

// waitRenewals waits until the lease has been written n more times, and
// fails the test if that takes longer than within: a holder that stopped
// renewing would otherwise leave the test waiting for its whole deadline.
func waitRenewals(ctx context.Context, t *testing.T, kv jetstream.KeyValue, n int, within time.Duration) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	watch, err := kv.Watch(wctx, leaseKey, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watch.Stop() }()
	for seen := 0; seen < n; {
		select {
		case e := <-watch.Updates():
			if e != nil {
				seen++
			}
		case <-wctx.Done():
			t.Fatalf("lease renewed %d times in %v, want %d: the holder stopped renewing", seen, within, n)
		}
	}
}

// TestLapsedLeaseTakenOver: a holder that crashed without releasing leaves
// a lease that blocks others until it lapses, then is taken over.
func TestLapsedLeaseTakenOver(t *testing.T) {
	t.Parallel()
	w := setup(t, 50, 0)
	ctx := testContext(t)
	put := func(l leaseValue) {
		b, _ := json.Marshal(l)
		if _, err := w.kv.Put(ctx, leaseKey, b); err != nil {
			t.Fatal(err)
		}
	}
	s := w.newSync(Config{})
	put(leaseValue{Holder: "crashed", Expires: time.Now().Add(time.Hour)})
	if _, err := s.Once(ctx); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("live lease: %v", err)
	}
	put(leaseValue{Holder: "crashed", Expires: time.Now().Add(-time.Second)})
	if res, err := s.Once(ctx); err != nil || res.Published != 50 {
		t.Fatalf("lapsed lease: %+v, %v", res, err)
	}
	w.checkExactlyOnce(w.messages(), 0)
}

// TestLeaseLostStopsPass: another replica takes the lease over in the middle
// of a pass; the pass stops at once without storing its page's cursor.
func TestLeaseLostStopsPass(t *testing.T) {
	t.Parallel()
	w := setup(t, 400, 0)
	ctx := testContext(t)
	stolen := false
	s := w.newSync(Config{PerPage: 200, LeaseTTL: 600 * time.Millisecond, afterPublish: func(pctx context.Context, n int64) {
		if n != firstNumber+300 {
			return
		}
		// Another replica overwrites the lease; wait until the pass sees it.
		e, err := w.kv.Get(ctx, leaseKey)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(leaseValue{Holder: "thief", Expires: time.Now().Add(time.Hour)})
		if _, err := w.kv.Update(ctx, leaseKey, b, e.Revision()); err != nil {
			t.Fatal(err)
		}
		stolen = true
		select {
		case <-pctx.Done():
		case <-ctx.Done():
		}
	}})
	res, err := s.Once(ctx)
	if !stolen || !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Once: %v, want ErrLeaseLost", err)
	}
	if res.Cursor != "200" {
		t.Fatalf("result %+v: page 2's cursor must not be stored", res)
	}
	if st, _ := Status(ctx, w.kv); st.Cursor != "200" || st.LeaseHolder != "thief" {
		t.Fatalf("status %+v", st)
	}
	checkNumbers(t, w.messages(), 301)
}

func TestRunPollsUntilCancelled(t *testing.T) {
	t.Parallel()
	w := setup(t, 100, 0)
	ctx, cancel := context.WithCancel(testContext(t))
	passes := make(chan Result, 1000)
	s := w.newSync(Config{Interval: 20 * time.Millisecond, Hooks: Hooks{OnPass: func(r Result, err error) {
		if err == nil {
			select {
			case passes <- r:
			default:
			}
		}
	}}})
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	if r := <-passes; r.Published != 100 {
		t.Fatalf("first pass %+v", r)
	}
	w.emu.AddResponses(5)
	for published := 0; published != 5; {
		select {
		case r := <-passes:
			published = r.Published
		case <-ctx.Done():
			t.Fatal("the new responses were never published")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	w.checkExactlyOnce(w.messages(), 0)

	if err := w.newSync(Config{}).Run(context.Background()); err != nil {
		t.Fatalf("disabled Run: %v", err)
	}
}

func TestCancelStopsPromptly(t *testing.T) {
	t.Parallel()
	w := setup(t, 100, 0)
	ctx, cancel := context.WithCancel(testContext(t))
	w.emu.SetOutage(true)
	s := w.newSync(Config{MaxElapsed: time.Hour})
	done := make(chan error, 1)
	go func() {
		_, err := s.Once(ctx)
		done <- err
	}()
	// Wait until it is retrying, then cancel.
	proctest.WaitFor(t, 10*time.Second, time.Millisecond, "the sync to retry", func() (bool, string) {
		n := w.emu.Calls(emulator.SyncPath)
		return n >= 3, fmt.Sprintf("%d sync calls", n)
	})
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Once: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Once did not stop after cancel")
	}
	st, _ := Status(testContext(t), w.kv)
	if st.LeaseHolder != "" || st.LastError != "" {
		t.Fatalf("status after shutdown %+v", st)
	}
}

// BenchmarkInitialLoad measures a full load of 10,000 responses at 1,000 a
// page, API and NATS on loopback.
func BenchmarkInitialLoad(b *testing.B) {
	w := setup(b, 10_000, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := w.newSync(Config{PerPage: 1000})
	b.ResetTimer()
	total := 0
	for b.Loop() {
		b.StopTimer()
		if err := Reset(ctx, w.kv); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := s.Once(ctx)
		if err != nil || res.Published != 10_000 {
			b.Fatalf("%+v, %v", res, err)
		}
		total += res.Published
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "responses/s")
}
