package chaos

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/deadletter"
	"github.com/cgworker/cgworker/queue/natstest"
	"github.com/cgworker/cgworker/schemas"
	"github.com/cgworker/cgworker/worker"
)

// event is one message a test publishes, with what must become of it.
type event struct {
	kind   schemas.Kind
	id     string // Nats-Msg-Id, unique in the test
	body   []byte
	header nats.Header

	// Exactly one of these describes the expected outcome.
	reference string // a valid activity: the reference it is stored under
	record    string // a valid record: its key (Account Name, lower-case Email)
	errorKind string // an invalid event: its CG-Error-Kind
}

func (e *event) msg() *nats.Msg {
	m := nats.NewMsg(names.EventSubject(e.kind))
	m.Data = e.body
	for k, v := range e.header {
		m.Header[k] = v
	}
	return m
}

// derivedReference is the reference the worker derives for an activity
// without one, published under msgID (README, "Events").
func derivedReference(msgID string) string {
	return worker.DeriveReference(names.EventsStream(), msgID, 0, 0)
}

// batch builds the events of one test; ids carry its name so that a stray
// message from elsewhere could never be mistaken for one of them.
type batch struct {
	name   string
	events []event
}

func newBatch(name string) *batch { return &batch{name: name} }

func (b *batch) add(e event) {
	e.id = fmt.Sprintf("%s-%05d", b.name, len(b.events))
	b.events = append(b.events, e)
}

func (b *batch) next() int { return len(b.events) }

// activities adds n valid activities: half name their reference, half
// leave it to the worker (derived from the message id), some with the
// other optional fields.
func (b *batch) activities(n int) *batch {
	for range n {
		i := b.next()
		id := fmt.Sprintf("%s-%05d", b.name, i)
		var body, ref string
		switch i % 4 {
		case 0:
			ref = "ref-" + id
			body = fmt.Sprintf(`{"account":"Account %d","type":"Invoice","source":"chaos","reference":%q,"happened_at":"2024-05-0%d 10:11:12"}`, i%50, ref, 1+i%9)
		case 1:
			ref = derivedReference(id)
			body = fmt.Sprintf(`{"account":"Account %d","type":"Support Ticket","source":"chaos","additional_information_object":{"n":%d,"price":12.50}}`, i%50, i)
		case 2:
			ref = "ref-" + id
			body = fmt.Sprintf(`{"account":"Account %d","type":"Meeting","source":"chaos","reference":%q,"contact":"","additional_information_array":{"k":"v%d"}}`, i%50, ref, i)
		default:
			ref = derivedReference(id)
			body = fmt.Sprintf(`{"account":"Account %d","type":"Order","source":"chaos","happened_at":"2024-06-01T08:00:00+02:00","reference":""}`, i%50)
		}
		b.add(event{kind: schemas.Activity, body: []byte(body), reference: ref})
	}
	return b
}

// accounts adds n valid account records.
func (b *batch) accounts(n int) *batch {
	for range n {
		name := fmt.Sprintf("Acme %s %05d", b.name, b.next())
		body := fmt.Sprintf(`{"Account Name":%q,"Employees":%d,"Active":true}`, name, b.next()%1000)
		b.add(event{kind: schemas.Account, body: []byte(body), record: name})
	}
	return b
}

// contacts adds n valid contact records.
func (b *batch) contacts(n int) *batch {
	for range n {
		email := fmt.Sprintf("c-%s-%05d@example.com", b.name, b.next())
		body := fmt.Sprintf(`{"Email":%q,"First Name":"Joe","Score":%d}`, email, b.next()%11)
		b.add(event{kind: schemas.Contact, body: []byte(body), record: strings.ToLower(email)})
	}
	return b
}

// malformed adds n bodies that are not JSON, spread over the kinds.
func (b *batch) malformed(n int) *batch {
	bodies := []string{`not json`, `{"account":`, `{"Account Name":"x"`, "\x00\x01\x02", `{"a":1}}`, ``}
	for range n {
		i := b.next()
		b.add(event{kind: kinds[i%3], body: []byte(bodies[i%len(bodies)]), errorKind: deadletter.ErrorKindMalformed})
	}
	return b
}

// schemaInvalid adds n JSON events that break their schema, of every kind.
func (b *batch) schemaInvalid(n int) *batch {
	type bad struct {
		kind schemas.Kind
		body string
	}
	bads := []bad{
		{schemas.Activity, `{"account":"A","source":"chaos"}`},                                       // type missing
		{schemas.Activity, `{"account":"A","type":"T","source":"chaos","happend_at":"2024"}`},        // misspelt field
		{schemas.Activity, `{"account":"A","type":"T","source":"chaos","happened_at":"2023-02-30"}`}, // impossible date
		{schemas.Activity, `{"account":"","type":"T","source":"chaos"}`},                             // empty required
		{schemas.Activity, `[1,2,3]`},                                                                // not an object
		{schemas.Activity, `{"account":"A","type":"T","source":"chaos","additional_information_object":{},"additional_information_array":{}}`},
		{schemas.Activity, `{"account":"A","type":"T","source":"chaos","additional_information_array":{"k":1}}`},
		{schemas.Account, `{"Employees":3}`},                       // Account Name missing
		{schemas.Account, `{"Account Name":""}`},                   // empty
		{schemas.Account, `{"Account Name":"A","Nested":{"x":1}}`}, // not a scalar
		{schemas.Contact, `{"Email":"not-an-email"}`},
		{schemas.Contact, `{"First Name":"Joe"}`}, // neither Email nor Phone
		{schemas.Contact, `"just a string"`},
	}
	for range n {
		x := bads[b.next()%len(bads)]
		b.add(event{kind: x.kind, body: []byte(x.body), errorKind: deadletter.ErrorKindSchema})
	}
	return b
}

// oversize adds n activities above the API's 2 MiB limit (schema errors).
func (b *batch) oversize(n int) *batch {
	pad := strings.Repeat("x", schemas.MaxBodyBytes)
	for range n {
		body := `{"account":"A","type":"T","source":"chaos","additional_information_object":{"pad":"` + pad + `"}}`
		b.add(event{kind: schemas.Activity, body: []byte(body), errorKind: deadletter.ErrorKindSchema})
	}
	return b
}

// rejected adds n events that pass the schema but that the API rejects
// with a 422: records naming a configuration the API does not know, and
// activities naming a contact it does not know (dead-lettered once
// CG_CONTACT_WAIT has passed).
func (b *batch) rejected(n int) *batch {
	for range n {
		i := b.next()
		switch i % 3 {
		case 0:
			body := fmt.Sprintf(`{"account":"A","type":"T","source":"chaos","contact":"ghost-%s-%d@nowhere.example"}`, b.name, i)
			b.add(event{kind: schemas.Activity, body: []byte(body), errorKind: deadletter.ErrorKindAPI422})
		case 1:
			h := nats.Header{}
			h.Set(queue.HeaderConfiguration, "no-such-mapping")
			body := fmt.Sprintf(`{"Account Name":"Ghost %s %d"}`, b.name, i)
			b.add(event{kind: schemas.Account, body: []byte(body), header: h, errorKind: deadletter.ErrorKindAPI422})
		default:
			h := nats.Header{}
			h.Set(queue.HeaderConfiguration, "no-such-mapping")
			body := fmt.Sprintf(`{"Email":"ghost-%s-%d@example.com"}`, b.name, i)
			b.add(event{kind: schemas.Contact, body: []byte(body), header: h, errorKind: deadletter.ErrorKindAPI422})
		}
	}
	return b
}

// shuffled mixes the events (deterministically) so that valid and invalid
// ones interleave on every subject.
func (b *batch) shuffled() []event {
	out := append([]event(nil), b.events...)
	r := rand.New(rand.NewPCG(uint64(len(out)), 42))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// expected counts what the events must become.
type expected struct {
	activities, accounts, contacts, deadLetters int
}

func expect(events []event) expected {
	var x expected
	for _, e := range events {
		switch {
		case e.errorKind != "":
			x.deadLetters++
		case e.kind == schemas.Activity:
			x.activities++
		case e.kind == schemas.Account:
			x.accounts++
		default:
			x.contacts++
		}
	}
	return x
}

// waitSettled waits until the emulator holds at least every valid event,
// the dead-letter stream at least every invalid one, and the consumers
// have nothing left; verify then checks the counts are exact.
func waitSettled(t testing.TB, timeout time.Duration, js jetstream.JetStream, api *emulator.Server, events []event) {
	t.Helper()
	x := expect(events)
	eventually(t, timeout, "every event settled", func() (bool, string) {
		acts := api.ActivityCount()
		accts := api.RecordCount("account")
		conts := api.RecordCount("contact")
		dls, err := streamMsgs(js, names.DLQStream())
		status := fmt.Sprintf("activities %d/%d, accounts %d/%d, contacts %d/%d, dead letters %d/%d (%v);",
			acts, x.activities, accts, x.accounts, conts, x.contacts, dls, x.deadLetters, err)
		if acts < x.activities || accts < x.accounts || conts < x.contacts || err != nil || int(dls) < x.deadLetters {
			return false, status
		}
		drained, cs := consumersDrained(js)
		return drained, status + cs
	})
}

// verify proves nothing was lost and nothing duplicated: every valid
// activity stored under its reference and no other activity, every valid
// record stored, every invalid event dead-lettered exactly once with its
// error kind and origin, no valid event dead-lettered, and the consumers
// holding nothing.
func verify(t testing.TB, js jetstream.JetStream, api *emulator.Server, events []event, seqs map[string]uint64) {
	t.Helper()
	x := expect(events)
	if got := api.ActivityCount(); got != x.activities {
		t.Errorf("emulator holds %d distinct activities, want %d (a duplicate is a second activity for one event)", got, x.activities)
	}
	if got := api.RecordCount("account"); got != x.accounts {
		t.Errorf("emulator holds %d accounts, want %d", got, x.accounts)
	}
	if got := api.RecordCount("contact"); got != x.contacts {
		t.Errorf("emulator holds %d contacts, want %d", got, x.contacts)
	}
	missing := 0
	for _, e := range events {
		switch {
		case e.errorKind != "":
		case e.kind == schemas.Activity:
			if _, ok := api.ActivityByReference(e.reference); !ok {
				missing++
				if missing <= 5 {
					t.Errorf("activity %s (reference %s) not stored", e.id, e.reference)
				}
			}
		default:
			if api.RecordPuts(string(e.kind), e.record) == 0 {
				missing++
				if missing <= 5 {
					t.Errorf("%s %s (key %q) not stored", e.kind, e.id, e.record)
				}
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d valid events missing in the emulator", missing)
	}

	// Dead letters, by the original message id and stream sequence.
	byID := make(map[string][]*jetstream.RawStreamMsg)
	bySeq := make(map[string]int)
	dls := natstest.Messages(t, js, names.DLQStream())
	for _, m := range dls {
		h := m.Header
		byID[h.Get(deadletter.HeaderOriginalMsgID)] = append(byID[h.Get(deadletter.HeaderOriginalMsgID)], m)
		bySeq[h.Get(deadletter.HeaderOriginalSeq)]++
	}
	if len(dls) != x.deadLetters {
		t.Errorf("%d dead letters, want %d", len(dls), x.deadLetters)
	}
	for seq, n := range bySeq {
		if n != 1 {
			t.Errorf("CG-Original-Seq %s dead-lettered %d times", seq, n)
		}
	}
	bad := 0
	for _, e := range events {
		got := byID[e.id]
		if e.errorKind == "" {
			if len(got) != 0 {
				bad++
				if bad <= 5 {
					t.Errorf("valid %s %s dead-lettered: %s: %s", e.kind, e.id,
						got[0].Header.Get(deadletter.HeaderErrorKind), got[0].Header.Get(deadletter.HeaderError))
				}
			}
			continue
		}
		if len(got) != 1 {
			bad++
			if bad <= 5 {
				t.Errorf("invalid %s %s dead-lettered %d times, want once", e.kind, e.id, len(got))
			}
			continue
		}
		h := got[0].Header
		wantSeq := strconv.FormatUint(seqs[e.id], 10)
		if h.Get(deadletter.HeaderErrorKind) != e.errorKind || h.Get(deadletter.HeaderOriginalSeq) != wantSeq ||
			h.Get(deadletter.HeaderOriginalSubject) != names.EventSubject(e.kind) || string(got[0].Data) != string(e.body) {
			bad++
			if bad <= 5 {
				t.Errorf("dead letter of %s %s: kind %q (want %q), seq %s (want %s), subject %s, body intact %v; error %s",
					e.kind, e.id, h.Get(deadletter.HeaderErrorKind), e.errorKind, h.Get(deadletter.HeaderOriginalSeq), wantSeq,
					h.Get(deadletter.HeaderOriginalSubject), string(got[0].Data) == string(e.body), h.Get(deadletter.HeaderError))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d events with a wrong dead-letter outcome", bad)
	}
	if ok, status := consumersDrained(js); !ok {
		t.Errorf("consumers not drained at the end:%s", status)
	}
}
