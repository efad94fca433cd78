package worker_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/deadletter"
	"github.com/cgworker/cgworker/queue/natstest"
	"github.com/cgworker/cgworker/schemas"
	"github.com/cgworker/cgworker/worker"
	"github.com/cgworker/cgworker/worker/health"
)

// Each test here is one row of the outcome table (README, "Outcomes").

func TestDeliveredActivityDerivesReferenceAndTime(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	r := w.start(nil, testConfig())

	body := `{"account":"ACME","type":"Ticket","source":"Desk","additional_information_object":{"big":12345678901234567890,"exact":1.000000000000000001}}`
	seq := w.publish(schemas.Activity, body, map[string]string{"Nats-Msg-Id": "order-17"})
	waitFor(t, 10*time.Second, "delivery", func() bool { _, ok := r.final(seq); return ok })
	if s, _ := r.final(seq); s.Action != worker.Ack {
		t.Fatalf("outcome %v (%s), want delivered", s.Action, s.Error)
	}

	stream, err := w.js.Stream(context.Background(), w.names.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	stored, err := stream.GetMsg(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	ref := worker.DeriveReference(w.names.EventsStream(), "order-17", 0, 0)
	act, ok := w.emu.ActivityByReference(ref)
	if !ok {
		t.Fatalf("no activity with derived reference %s; have %d activities", ref, w.emu.ActivityCount())
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(act.Body, &got); err != nil {
		t.Fatal(err)
	}
	wantTime := stored.Time.UTC().Format("2006-01-02 15:04:05")
	if string(got["happened_at"]) != strconv.Quote(wantTime) {
		t.Errorf("happened_at = %s, want %q (the time the message entered the stream)", got["happened_at"], wantTime)
	}
	if !strings.Contains(string(act.Body), `{"big":12345678901234567890,"exact":1.000000000000000001}`) {
		t.Errorf("numbers not forwarded byte for byte: %s", act.Body)
	}
	waitFor(t, 5*time.Second, "consumer settled", func() bool { return w.consumerSettled(schemas.Activity) })
}

func TestDerivedReferenceFormula(t *testing.T) {
	t.Parallel()
	// The formula never changes between versions: pin its output.
	cases := []struct {
		msgID string
		seq   uint64
		ts    int64
		want  string
	}{
		{"order-17", 0, 0, "cgw-"},
		{"", 42, 1700000000123456789, "cgw-"},
	}
	for _, c := range cases {
		got := worker.DeriveReference("CG_EVENTS", c.msgID, c.seq, c.ts)
		if len(got) != 44 || !strings.HasPrefix(got, c.want) || strings.ToLower(got) != got {
			t.Errorf("DeriveReference(%q, %d, %d) = %q: want cgw- and 40 lower-case hex digits", c.msgID, c.seq, c.ts, got)
		}
	}
	if worker.DeriveReference("CG_EVENTS", "a", 0, 0) == worker.DeriveReference("CG_EVENTS2", "a", 0, 0) {
		t.Error("reference does not depend on the stream name")
	}
	if worker.DeriveReference("CG_EVENTS", "", 1, 5) == worker.DeriveReference("CG_EVENTS", "", 1, 6) {
		t.Error("reference does not depend on the stream timestamp")
	}
	// sha256("CG_EVENTS\norder-17"), first 40 hex digits.
	if got, want := worker.DeriveReference("CG_EVENTS", "order-17", 0, 0), "cgw-"+sha256Hex("CG_EVENTS\norder-17")[:40]; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got, want := worker.DeriveReference("CG_EVENTS", "", 42, 1700000000123456789), "cgw-"+sha256Hex("CG_EVENTS\n42@1700000000123456789")[:40]; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestHeadersOverrideDerivedIdentity(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	r := w.start(nil, testConfig())
	seq := w.publish(schemas.Activity, `{"account":"ACME","type":"Ticket","source":"Desk"}`,
		map[string]string{"CG-Reference": "replayed-1", "cg-happened-at": "2019-10-06T22:34:45+02:00"})
	waitFor(t, 10*time.Second, "delivery", func() bool { _, ok := r.final(seq); return ok })
	act, ok := w.emu.ActivityByReference("replayed-1")
	if !ok {
		t.Fatal("CG-Reference header not used")
	}
	if !strings.Contains(string(act.Body), `"happened_at":"2019-10-06 20:34:45"`) {
		t.Errorf("CG-Happened-At header not used or not normalised: %s", act.Body)
	}
}

// TestReferenceHeaderHeldToTheBodyFieldLimit: a CG-Reference header is
// the activity's reference, so one longer than the API takes (128
// characters) is a schema failure on "reference", caught before the API.
func TestReferenceHeaderHeldToTheBodyFieldLimit(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	r := w.start(nil, testConfig())
	body := `{"account":"ACME","type":"Ticket","source":"Desk"}`
	atLimit := strings.Repeat("é", 128)
	okSeq := w.publish(schemas.Activity, body, map[string]string{"CG-Reference": atLimit})
	badSeq := w.publish(schemas.Activity, body, map[string]string{"CG-Reference": atLimit + "x"})
	waitFor(t, 10*time.Second, "both settled", func() bool {
		_, ok1 := r.final(okSeq)
		_, ok2 := r.final(badSeq)
		return ok1 && ok2
	})
	if s, _ := r.final(okSeq); s.Action != worker.Ack {
		t.Errorf("128 characters: %v, want delivered", s.Action)
	}
	if _, ok := w.emu.ActivityByReference(atLimit); !ok {
		t.Error("a 128-character CG-Reference was not used")
	}
	dls := w.deadLetters()
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	h := dls[0].Header
	var errs map[string][]string
	if err := json.Unmarshal([]byte(h.Get("CG-Errors")), &errs); err != nil {
		t.Fatal(err)
	}
	if h.Get("CG-Error-Kind") != "schema" || len(errs) != 1 || len(errs["reference"]) != 1 {
		t.Errorf("CG-Error-Kind %q, CG-Errors %v: want schema on reference", h.Get("CG-Error-Kind"), errs)
	}
	if n := w.emu.Calls(emulator.ActivitiesPath); n != 1 {
		t.Errorf("the API was called %d times, want once (the valid one)", n)
	}
}

// TestUndecodableHeadersAreDeadLettered: a folded header line makes
// nats.go drop every header of a message; the worker dead-letters it as
// malformed instead of processing it without its CG-Configuration, and
// still delivers a message that simply has no headers.
func TestUndecodableHeadersAreDeadLettered(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	r := w.start(nil, testConfig())
	body := `{"Email":"joe@example.com"}`
	folded := natstest.PublishRawHeader(t, w.ns.URL, w.names.EventSubject(schemas.Contact),
		[]byte("NATS/1.0\r\nCG-Configuration: no-such-mapping\r\n folded\r\n\r\n"), []byte(body))
	waitFor(t, 10*time.Second, "the folded one settled", func() bool { _, ok := r.final(folded); return ok })
	plain := w.publish(schemas.Contact, body, nil)
	waitFor(t, 10*time.Second, "the plain one settled", func() bool { _, ok := r.final(plain); return ok })

	if s, _ := r.final(folded); s.Action != worker.DeadLetter || s.ErrorKind != "malformed" {
		t.Errorf("folded headers: %v %q, want dead-lettered as malformed", s.Action, s.ErrorKind)
	}
	if s, _ := r.final(plain); s.Action != worker.Ack {
		t.Errorf("no headers: %v (%s), want delivered", s.Action, s.Error)
	}
	dls := w.deadLetters()
	if len(dls) != 1 || string(dls[0].Data) != body || !strings.Contains(dls[0].Header.Get("CG-Errors"), `"headers"`) {
		t.Fatalf("dead letters: %d, want 1 with the body and CG-Errors on headers", len(dls))
	}
	if n := w.emu.Calls(emulator.RecordsPath); n != 1 {
		t.Errorf("the API was called %d times, want once (the plain one)", n)
	}
}

func TestInvalidEventsAreDeadLetteredWithoutCallingTheAPI(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	r := w.start(nil, testConfig())

	cases := []struct {
		kind      schemas.Kind
		body      string
		errorKind string
		field     string
	}{
		{schemas.Activity, `not json`, "malformed", "body"},
		// JSON, but not UTF-8: never sent to the API byte for byte.
		{schemas.Activity, "{\"account\":\"AC\xffME\",\"type\":\"T\",\"source\":\"S\"}", "malformed", "body"},
		{schemas.Contact, "{\"Email\":\"j\xc3@example.com\"}", "malformed", "body"},
		{schemas.Activity, `{"account":"ACME","source":"Desk"}`, "schema", "type"},
		{schemas.Activity, `{"account":"ACME","type":"T","source":"S","happend_at":"2019-10-06"}`, "schema", "happend_at"},
		{schemas.Activity, `[1,2]`, "schema", ""},
		{schemas.Account, `{"Industry":"Retail"}`, "schema", "Account Name"},
		{schemas.Contact, `{"Email":"nope@"}`, "schema", "Email"},
	}
	seqs := map[uint64]int{}
	for i, c := range cases {
		seqs[w.publish(c.kind, c.body, map[string]string{"Nats-Msg-Id": "bad-" + strconv.Itoa(i), "X-Producer": "crm", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})] = i
	}
	waitFor(t, 10*time.Second, "dead letters", func() bool { return len(w.deadLetters()) == len(cases) })

	for _, dl := range w.deadLetters() {
		origSeq, _ := strconv.ParseUint(dl.Header.Get("CG-Original-Seq"), 10, 64)
		i, ok := seqs[origSeq]
		if !ok {
			t.Fatalf("dead letter with unknown CG-Original-Seq %q", dl.Header.Get("CG-Original-Seq"))
		}
		c := cases[i]
		if string(dl.Data) != c.body {
			t.Errorf("case %d: body %q, want byte-identical %q", i, dl.Data, c.body)
		}
		if got := dl.Header.Get("CG-Error-Kind"); got != c.errorKind {
			t.Errorf("case %d: CG-Error-Kind %q, want %q", i, got, c.errorKind)
		}
		var errs map[string][]string
		if err := json.Unmarshal([]byte(dl.Header.Get("CG-Errors")), &errs); err != nil {
			t.Errorf("case %d: CG-Errors not JSON: %v", i, err)
		}
		if c.field != "" && len(errs[c.field]) == 0 {
			t.Errorf("case %d: CG-Errors %v has nothing on %q", i, errs, c.field)
		}
		want := map[string]string{
			"CG-Original-Subject": w.names.EventSubject(c.kind),
			"CG-Original-Stream":  w.names.EventsStream(),
			"CG-Original-Msg-Id":  "bad-" + strconv.Itoa(i),
			"CG-Attempts":         "1",
			"X-Producer":          "crm",
		}
		for k, v := range want {
			if got := dl.Header.Get(k); got != v {
				t.Errorf("case %d: header %s = %q, want %q", i, k, got, v)
			}
		}
		if dl.Header.Get("CG-Error") == "" || dl.Header.Get("CG-Failed-At") == "" {
			t.Errorf("case %d: CG-Error or CG-Failed-At missing: %v", i, dl.Header)
		}
		if _, err := time.Parse(time.RFC3339, dl.Header.Get("CG-Failed-At")); err != nil {
			t.Errorf("case %d: CG-Failed-At: %v", i, err)
		}
		if dl.Header.Get("CG-HTTP-Status") != "" {
			t.Errorf("case %d: CG-HTTP-Status set without an API answer", i)
		}
		if c.kind == schemas.Activity && (dl.Header.Get("CG-Reference") == "" || dl.Header.Get("CG-Happened-At") == "") {
			t.Errorf("case %d: activity dead letter without CG-Reference/CG-Happened-At: %v", i, dl.Header)
		}
		// The original's control headers are gone; the dead letter's own
		// message id is the README's ("Outcomes"), and its publish demanded an empty
		// subject (the direct get adds Nats-Stream, Nats-Sequence,
		// Nats-Subject and Nats-Time-Stamp on the way out).
		if id := dl.Header.Get("Nats-Msg-Id"); !strings.HasPrefix(id, "cg-dlq-"+w.names.EventsStream()+"-"+strconv.FormatUint(origSeq, 10)+"-") {
			t.Errorf("case %d: dead letter message id %q", i, id)
		}
		for k := range dl.Header {
			switch k {
			case "Nats-Msg-Id", "Nats-Stream", "Nats-Sequence", "Nats-Subject", "Nats-Time-Stamp":
			case "Nats-Expected-Last-Subject-Sequence":
				if v := dl.Header.Get(k); v != "0" {
					t.Errorf("case %d: %s = %q, want 0", i, k, v)
				}
			default:
				if strings.HasPrefix(strings.ToLower(k), "nats-") {
					t.Errorf("case %d: control header %s kept", i, k)
				}
			}
		}
	}
	if n := w.emu.Calls(emulator.ActivitiesPath) + w.emu.Calls(emulator.RecordsPath); n != 0 {
		t.Errorf("the API was called %d times for invalid events", n)
	}
	waitFor(t, 5*time.Second, "consumers settled", func() bool {
		return w.consumerSettled(schemas.Activity) && w.consumerSettled(schemas.Account) && w.consumerSettled(schemas.Contact)
	})
	_ = r
}

func TestAPIRejectionsAreDeadLettered(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	r := w.start(nil, testConfig())

	// A 422 from the API itself: a configuration it does not know.
	s422 := w.publish(schemas.Contact, `{"Email":"joe@example.com"}`, map[string]string{"CG-Configuration": "no-such-mapping"})
	waitFor(t, 10*time.Second, "422 dead letter", func() bool { _, ok := r.final(s422); return ok })
	// A 400 and a 413.
	for _, status := range []int{400, 413} {
		w.emu.FailNext(emulator.ActivitiesPath, status, 1)
		seq := w.publish(schemas.Activity, `{"account":"ACME","type":"T","source":"S"}`, nil)
		waitFor(t, 10*time.Second, "dead letter", func() bool { _, ok := r.final(seq); return ok })
	}
	dls := w.deadLetters()
	if len(dls) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dls))
	}
	want := []struct{ kind, status string }{{"api-422", "422"}, {"api-4xx", "400"}, {"api-4xx", "413"}}
	for i, dl := range dls {
		if dl.Header.Get("CG-Error-Kind") != want[i].kind || dl.Header.Get("CG-HTTP-Status") != want[i].status {
			t.Errorf("dead letter %d: kind %q status %q, want %v", i, dl.Header.Get("CG-Error-Kind"), dl.Header.Get("CG-HTTP-Status"), want[i])
		}
	}
	if !strings.Contains(dls[0].Header.Get("CG-Errors"), `"configuration"`) {
		t.Errorf("CG-Errors of the API 422 lacks the API's key: %s", dls[0].Header.Get("CG-Errors"))
	}
	if dls[0].Header.Get("CG-Configuration") != "no-such-mapping" {
		t.Error("producer header CG-Configuration not kept on the dead letter")
	}
}

func TestRedeliveredRejectIsDeadLetteredOnce(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	seq := w.publish(schemas.Activity, `{"account":"ACME","source":"S"}`, nil)

	// A first delivery stored its dead letter and died before acking: the
	// dead letter is already on its own subject. No message id: the
	// subject alone must keep it single, whatever the duplicate window.
	stream, _ := w.js.Stream(context.Background(), w.names.EventsStream())
	raw, err := stream.GetMsg(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	id := deadletter.LetterID(w.names.EventsStream(), seq, raw.Time)
	if _, err := w.js.Publish(context.Background(), w.names.DeadLetterSubject(schemas.Activity, id), raw.Data); err != nil {
		t.Fatal(err)
	}

	r := w.start(nil, testConfig())
	waitFor(t, 10*time.Second, "dead letter", func() bool { _, ok := r.final(seq); return ok })
	if n := len(w.deadLetters()); n != 1 {
		t.Fatalf("%d dead letters for one message, want 1", n)
	}
}

func TestContactOnlyRejectionWaitsForTheContact(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	cfg := testConfig()
	cfg.ContactWait = 30 * time.Second
	r := w.start(nil, cfg)

	seq := w.publish(schemas.Activity, `{"account":"ACME","type":"T","source":"S","contact":"late@example.com"}`, nil)
	waitFor(t, 10*time.Second, "a few 422s", func() bool { return w.emu.Calls(emulator.ActivitiesPath) >= 3 })
	w.emu.AddContacts("late@example.com") // the contact arrives
	waitFor(t, 10*time.Second, "delivery", func() bool { _, ok := r.final(seq); return ok })
	if s, _ := r.final(seq); s.Action != worker.Ack {
		t.Fatalf("outcome %v, want delivered once the contact exists", s.Action)
	}
	if n := len(w.deadLetters()); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
}

func TestContactOnlyRejectionDeadLetteredAfterContactWait(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	cfg := testConfig()
	cfg.ContactWait = 700 * time.Millisecond
	cfg.RetryMaxElapsed = 300 * time.Millisecond // the wait outlasts one delivery
	r := w.start(nil, cfg)

	start := time.Now()
	seq := w.publish(schemas.Activity, `{"account":"ACME","type":"T","source":"S","contact":"ghost@example.com"}`, nil)
	waitFor(t, 15*time.Second, "dead letter", func() bool { _, ok := r.final(seq); return ok })
	if s, _ := r.final(seq); s.Action != worker.DeadLetter || s.ErrorKind != "api-422" {
		t.Fatalf("outcome %v/%s, want an api-422 dead letter", s.Action, s.ErrorKind)
	}
	if el := time.Since(start); el < cfg.ContactWait {
		t.Errorf("dead-lettered after %s, before CG_CONTACT_WAIT %s", el, cfg.ContactWait)
	}
	if n := len(w.deadLetters()); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}
	// The deliveries whose retry budget the wait spent were handed back
	// saying why.
	handedBack := 0
	for _, s := range r.settledOf(seq) {
		if s.Action == worker.Retry {
			handedBack++
			if !strings.Contains(s.Error, "422") {
				t.Errorf("handed back during the contact wait without its cause: %+v", s)
			}
		}
	}
	if handedBack == 0 {
		t.Error("no delivery was handed back: the wait did not outlast the retry budget")
	}
}

// activityPuts are the arrival times of the activity PUTs the emulator
// received.
func activityPuts(w *world) []time.Time {
	var times []time.Time
	for _, req := range w.emu.Requests() {
		if strings.HasPrefix(req.Path, "/activities") {
			times = append(times, req.Time)
		}
	}
	return times
}

func TestRateLimitHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{RetryAfter: 2 * time.Second})
	r := w.start(nil, testConfig()) // backoff starts at 20ms: only Retry-After explains a 2s gap
	w.emu.FailNext(emulator.ActivitiesPath, 429, 1)
	seq := w.publish(schemas.Activity, `{"account":"ACME","type":"T","source":"S"}`, nil)
	waitFor(t, 10*time.Second, "delivery", func() bool { _, ok := r.final(seq); return ok })

	times := activityPuts(w)
	if len(times) != 2 {
		t.Fatalf("%d PUTs, want 2 (429 then success)", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < 2*time.Second {
		t.Errorf("retried after %s, before Retry-After of 2s", gap)
	}
}

func TestOutageWaitsAtTheBreakerNeverDeadLettersAndDoesNotStorm(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	cfg := testConfig()
	cfg.RetryMaxElapsed = 2 * time.Second // shorter than the outage: spent if waiting counted
	health := health.New(true, false)
	health.SetNATS(true)
	cfg.Health = health
	r := w.start(nil, cfg)
	waitFor(t, 5*time.Second, "ready", func() bool { return health.Ready() == nil })

	w.emu.SetOutage(true)
	var seqs []uint64
	for i := range 20 {
		seqs = append(seqs, w.publish(schemas.Activity, `{"account":"ACME","type":"T","source":"S","reference":"outage-`+strconv.Itoa(i)+`"}`, nil))
	}
	waitFor(t, 10*time.Second, "breaker open", func() bool {
		err := health.Ready()
		return err != nil && strings.Contains(err.Error(), "activities since")
	})
	callsAt := w.emu.Calls(emulator.ActivitiesPath)
	outageStart := time.Now()
	waitFor(t, 10*time.Second, "three seconds of outage", func() bool { return time.Since(outageStart) > 3*time.Second })
	// One probe at a time, at most one every second: a storm, or each
	// message backing off alone, would make dozens of calls.
	if calls := w.emu.Calls(emulator.ActivitiesPath) - callsAt; calls > 5 {
		t.Errorf("%d calls in 3 s of outage with the breaker open; want at most about 3 probes", calls)
	}
	for _, s := range r.outcomes() {
		if s.Action != worker.Ack {
			t.Errorf("seq %d: %v during the outage; held messages wait at the breaker", s.Seq, s.Action)
		}
	}

	back := time.Now()
	w.emu.SetOutage(false)
	for _, seq := range seqs {
		waitFor(t, 10*time.Second, "delivery after the outage", func() bool { _, ok := r.final(seq); return ok })
		if s, _ := r.final(seq); s.Action != worker.Ack {
			t.Fatalf("seq %d: %v, want delivered", seq, s.Action)
		}
	}
	if took := time.Since(back); took > 5*time.Second {
		t.Errorf("every event stored %s after the API came back; want within a probe interval", took)
	}
	if n := len(w.deadLetters()); n != 0 {
		t.Fatalf("%d dead letters during an outage", n)
	}
	if w.emu.ActivityCount() != 20 {
		t.Fatalf("%d activities, want 20", w.emu.ActivityCount())
	}
	waitFor(t, 5*time.Second, "ready after recovery", func() bool { return health.Ready() == nil })
}

func TestActivitiesOutageDoesNotStallRecords(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	cfg := testConfig()
	cfg.Concurrency = 4
	cfg.RetryMaxElapsed = time.Minute
	health := health.New(true, false)
	health.SetNATS(true)
	cfg.Health = health
	r := w.start(nil, cfg)
	waitFor(t, 5*time.Second, "ready", func() bool { return health.Ready() == nil })

	// Only the activities endpoint is down; more activities than the
	// replica has handlers and slots.
	w.emu.FailNext(emulator.ActivitiesPath, 503, 1_000_000)
	for i := range 30 {
		w.publish(schemas.Activity, `{"account":"ACME","type":"T","source":"S","reference":"stall-`+strconv.Itoa(i)+`"}`, nil)
	}
	waitFor(t, 10*time.Second, "activities breaker open", func() bool { return health.Ready() != nil })
	var accounts []uint64
	for i := range 20 {
		accounts = append(accounts, w.publish(schemas.Account, `{"Account Name":"ACME `+strconv.Itoa(i)+`"}`, nil))
	}
	for _, seq := range accounts {
		waitFor(t, 5*time.Second, "records delivered during the activities outage", func() bool { _, ok := r.final(seq); return ok })
		if s, _ := r.final(seq); s.Action != worker.Ack {
			t.Fatalf("account seq %d: %v, want delivered", seq, s.Action)
		}
	}
	if n := w.emu.ActivityCount(); n != 0 {
		t.Fatalf("%d activities stored during their outage", n)
	}
	// Activities published while the breaker is open stay in the stream:
	// the puller does not fetch them.
	for i := range 20 {
		w.publish(schemas.Activity, `{"account":"ACME","type":"T","source":"S","reference":"later-`+strconv.Itoa(i)+`"}`, nil)
	}
	cons, err := w.js.Consumer(t.Context(), w.names.EventsStream(), w.names.Consumer(schemas.Activity))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "later activities published", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumPending+uint64(info.NumAckPending) >= 20
	})
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending < 18 {
		t.Errorf("%d of 20 activities published during the outage left in the stream; the puller fetched them", info.NumPending)
	}
	w.emu.ClearFaults()
	waitFor(t, 10*time.Second, "activities delivered after the outage", func() bool { return w.emu.ActivityCount() == 50 })
}

func TestRetryBudgetSpentHandsBackWithDelay(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{RetryAfter: 2 * time.Second})
	cfg := testConfig()
	cfg.RetryMaxElapsed = 300 * time.Millisecond // the Retry-After reaches past it
	r := w.start(nil, cfg)
	w.emu.FailNext(emulator.ActivitiesPath, 429, 1)
	seq := w.publish(schemas.Activity, `{"account":"ACME","type":"T","source":"S"}`, nil)
	waitFor(t, 10*time.Second, "delivery", func() bool { _, ok := r.final(seq); return ok })

	if got := r.settledOf(seq); len(got) != 2 || got[0].Action != worker.Retry || got[1].Action != worker.Ack {
		t.Fatalf("settled %+v, want handed back to JetStream, then delivered", got)
	}
	times := activityPuts(w)
	if len(times) != 2 {
		t.Fatalf("%d PUTs, want 2", len(times))
	}
	// NakWithDelay(Retry-After): a plain Nak would redeliver at once.
	if gap := times[1].Sub(times[0]); gap < 1900*time.Millisecond {
		t.Errorf("redelivered %s after the 429, before its Retry-After of 2 s: handed back without the delay", gap)
	}
}

func TestMisconfigurationIsAnOutageNotADeadLetter(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	health := health.New(true, false)
	health.SetNATS(true)
	cfg := testConfig()
	cfg.Health = health
	r := w.start(nil, cfg)
	waitFor(t, 5*time.Second, "ready", func() bool { return health.Ready() == nil })

	w.emu.FailNext(emulator.ActivitiesPath, 404, 8)
	w.emu.FailNext(emulator.ActivitiesPath, 403, 4) // 403 -> refresh -> 403: an auth outage, twice
	seq := w.publish(schemas.Activity, `{"account":"ACME","type":"T","source":"S"}`, nil)
	waitFor(t, 5*time.Second, "not ready during the outage", func() bool { return health.Ready() != nil })
	waitFor(t, 10*time.Second, "delivery once the API is right again", func() bool { _, ok := r.final(seq); return ok })
	if s, _ := r.final(seq); s.Action != worker.Ack {
		t.Fatalf("outcome %v, want delivered", s.Action)
	}
	if err := health.Ready(); err != nil {
		t.Fatalf("still not ready after recovery: %v", err)
	}
	if n := len(w.deadLetters()); n != 0 {
		t.Fatalf("%d dead letters for a misconfiguration", n)
	}
}

func TestExpiredTokenIsRefreshed(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	r := w.start(nil, testConfig())
	first := w.publish(schemas.Activity, `{"account":"ACME","type":"T","source":"S"}`, nil)
	waitFor(t, 10*time.Second, "first delivery", func() bool { _, ok := r.final(first); return ok })
	issued := w.emu.TokensIssued()
	w.emu.ExpireTokens()
	second := w.publish(schemas.Activity, `{"account":"ACME","type":"T2","source":"S"}`, nil)
	waitFor(t, 10*time.Second, "second delivery", func() bool { _, ok := r.final(second); return ok })
	if s, _ := r.final(second); s.Action != worker.Ack {
		t.Fatalf("outcome %v after token expiry, want delivered", s.Action)
	}
	if w.emu.TokensIssued() <= issued {
		t.Error("no new token fetched after a 401")
	}
}

func TestInProgressPreventsRedeliveryOfSlowCalls(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{Latency: 2500 * time.Millisecond})
	cfg := testConfig() // ack wait 1s: without InProgress the message would be redelivered twice
	r := w.start(nil, cfg)
	seq := w.publish(schemas.Activity, `{"account":"ACME","type":"T","source":"S"}`, nil)
	waitFor(t, 10*time.Second, "delivery", func() bool { _, ok := r.final(seq); return ok })
	if n := w.emu.Calls(emulator.ActivitiesPath); n != 1 {
		t.Fatalf("%d PUTs for one slow message, want 1", n)
	}
	if got := r.settledOf(seq); len(got) != 1 {
		t.Fatalf("message settled %d times, want once", len(got))
	}
}

func TestConsumerWithDeliveryLimitIsRefused(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	_, err := w.js.CreateConsumer(context.Background(), w.names.EventsStream(), jetstream.ConsumerConfig{
		Durable: "cgworker-activity", FilterSubject: w.names.EventSubject(schemas.Activity),
		AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	wk, err := worker.New(w.js, w.client(time.Second), w.v, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = wk.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "cgworker-activity") {
		t.Fatalf("Run = %v, want a refusal naming cgworker-activity", err)
	}
}

// TestWaitingMessagesAreNotRedelivered: with every slot busy longer than the
// ack wait, messages not yet started must not be sitting in a client buffer
// where their ack wait runs out: the other replica would PUT them too.
func TestWaitingMessagesAreNotRedelivered(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{Latency: 1500 * time.Millisecond})
	cfg := testConfig() // ack wait 1s
	cfg.Concurrency = 8 // three rounds of slow PUTs for 48 messages on two replicas
	w.start(w.connect(), cfg)
	w.start(w.connect(), cfg)
	const n = 48
	for i := range n {
		w.publish(schemas.Activity, activity(i), nil)
	}
	waitFor(t, 30*time.Second, "every event delivered", func() bool { return w.emu.ActivityCount() == n && w.consumerSettled(schemas.Activity) })
	if calls := w.emu.Calls(emulator.ActivitiesPath); calls != n {
		t.Fatalf("%d PUTs for %d messages: messages waiting for a slot were redelivered", calls, n)
	}
}

// TestDeadLetterNotStoredKeepsTheMessage: when the dead letter cannot be
// stored (here the dead-letter stream is gone), the message is not
// acknowledged but handed back with a delay, and is dead-lettered once the
// stream is back.
func TestDeadLetterNotStoredKeepsTheMessage(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	if err := w.js.DeleteStream(context.Background(), w.names.DLQStream()); err != nil {
		t.Fatal(err)
	}
	r := w.start(nil, testConfig())
	seq := w.publish(schemas.Activity, `not json`, nil)
	waitFor(t, 10*time.Second, "a failed dead letter handed back", func() bool {
		for _, s := range r.settledOf(seq) {
			if s.Action == worker.Retry {
				return true
			}
		}
		return false
	})
	if _, ok := r.final(seq); ok {
		t.Fatal("message settled while its dead letter could not be stored")
	}
	if err := queue.EnsureStreams(context.Background(), w.js, queue.StreamConfig{Names: w.names, AckWait: time.Second}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "dead letter stored", func() bool { _, ok := r.final(seq); return ok })
	if s, _ := r.final(seq); s.Action != worker.DeadLetter {
		t.Fatalf("outcome %v, want dead-lettered", s.Action)
	}
	if n := len(w.deadLetters()); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}
	waitFor(t, 5*time.Second, "consumer settled", func() bool { return w.consumerSettled(schemas.Activity) })
}
