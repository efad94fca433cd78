package status_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/cgapi/cgapitest"
	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/natstest"
	"github.com/cgworker/cgworker/schemas"
	"github.com/cgworker/cgworker/worker/responses"
	"github.com/cgworker/cgworker/worker/status"
)

// world is a NATS server with known counts, built by hand with the worker's
// own stream and consumer setup:
//   - activity: 5 events; 1 acknowledged, the other 4 held, one of them
//     handed back once and delivered again (redelivered);
//   - account: 2 events never delivered;
//   - contact: no consumer (the kind is not configured), no events;
//   - dead letters: 2 activity "schema" and 1 account "api-4xx", failed now;
//   - the sync: one real pass against the emulator, so its last success is
//     now.
type world struct {
	js      jetstream.JetStream
	names   queue.Names
	started time.Time
}

func setup(t *testing.T) world {
	t.Helper()
	ctx := context.Background()
	srv := natstest.NewServer(t)
	js := srv.JetStream(t)
	w := world{js: js, names: queue.NewNames("cg"), started: time.Now()}
	qcfg := queue.StreamConfig{Names: w.names, AckWait: time.Minute}
	if err := queue.EnsureStreams(ctx, js, qcfg); err != nil {
		t.Fatal(err)
	}
	natstest.Publish(t, js, w.names.EventSubject(schemas.Activity), []byte(`{}`), 5)
	natstest.Publish(t, js, w.names.EventSubject(schemas.Account), []byte(`{}`), 2)
	activity, err := queue.EnsureConsumer(ctx, js, qcfg, schemas.Activity)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := queue.EnsureConsumer(ctx, js, qcfg, schemas.Account); err != nil {
		t.Fatal(err)
	}
	msgs := fetch(t, activity, 3)
	if err := msgs[0].DoubleAck(context.Background()); err != nil { // seq 1 done
		t.Fatal(err)
	}
	// seq 2 stays held; seq 3 is handed back. The next fetch takes the
	// three left, whatever their order: seq 3 again, 4 and 5.
	if err := msgs[2].Nak(); err != nil {
		t.Fatal(err)
	}
	fetch(t, activity, 3)

	for _, l := range []struct{ kind, errorKind string }{
		{"activity", "schema"}, {"activity", "schema"}, {"account", "api-4xx"},
	} {
		msg := nats.NewMsg("cg.dlq." + l.kind)
		msg.Header.Set("CG-Error-Kind", l.errorKind)
		msg.Header.Set("CG-Failed-At", w.started.UTC().Format(time.RFC3339))
		msg.Header.Set("CG-Original-Subject", "cg.events."+l.kind)
		msg.Data = []byte(`{}`)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}

	kv, err := queue.EnsureSyncBucket(ctx, js, qcfg)
	if err != nil {
		t.Fatal(err)
	}
	opts := emulator.Options{Responses: 3}
	api := cgapitest.NewServer(t, opts)
	s := responses.New(cgapitest.NewClient(t, api, opts), js, kv, responses.Config{
		Names: w.names, Interval: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if _, err := s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	return w
}

func fetch(t *testing.T, c jetstream.Consumer, n int) []jetstream.Msg {
	t.Helper()
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for m := range batch.Messages() {
		out = append(out, m)
	}
	if len(out) != n {
		t.Fatalf("fetched %d messages, want %d", len(out), n)
	}
	return out
}

// read reads the report as if at the given offset from the world's start.
func (w world) read(t *testing.T, after, maxPendingAge time.Duration) *status.Report {
	t.Helper()
	r, err := status.Read(context.Background(), w.js, status.Config{
		Names: w.names, MaxPendingAge: maxPendingAge, SyncInterval: time.Hour,
		Now: func() time.Time { return w.started.Add(after) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestStatusCounts(t *testing.T) {
	t.Parallel()
	w := setup(t)
	// 90 minutes on: the dead letters are out of the last hour, the oldest
	// event is younger than 2h and the sync's success within twice its
	// interval.
	r := w.read(t, 90*time.Minute, 2*time.Hour)
	if !r.Healthy() {
		t.Errorf("attention %q, want none", r.Attention)
	}
	byKind := map[string]status.Consumer{}
	for _, c := range r.Consumers {
		byKind[c.Kind] = c
	}
	type counts struct {
		pending             uint64
		ackPending, redeliv int
		missing             bool
	}
	for kind, want := range map[string]counts{
		"activity": {ackPending: 4, redeliv: 1},
		"account":  {pending: 2},
		"contact":  {missing: true},
	} {
		c := byKind[kind]
		got := counts{c.Pending, c.AckPending, c.Redelivered, c.Missing}
		if got != want {
			t.Errorf("%s: %+v, want %+v", kind, got, want)
		}
	}
	if a := byKind["activity"]; a.OldestPending.IsZero() || a.OldestPending.Before(w.started.Add(-time.Minute)) || a.OldestPendingAge < 89*60 {
		t.Errorf("activity oldest pending %v (age %.0fs), want seq 2's store time ~90m before the report", a.OldestPending, a.OldestPendingAge)
	}

	dl := r.DeadLetters
	if dl.Total != 3 || dl.Recent != 0 || len(dl.Groups) != 2 {
		t.Fatalf("dead letters %+v, want 3 in 2 groups, none recent", dl)
	}
	if g := dl.Groups[0]; g.Kind != "account" || g.ErrorKind != "api-4xx" || g.Count != 1 {
		t.Errorf("first group %+v, want 1 account api-4xx", g)
	}
	if g := dl.Groups[1]; g.Kind != "activity" || g.ErrorKind != "schema" || g.Count != 2 || g.Newest.IsZero() {
		t.Errorf("second group %+v, want 2 activity schema with a newest time", g)
	}
	if r.Sync == nil || r.Sync.LastSuccess.IsZero() || r.Sync.Stale || r.Sync.Cursor == "" {
		t.Errorf("sync %+v, want a fresh success with a cursor", r.Sync)
	}
	if !strings.Contains(strings.Join(r.Missing, ","), "consumer cgworker-contact") {
		t.Errorf("missing %q, want consumer cgworker-contact", r.Missing)
	}

	var text strings.Builder
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cgworker-activity", "api-4xx", "healthy"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	b, err := json.Marshal(r)
	if err != nil || !strings.Contains(string(b), `"ack_pending":4`) {
		t.Errorf("JSON %s (%v), want ack_pending 4", b, err)
	}
}

// Each cause of attention gets its own line: recent dead letters (by kind
// and error kind), an old pending event, a stale sync.
func TestStatusAttention(t *testing.T) {
	t.Parallel()
	w := setup(t)

	now := w.read(t, time.Minute, time.Hour)
	if got := strings.Join(now.Attention, "\n"); strings.Count(got, "dead letters") != 2 ||
		!strings.Contains(got, "activity dead letters of error kind schema") ||
		!strings.Contains(got, "account dead letters of error kind api-4xx") {
		t.Errorf("a minute after the dead letters: attention\n%s\nwant one line per kind and error kind", got)
	}
	if len(now.Attention) != 2 {
		t.Errorf("attention %q, want only the two dead-letter lines", now.Attention)
	}

	later := w.read(t, 3*time.Hour, time.Hour)
	got := strings.Join(later.Attention, "\n")
	for _, want := range []string{"cgworker-activity: the oldest unprocessed event", "cgworker-account: the oldest unprocessed event", "sync: last success"} {
		if !strings.Contains(got, want) {
			t.Errorf("three hours on: attention lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "dead letters") {
		t.Errorf("three hours on the dead letters are old, yet:\n%s", got)
	}
	if later.Sync == nil || !later.Sync.Stale {
		t.Errorf("sync %+v, want stale", later.Sync)
	}
}

// Nothing there: each missing stream or bucket is reported, none created.
func TestStatusMissing(t *testing.T) {
	t.Parallel()
	srv := natstest.NewServer(t)
	js := srv.JetStream(t)
	r, err := status.Read(context.Background(), js, status.Config{SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if r.Healthy() || len(r.Missing) != 3 {
		t.Errorf("missing %q, attention %q; want the events and dead-letter streams and the sync bucket, and attention", r.Missing, r.Attention)
	}
	lister := js.ListStreams(context.Background())
	for s := range lister.Info() {
		t.Errorf("status created stream %s", s.Config.Name)
	}
}
