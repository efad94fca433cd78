package deadletter_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/deadletter"
	"github.com/cgworker/cgworker/queue/natstest"
	"github.com/cgworker/cgworker/schemas"
)

type fixture struct {
	ctx   context.Context
	js    jetstream.JetStream
	names queue.Names
	cfg   queue.StreamConfig
	cons  map[schemas.Kind]jetstream.Consumer
}

func setup(t *testing.T) *fixture {
	t.Helper()
	srv := natstest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	nc, err := queue.Connect(ctx, queue.ConnConfig{URL: srv.URL, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{ctx: ctx, js: js, names: queue.NewNames("acme"), cons: map[schemas.Kind]jetstream.Consumer{}}
	f.cfg = queue.StreamConfig{Names: f.names}
	if err := queue.EnsureStreams(ctx, js, f.cfg); err != nil {
		t.Fatal(err)
	}
	for _, k := range schemas.Kinds {
		if f.cons[k], err = queue.EnsureConsumer(ctx, js, f.cfg, k); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// deadLetter publishes an event, receives it as the worker would, and
// dead-letters it; it returns the dead letter's sequence.
func (f *fixture) deadLetter(t *testing.T, kind schemas.Kind, body string, header nats.Header, info deadletter.Info) uint64 {
	t.Helper()
	subject := f.names.EventSubject(kind)
	if _, err := f.js.PublishMsg(f.ctx, &nats.Msg{Subject: subject, Header: header, Data: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	batch, err := f.cons[kind].Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	msg := <-batch.Messages()
	if msg == nil {
		t.Fatalf("no message: %v", batch.Error())
	}
	info.Kind = string(kind)
	meta, err := msg.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	dl, id := deadletter.Build(f.names, msg.Subject(), msg.Headers(), msg.Data(), meta, info)
	st, err := deadletter.Store(f.ctx, f.js, f.names, dl, id)
	if err != nil || st.Existing {
		t.Fatal(err, st)
	}
	if err := msg.Ack(); err != nil {
		t.Fatal(err)
	}
	return st.Seq
}

func (f *fixture) streamMsgs(t *testing.T, stream string) uint64 {
	t.Helper()
	s, err := f.js.Stream(f.ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.Msgs
}

// events returns the messages stored on subject in the events stream.
func (f *fixture) events(t *testing.T, subject string) []*jetstream.RawStreamMsg {
	t.Helper()
	s, err := f.js.Stream(f.ctx, f.names.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; {
		m, err := s.GetMsg(f.ctx, seq, jetstream.WithGetMsgSubject(subject))
		if err != nil {
			return out
		}
		out = append(out, m)
		seq = m.Sequence + 1
	}
}

func listSeqs(t *testing.T, f *fixture, flt deadletter.Filter) []uint64 {
	t.Helper()
	var out bytes.Buffer
	n, err := deadletter.List(f.ctx, f.js, f.names, flt, &out, true)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var e deadletter.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		seqs = append(seqs, e.Seq)
	}
	if n != len(seqs) {
		t.Errorf("List returned %d, printed %d", n, len(seqs))
	}
	return seqs
}

func TestDeadLetterStoredOnce(t *testing.T) {
	t.Parallel()
	f := setup(t)
	subject := f.names.EventSubject(schemas.Contact)
	if _, err := f.js.Publish(f.ctx, subject, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	// The same message delivered twice (the first ack was lost): Store
	// finds the letter of the first delivery on its own subject.
	var ids []string
	for i := range 2 {
		batch, err := f.cons[schemas.Contact].Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		msg := <-batch.Messages()
		if msg == nil {
			t.Fatal("no message")
		}
		meta, err := msg.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		dl, id := deadletter.Build(f.names, msg.Subject(), msg.Headers(), msg.Data(), meta, deadletter.Info{ErrorKind: "schema", Error: "no Email"})
		ids = append(ids, id)
		stored, err := deadletter.Store(f.ctx, f.js, f.names, dl, id)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Existing != (i == 1) {
			t.Errorf("delivery %d: Existing = %v, want %v", i+1, stored.Existing, i == 1)
		}
		if err := msg.Nak(); err != nil {
			t.Fatal(err)
		}
	}
	if ids[0] != ids[1] {
		t.Errorf("ids differ: %v", ids)
	}
	if n := f.streamMsgs(t, f.names.DLQStream()); n != 1 {
		t.Errorf("DLQ holds %d, want 1", n)
	}
	s, err := f.js.Stream(f.ctx, f.names.DLQStream())
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(f.ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != `{}` || m.Header.Get("CG-Attempts") != "1" || m.Header.Get("CG-Original-Seq") != "1" || m.Header.Get("CG-Original-Stream") != "ACME_EVENTS" {
		t.Errorf("stored dead letter: %q %v", m.Data, m.Header)
	}
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	f := setup(t)
	a1 := f.deadLetter(t, schemas.Activity, `{"a":1}`, nil, deadletter.Info{ErrorKind: "schema", Error: "missing type", Errors: map[string][]string{"type": {"The type field is required."}}})
	c1 := f.deadLetter(t, schemas.Contact, `nope`, nil, deadletter.Info{ErrorKind: "malformed", Error: "not JSON"})
	a2 := f.deadLetter(t, schemas.Activity, `{"a":2}`, nil, deadletter.Info{ErrorKind: "api-422", Error: "invalid", HTTPStatus: 422, Reference: "cgw-1"})
	cut := time.Now() // the server stamps dead letters with the same clock
	b1 := f.deadLetter(t, schemas.Account, `{"b":1}`, nil, deadletter.Info{ErrorKind: "schema", Error: "no name"})
	a3 := f.deadLetter(t, schemas.Activity, `{"a":3}`, nil, deadletter.Info{ErrorKind: "schema", Error: "bad"})

	for _, tc := range []struct {
		name string
		flt  deadletter.Filter
		want []uint64
	}{
		{"all", deadletter.Filter{}, []uint64{a1, c1, a2, b1, a3}},
		{"kind", deadletter.Filter{Kind: "activity"}, []uint64{a1, a2, a3}},
		{"error kind", deadletter.Filter{ErrorKind: "schema"}, []uint64{a1, b1, a3}},
		{"kind and error kind", deadletter.Filter{Kind: "activity", ErrorKind: "schema"}, []uint64{a1, a3}},
		{"since", deadletter.Filter{Since: cut}, []uint64{b1, a3}},
		{"seq", deadletter.Filter{SeqFrom: c1, SeqTo: c1}, []uint64{c1}},
		{"seq range", deadletter.Filter{SeqFrom: c1, SeqTo: b1}, []uint64{c1, a2, b1}},
		{"seq range and kind", deadletter.Filter{Kind: "activity", SeqFrom: c1, SeqTo: b1}, []uint64{a2}},
		{"seq range past the end", deadletter.Filter{SeqFrom: b1, SeqTo: 1000}, []uint64{b1, a3}},
		{"seq beyond", deadletter.Filter{SeqFrom: 1000, SeqTo: 1000}, nil},
		{"nothing of a kind", deadletter.Filter{Kind: "contact", ErrorKind: "schema"}, nil},
	} {
		if got := listSeqs(t, f, tc.flt); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}

	// The JSON lines carry the fields README, "Commands", lists for dlq list --json.
	var out bytes.Buffer
	if _, err := deadletter.List(f.ctx, f.js, f.names, deadletter.Filter{SeqFrom: a2, SeqTo: a2}, &out, true); err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(out.Bytes(), &obj); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{
		"seq": float64(a2), "kind": "activity", "error_kind": "api-422", "error": "invalid",
		"attempts": float64(1), "original_subject": "acme.events.activity", "http_status": float64(422), "reference": "cgw-1",
	} {
		if obj[k] != v {
			t.Errorf("%s = %v, want %v", k, obj[k], v)
		}
	}
	if _, err := time.Parse(time.RFC3339, fmt.Sprint(obj["failed_at"])); err != nil {
		t.Errorf("failed_at: %v", err)
	}

	// The table has a header, a row each and a count.
	out.Reset()
	n, err := deadletter.List(f.ctx, f.js, f.names, deadletter.Filter{Kind: "activity"}, &out, false)
	if err != nil || n != 3 {
		t.Fatalf("List = %d, %v", n, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "SEQ") || lines[4] != "3 dead letters" || !strings.Contains(lines[1], "missing type") {
		t.Errorf("table:\n%s", out.String())
	}
}

func TestShow(t *testing.T) {
	t.Parallel()
	f := setup(t)
	seq := f.deadLetter(t, schemas.Activity, `{"type":"x","n":1.50}`, nats.Header{"CG-Configuration": {"c1"}},
		deadletter.Info{ErrorKind: "schema", Error: "bad", Errors: map[string][]string{"account": {"The account field is required."}}})
	raw := f.deadLetter(t, schemas.Contact, "not json", nil, deadletter.Info{ErrorKind: "malformed", Error: "not JSON"})

	var out bytes.Buffer
	if err := deadletter.Show(f.ctx, f.js, f.names, seq, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf("seq:     %d\n", seq),
		"subject: acme.dlq.activity.ACME_EVENTS-",
		"  CG-Configuration: c1\n",
		"  CG-Error-Kind: schema\n",
		"errors:\n  {\n    \"account\": [\n      \"The account field is required.\"\n    ]\n  }\n",
		"{\n  \"type\": \"x\",\n  \"n\": 1.50\n}\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Show lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := deadletter.Show(f.ctx, f.js, f.names, raw, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), "body (8 bytes):\nnot json\n") {
		t.Errorf("raw body:\n%s", out.String())
	}
	if err := deadletter.Show(f.ctx, f.js, f.names, 999, &out); err == nil || !strings.Contains(err.Error(), "no dead letter at sequence 999") {
		t.Errorf("missing seq: %v", err)
	}
}

func TestReplay(t *testing.T) {
	t.Parallel()
	f := setup(t)
	header := nats.Header{
		"Nats-Msg-Id":      {"producer-1"},
		"CG-Configuration": {"cfg-1"},
		"traceparent":      {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		"X-Producer":       {"p"},
	}
	seq := f.deadLetter(t, schemas.Activity, `{"type":"x"}`, header, deadletter.Info{
		ErrorKind: "api-422", Error: "invalid", Errors: map[string][]string{"contact": {"bad"}}, HTTPStatus: 422,
		Reference: "cgw-ref", HappenedAt: "2024-05-01 00:00:00",
	})
	other := f.deadLetter(t, schemas.Contact, `{}`, nil, deadletter.Info{ErrorKind: "schema", Error: "no Email"})

	var out bytes.Buffer
	n, err := deadletter.Replay(f.ctx, f.js, f.names, deadletter.Filter{Kind: "activity"}, deadletter.ReplayOptions{}, &out)
	if err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	if out.String() != "replayed 1 dead letter\n" {
		t.Errorf("output %q", out.String())
	}
	msgs := f.events(t, "acme.events.activity")
	if len(msgs) != 2 {
		t.Fatalf("%d activity events, want the original and the replay", len(msgs))
	}
	m := msgs[1]
	if string(m.Data) != `{"type":"x"}` {
		t.Errorf("replayed body %q", m.Data)
	}
	want := map[string]string{
		"Nats-Msg-Id":      fmt.Sprintf("cg-replay-ACME_DLQ-%d", seq),
		"CG-Configuration": "cfg-1",
		"CG-Reference":     "cgw-ref",
		"CG-Happened-At":   "2024-05-01 00:00:00",
		"traceparent":      header.Get("traceparent"),
		"X-Producer":       "p",
	}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if len(m.Header) != len(want) {
		t.Errorf("replayed headers %v", m.Header)
	}
	if got := listSeqs(t, f, deadletter.Filter{}); fmt.Sprint(got) != fmt.Sprint([]uint64{other}) {
		t.Errorf("left in DLQ: %v, want only %d", got, other)
	}
}

func TestReplayRerunReplaysOnce(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var seqs []uint64
	for i := range 10 {
		seqs = append(seqs, f.deadLetter(t, schemas.Account, fmt.Sprintf(`{"i":%d}`, i), nil, deadletter.Info{ErrorKind: "api-422", Error: "x"}))
	}
	// A run interrupted after a few: replay a subset.
	n, err := deadletter.Replay(f.ctx, f.js, f.names, deadletter.Filter{SeqFrom: seqs[0], SeqTo: seqs[3]}, deadletter.ReplayOptions{}, &bytes.Buffer{})
	if err != nil || n != 4 {
		t.Fatalf("first run = %d, %v", n, err)
	}
	// Interrupted between a publish and its delete: the replay of seqs[4]
	// is in the events stream, the dead letter is still there.
	s, err := f.js.Stream(f.ctx, f.names.DLQStream())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetMsg(f.ctx, seqs[4])
	if err != nil {
		t.Fatal(err)
	}
	crashed := &nats.Msg{Subject: "acme.events.account", Header: deadletter.ReplayHeader(raw.Header), Data: raw.Data}
	if _, err := queue.Publish(f.ctx, f.js, crashed, deadletter.ReplayMsgID("ACME_DLQ", seqs[4])); err != nil {
		t.Fatal(err)
	}
	// A cancelled run does nothing.
	cctx, cancel := context.WithCancel(f.ctx)
	cancel()
	if n, err := deadletter.Replay(cctx, f.js, f.names, deadletter.Filter{}, deadletter.ReplayOptions{}, &bytes.Buffer{}); err == nil || n != 0 {
		t.Errorf("cancelled run = %d, %v", n, err)
	}

	n, err = deadletter.Replay(f.ctx, f.js, f.names, deadletter.Filter{}, deadletter.ReplayOptions{}, &bytes.Buffer{})
	if err != nil || n != 6 {
		t.Fatalf("re-run = %d, %v", n, err)
	}
	// Each original once, each replay once.
	got := map[string]int{}
	for _, m := range f.events(t, "acme.events.account") {
		got[string(m.Data)]++
	}
	for i := range 10 {
		if c := got[fmt.Sprintf(`{"i":%d}`, i)]; c != 2 {
			t.Errorf("event %d stored %d times, want 2 (original and one replay)", i, c)
		}
	}
	if n := f.streamMsgs(t, f.names.DLQStream()); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
}

func TestReplayDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	s1 := f.deadLetter(t, schemas.Activity, `{}`, nil, deadletter.Info{ErrorKind: "schema", Error: "x"})
	f.deadLetter(t, schemas.Contact, `{}`, nil, deadletter.Info{ErrorKind: "api-4xx", Error: "y"})
	events := f.streamMsgs(t, f.names.EventsStream())

	var out bytes.Buffer
	n, err := deadletter.Replay(f.ctx, f.js, f.names, deadletter.Filter{ErrorKind: "schema"}, deadletter.ReplayOptions{DryRun: true}, &out)
	if err != nil || n != 1 {
		t.Fatalf("dry run = %d, %v", n, err)
	}
	want := fmt.Sprintf("would replay seq %d (activity, schema) to acme.events.activity\nwould replay 1 dead letter\n", s1)
	if out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	if got := f.streamMsgs(t, f.names.EventsStream()); got != events {
		t.Errorf("events %d -> %d", events, got)
	}
	if got := f.streamMsgs(t, f.names.DLQStream()); got != 2 {
		t.Errorf("dead letters: %d", got)
	}
}

func TestReplayRefusesForeignSubjects(t *testing.T) {
	t.Parallel()
	f := setup(t)
	// Published by hand, without the dead-letter headers.
	if _, err := f.js.Publish(f.ctx, "acme.dlq.activity", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	n, err := deadletter.Replay(f.ctx, f.js, f.names, deadletter.Filter{}, deadletter.ReplayOptions{}, &out)
	// Its subject says activity, its missing CG-Original-Subject says
	// nothing: the kinds disagree.
	if err == nil || n != 0 || !strings.Contains(out.String(), "refused seq 1: kinds disagree") || !strings.HasSuffix(out.String(), "replayed 0 dead letters; refused 1\n") {
		t.Errorf("Replay = %d, %v, %q", n, err, out.String())
	}
	if f.streamMsgs(t, f.names.DLQStream()) != 1 {
		t.Error("refused dead letter was deleted")
	}

	// Under the events prefix but no kind's subject: no consumer reads it
	// (and the events stream would store it), so it is not replayed either.
	for _, subject := range []string{"acme.events.bogus", "acme.events.activity.x", "cg.events.activity"} {
		if _, err := f.js.PublishMsg(f.ctx, &nats.Msg{Subject: "acme.dlq.unknown." + subject, Header: nats.Header{"CG-Original-Subject": {subject}}, Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	events := f.streamMsgs(t, f.names.EventsStream())
	out.Reset()
	n, err = deadletter.Replay(f.ctx, f.js, f.names, deadletter.Filter{SeqFrom: 2}, deadletter.ReplayOptions{}, &out)
	if err == nil || n != 0 || !strings.Contains(out.String(), `refused seq 2: CG-Original-Subject "acme.events.bogus" is not an event subject; send it to a kind's subject with --to KIND`) ||
		!strings.HasSuffix(out.String(), "replayed 0 dead letters; refused 3\n") {
		t.Errorf("Replay = %d, %v, %q", n, err, out.String())
	}
	if got := f.streamMsgs(t, f.names.DLQStream()); got != 4 {
		t.Errorf("%d dead letters left, want all 4", got)
	}
	if got := f.streamMsgs(t, f.names.EventsStream()); got != events {
		t.Errorf("events %d -> %d", events, got)
	}
}

func TestReplayKeepsDeadLetterWhenRepublishFails(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.deadLetter(t, schemas.Activity, `{}`, nil, deadletter.Info{ErrorKind: "api-422", Error: "x"})
	// Nothing stores acme.events.* any more: the republish cannot be
	// acknowledged.
	if err := f.js.DeleteStream(f.ctx, f.names.EventsStream()); err != nil {
		t.Fatal(err)
	}
	n, err := deadletter.Replay(f.ctx, f.js, f.names, deadletter.Filter{}, deadletter.ReplayOptions{}, &bytes.Buffer{})
	if err == nil || n != 0 || !strings.Contains(err.Error(), "replay dead letter 1") {
		t.Errorf("Replay = %d, %v; want an error", n, err)
	}
	if got := f.streamMsgs(t, f.names.DLQStream()); got != 1 {
		t.Errorf("%d dead letters, want the one that could not be replayed", got)
	}
}

func TestPurge(t *testing.T) {
	t.Parallel()
	f := setup(t)
	a := f.deadLetter(t, schemas.Activity, `{}`, nil, deadletter.Info{ErrorKind: "schema", Error: "x"})
	f.deadLetter(t, schemas.Activity, `{}`, nil, deadletter.Info{ErrorKind: "api-422", Error: "x"})
	c := f.deadLetter(t, schemas.Contact, `{}`, nil, deadletter.Info{ErrorKind: "api-422", Error: "x"})
	var out bytes.Buffer
	n, err := deadletter.Purge(f.ctx, f.js, f.names, deadletter.Filter{ErrorKind: "api-422"}, &out)
	if err != nil || n != 2 || out.String() != "purged 2 dead letters\n" {
		t.Fatalf("Purge = %d, %v, %q", n, err, out.String())
	}
	if got := listSeqs(t, f, deadletter.Filter{}); fmt.Sprint(got) != fmt.Sprint([]uint64{a}) {
		t.Errorf("left: %v", got)
	}
	_ = c
	if n, err := deadletter.Purge(f.ctx, f.js, f.names, deadletter.Filter{}, &bytes.Buffer{}); err != nil || n != 1 {
		t.Errorf("purge all = %d, %v", n, err)
	}
	if got := f.streamMsgs(t, f.names.DLQStream()); got != 0 {
		t.Errorf("%d left", got)
	}
	// Nothing to do is fine.
	if n, err := deadletter.Purge(f.ctx, f.js, f.names, deadletter.Filter{}, &bytes.Buffer{}); err != nil || n != 0 {
		t.Errorf("empty purge = %d, %v", n, err)
	}
}

// Two purges of the same dead letters at once (two operators, or a purge
// beside a replay) both succeed: a letter the other deleted first is not
// an error, and is counted by the purge that deleted it only.
func TestPurgeConcurrent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const letters = 300
	for i := range letters {
		if _, err := f.js.Publish(f.ctx, "acme.dlq.contact", fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, 2)
	counts := make(chan int, 2)
	for range 2 {
		go func() {
			n, err := deadletter.Purge(f.ctx, f.js, f.names, deadletter.Filter{}, &bytes.Buffer{})
			counts <- n
			errs <- err
		}()
	}
	total := 0
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("Purge: %v", err)
		}
		total += <-counts
	}
	if total != letters {
		t.Errorf("purges counted %d between them, want %d: each letter once", total, letters)
	}
	if got := f.streamMsgs(t, f.names.DLQStream()); got != 0 {
		t.Errorf("%d dead letters left", got)
	}
	// And one after the other purged them is fine too.
	if n, err := deadletter.Purge(f.ctx, f.js, f.names, deadletter.Filter{}, &bytes.Buffer{}); err != nil || n != 0 {
		t.Errorf("purge after purge = %d, %v", n, err)
	}
}

func TestToolingWithoutStream(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, err := deadletter.List(f.ctx, f.js, queue.NewNames("other"), deadletter.Filter{}, &bytes.Buffer{}, false)
	if err == nil || !strings.Contains(err.Error(), "OTHER_DLQ not found") {
		t.Errorf("err = %v", err)
	}
}
