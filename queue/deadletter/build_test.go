package deadletter_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/deadletter"
	"github.com/cgworker/cgworker/schemas"
)

func TestBuildHeaders(t *testing.T) {
	t.Parallel()
	stored := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
	failed := time.Date(2024, 5, 1, 12, 3, 4, 0, time.FixedZone("x", 3600))
	body := []byte("{\"account\": \"ACME\", \"n\": 1.50}\n")
	header := nats.Header{
		"Nats-Msg-Id":                 {"producer-7"},
		"nats-expected-last-sequence": {"3"},
		"NATS-Rollup":                 {"sub"},
		"Nats-TTL":                    {"1h"},
		"traceparent":                 {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		"CG-Configuration":            {"acct-cfg"},
		"X-Custom":                    {"one", "two"},
		"cg-error-kind":               {"stale from an earlier life"},
		"CG-Original-Seq":             {"999"},
	}
	meta := &jetstream.MsgMetadata{
		Sequence:     jetstream.SequencePair{Stream: 42, Consumer: 7},
		NumDelivered: 3,
		Timestamp:    stored,
		Stream:       "ACME_EVENTS",
	}
	info := deadletter.Info{
		Kind:       "activity",
		ErrorKind:  deadletter.ErrorKindAPI422,
		Error:      "The given data was invalid.\nSecond line",
		Errors:     map[string][]string{"contact": {"The selected contact is invalid."}},
		HTTPStatus: 422,
		Reference:  "cgw-abc",
		HappenedAt: "2024-05-01 12:00:00",
		FailedAt:   failed,
	}
	msg, id := deadletter.Build(queue.NewNames("acme"), "acme.events.activity", header, body, meta, info)

	if id != fmt.Sprintf("ACME_EVENTS-42-%d", stored.UnixNano()) {
		t.Errorf("letter id = %s", id)
	}
	if got := deadletter.MsgID(queue.NewNames("acme"), id); got != "acme-dlq-"+id {
		t.Errorf("msg id = %s", got)
	}
	if msg.Subject != "acme.dlq.activity."+id {
		t.Errorf("subject = %s", msg.Subject)
	}
	if string(msg.Data) != string(body) {
		t.Errorf("body changed: %q", msg.Data)
	}
	for k := range msg.Header {
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			t.Errorf("kept control header %s", k)
		}
	}
	want := map[string]string{
		"traceparent":         header["traceparent"][0],
		"CG-Configuration":    "acct-cfg",
		"CG-Error-Kind":       "api-422",
		"CG-Error":            "The given data was invalid. Second line",
		"CG-Errors":           `{"contact":["The selected contact is invalid."]}`,
		"CG-HTTP-Status":      "422",
		"CG-Original-Subject": "acme.events.activity",
		"CG-Original-Stream":  "ACME_EVENTS",
		"CG-Original-Seq":     "42",
		"CG-Original-Msg-Id":  "producer-7",
		"CG-Reference":        "cgw-abc",
		"CG-Happened-At":      "2024-05-01 12:00:00",
		"CG-Attempts":         "3",
		"CG-Failed-At":        "2024-05-01T11:03:04Z",
	}
	for k, v := range want {
		if got := msg.Header[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if got := msg.Header["X-Custom"]; len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Errorf("X-Custom = %q", got)
	}
	if len(msg.Header) != len(want)+1 {
		t.Errorf("headers = %v", msg.Header)
	}
	// The original's header map is untouched.
	if len(header) != 9 || header.Get("Nats-Msg-Id") != "producer-7" {
		t.Errorf("original header changed: %v", header)
	}

	// Without the optional values their headers are left out.
	msg, _ = deadletter.Build(queue.NewNames(""), "cg.events.contact", nil, []byte("x"), meta, deadletter.Info{ErrorKind: "malformed", Error: "not JSON"})
	for _, k := range []string{"CG-HTTP-Status", "CG-Original-Msg-Id", "CG-Reference", "CG-Happened-At"} {
		if _, ok := msg.Header[k]; ok {
			t.Errorf("%s set without a value", k)
		}
	}
	if !strings.HasPrefix(msg.Subject, "cg.dlq.contact.ACME_EVENTS-42-") || msg.Header.Get("CG-Errors") != "{}" || msg.Header.Get("CG-Attempts") != "3" {
		t.Errorf("derived kind/errors/attempts: %s %v", msg.Subject, msg.Header)
	}

	// A producer's message id is found in any spelling, as the worker finds it.
	msg, _ = deadletter.Build(queue.NewNames(""), "cg.events.contact", nats.Header{"nats-msg-id": {"lower-1"}}, []byte("x"), meta, deadletter.Info{ErrorKind: "malformed"})
	if got := msg.Header.Get("CG-Original-Msg-Id"); got != "lower-1" {
		t.Errorf("CG-Original-Msg-Id = %q, want lower-1", got)
	}
	if _, ok := msg.Header["nats-msg-id"]; ok {
		t.Error("kept the lower-case control header")
	}
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	if got := schemas.OneLine(" a\nb\r\nc\td\x00 ", 100); got != "a b c d" {
		t.Errorf("OneLine = %q", got)
	}
	long := strings.Repeat("é", 2000)
	got := schemas.OneLine(long, deadletter.MaxErrorBytes)
	if len(got) > deadletter.MaxErrorBytes || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "éé") {
		t.Errorf("cut to %d bytes: %q...", len(got), got[:10])
	}
}

func TestEncodeErrorsCap(t *testing.T) {
	t.Parallel()
	many := map[string][]string{}
	total := 0
	for i := range 200 {
		k := fmt.Sprintf("field_%03d", i)
		for j := range 3 {
			many[k] = append(many[k], fmt.Sprintf("The %s field must be <valid> & %d %s", k, j, strings.Repeat("x", 30)))
			total++
		}
	}
	huge := map[string][]string{"a": {strings.Repeat("y", 10000)}, "b": {"short"}}
	quotes := map[string][]string{}
	for i := range 300 {
		quotes[fmt.Sprintf("\"%d\"\n", i)] = []string{strings.Repeat("\"\\\u0001", 20)}
	}
	for name, errs := range map[string]map[string][]string{"many": many, "huge": huge, "quotes": quotes} {
		got := deadletter.EncodeErrors(errs, deadletter.MaxErrorsBytes)
		if len(got) > deadletter.MaxErrorsBytes {
			t.Errorf("%s: %d bytes", name, len(got))
		}
		var back map[string][]string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Fatalf("%s: invalid JSON: %v\n%s", name, err, got)
		}
		note := back["_truncated"]
		if len(note) != 1 || !strings.HasPrefix(note[0], "CG-Errors was cut to 4096 bytes") {
			t.Errorf("%s: note = %q", name, note)
		}
		if len(back) < 2 {
			t.Errorf("%s: nothing kept", name)
		}
		if strings.Contains(got, `\u003c`) {
			t.Errorf("%s: HTML-escaped", name)
		}
	}
	// The count is exact.
	got := deadletter.EncodeErrors(many, deadletter.MaxErrorsBytes)
	var back map[string][]string
	_ = json.Unmarshal([]byte(got), &back)
	kept := 0
	for k, v := range back {
		if k != "_truncated" {
			kept += len(v)
		}
	}
	if want := fmt.Sprintf("; %d more messages", total-kept); !strings.HasSuffix(back["_truncated"][0], want) {
		t.Errorf("note %q, want suffix %q", back["_truncated"][0], want)
	}
	// A schema summary, already cut to one line, is not cut again.
	long := map[string]string{} // 300 unknown activity fields
	for i := range 300 {
		long[fmt.Sprintf("field_%03d", i)] = "x"
	}
	v, err := schemas.New("")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(long)
	verr := v.Validate(schemas.Activity, body)
	if verr == nil {
		t.Fatal("no error")
	}
	msg, _ := deadletter.Build(queue.NewNames(""), "cg.events.activity", nil, body, nil, deadletter.Info{ErrorKind: "schema", Error: verr.Error()})
	if got := msg.Header.Get("CG-Error"); got != verr.Error() || strings.Count(got, "…") != 1 {
		t.Errorf("CG-Error = %q\nsummary  %q", got, verr.Error())
	}
	// Small ones are left as they are.
	if got := deadletter.EncodeErrors(map[string][]string{"b": {"2"}, "a": {"1"}}, 4096); got != `{"a":["1"],"b":["2"]}` {
		t.Errorf("small = %s", got)
	}
}

// TestEncodeErrorsCutsLongFieldNames: an unknown field whose name alone is
// over the limit is still named in CG-Errors, cut with an ellipsis.
func TestEncodeErrorsCutsLongFieldNames(t *testing.T) {
	t.Parallel()
	v, err := schemas.New("")
	if err != nil {
		t.Fatal(err)
	}
	name := strings.Repeat("n", 900<<10) // two of them stay under the 2 MiB body limit
	body := []byte(`{"account":"a","type":"t","source":"s","` + name + `":1,"` + name + `x":2}`)
	var verr *schemas.Error
	if !errors.As(v.Validate(schemas.Activity, body), &verr) {
		t.Fatal("no schema error")
	}
	got := deadletter.EncodeErrors(verr.Fields, deadletter.MaxErrorsBytes)
	if len(got) > deadletter.MaxErrorsBytes {
		t.Errorf("%d bytes", len(got))
	}
	var back map[string][]string
	if err := json.Unmarshal([]byte(got), &back); err != nil {
		t.Fatalf("invalid JSON: %v", err)
	}
	named := 0
	for k, msgs := range back {
		if strings.HasPrefix(k, "nnnn") && strings.HasSuffix(k, "…") && len(msgs) > 0 {
			named++
		}
	}
	// The two names are alike for far more than the cut: one entry.
	if named != 1 || len(back["_truncated"]) != 1 {
		t.Errorf("CG-Errors does not name the field once, cut, with the note: %.300s", got)
	}
}
