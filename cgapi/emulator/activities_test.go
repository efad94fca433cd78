package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// activity builds a valid activity body with fields overridden (a nil
// value removes the field).
func activity(t *testing.T, override map[string]any) string {
	t.Helper()
	a := map[string]any{
		"account": "ACME Industries",
		"type":    "Support Ticket",
		"source":  "Freshdesk",
	}
	for k, v := range override {
		if v == nil {
			delete(a, k)
		} else {
			a[k] = v
		}
	}
	return mustJSON(t, a)
}

func TestActivityValidation(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	r := strings.Repeat
	for _, tc := range []struct {
		name string
		set  map[string]any
		want []string // fields with errors; none means 200
		msg  string   // the message of the first field, when checked
	}{
		{name: "minimal"},
		{name: "vendor example", set: map[string]any{"contact": "", "additional_information_object": map[string]any{"subject": "s"}, "happened_at": "2019-03-06 10:00:00 +0530"}},

		{name: "account missing", set: map[string]any{"account": nil}, want: []string{"account"}, msg: "The account field is required."},
		{name: "account empty", set: map[string]any{"account": ""}, want: []string{"account"}, msg: "The account field is required."},
		{name: "account null", set: map[string]any{"account": json.RawMessage("null")}, want: []string{"account"}, msg: "The account field is required."},
		{name: "account number", set: map[string]any{"account": 123}, want: []string{"account"}, msg: "The account must be a string."},
		{name: "account 255 é", set: map[string]any{"account": r("é", 255)}},
		{name: "account 256 é", set: map[string]any{"account": r("é", 256)}, want: []string{"account"}, msg: "The account may not be greater than 255 characters."},
		{name: "account 255 日", set: map[string]any{"account": r("日", 255)}},
		{name: "account 256 日", set: map[string]any{"account": r("日", 256)}, want: []string{"account"}},
		{name: "type missing", set: map[string]any{"type": nil}, want: []string{"type"}, msg: "The type field is required."},
		{name: "type 100", set: map[string]any{"type": r("t", 100)}},
		{name: "type 101", set: map[string]any{"type": r("t", 101)}, want: []string{"type"}, msg: "The type may not be greater than 100 characters."},
		{name: "source 100", set: map[string]any{"source": r("ß", 100)}},
		{name: "source 101", set: map[string]any{"source": r("ß", 101)}, want: []string{"source"}, msg: "The source may not be greater than 100 characters."},
		{name: "source object", set: map[string]any{"source": map[string]any{}}, want: []string{"source"}, msg: "The source must be a string."},
		{name: "all required missing", set: map[string]any{"account": nil, "type": nil, "source": nil}, want: []string{"account", "source", "type"}},

		{name: "reference 128", set: map[string]any{"reference": r("r", 128)}},
		{name: "reference 129", set: map[string]any{"reference": r("r", 129)}, want: []string{"reference"}, msg: "The reference may not be greater than 128 characters."},
		{name: "reference 128 multibyte", set: map[string]any{"reference": r("日", 128)}},
		{name: "reference empty", set: map[string]any{"reference": ""}},
		{name: "reference number", set: map[string]any{"reference": 42}, want: []string{"reference"}, msg: "The reference must be a string."},

		{name: "contact known", set: map[string]any{"contact": "john.doe@example.com"}},
		{name: "contact known other case", set: map[string]any{"contact": "John.Doe@Example.com"}},
		{name: "contact known phone", set: map[string]any{"contact": "+31 20 123 4567"}},
		{name: "contact unknown", set: map[string]any{"contact": "nobody@example.com"}, want: []string{"contact"}, msg: "The selected contact is invalid."},
		{name: "contact too long", set: map[string]any{"contact": r("c", 256)}, want: []string{"contact"}, msg: "The contact may not be greater than 255 characters."},

		{name: "date Y-m-d", set: map[string]any{"happened_at": "2019-10-06"}},
		{name: "date d-m-Y", set: map[string]any{"happened_at": "06-10-2019"}},
		{name: "date time", set: map[string]any{"happened_at": "2019-10-06 22:34:45"}},
		{name: "date time +0530", set: map[string]any{"happened_at": "2019-03-06 10:00:00 +0530"}},
		{name: "date time +05:30", set: map[string]any{"happened_at": "2019-03-06 10:00:00 +05:30"}},
		{name: "date time -0800 no space", set: map[string]any{"happened_at": "2019-03-06 10:00:00-0800"}},
		{name: "RFC 3339 Z", set: map[string]any{"happened_at": "2019-03-06T10:00:00Z"}},
		{name: "RFC 3339 fraction offset", set: map[string]any{"happened_at": "2019-03-06T10:00:00.123+02:00"}},
		{name: "leap day 2020", set: map[string]any{"happened_at": "2020-02-29"}},
		{name: "leap day d-m-Y 2020", set: map[string]any{"happened_at": "29-02-2020"}},
		{name: "empty date", set: map[string]any{"happened_at": ""}},
		{name: "no leap day 2019", set: map[string]any{"happened_at": "2019-02-29"}, want: []string{"happened_at"}, msg: "The happened at is not a valid date."},
		{name: "Feb 30", set: map[string]any{"happened_at": "2019-02-30"}, want: []string{"happened_at"}},
		{name: "month 13", set: map[string]any{"happened_at": "2019-13-01"}, want: []string{"happened_at"}},
		{name: "d-m-Y Feb 30", set: map[string]any{"happened_at": "30-02-2019"}, want: []string{"happened_at"}},
		{name: "hour 25", set: map[string]any{"happened_at": "2019-10-06 25:00:00"}, want: []string{"happened_at"}},
		{name: "slashes", set: map[string]any{"happened_at": "2019/10/06"}, want: []string{"happened_at"}},
		{name: "words", set: map[string]any{"happened_at": "yesterday"}, want: []string{"happened_at"}},
		{name: "date number", set: map[string]any{"happened_at": 20191006}, want: []string{"happened_at"}, msg: "The happened at must be a string."},

		{name: "object", set: map[string]any{"additional_information_object": map[string]any{"n": 1, "nested": map[string]any{"a": true}}}},
		{name: "object not object", set: map[string]any{"additional_information_object": "text"}, want: []string{"additional_information_object"}, msg: "The additional information object must be an object."},
		{name: "array of strings", set: map[string]any{"additional_information_array": map[string]any{"subject": "s", "url": "u"}}},
		{name: "array with number", set: map[string]any{"additional_information_array": map[string]any{"n": 1}}, want: []string{"additional_information_array.n"}},
		{name: "array as list", set: map[string]any{"additional_information_array": []string{"a"}}, want: []string{"additional_information_array"}},
		{name: "both forms", set: map[string]any{"additional_information_object": map[string]any{}, "additional_information_array": map[string]any{}}, want: []string{"additional_information_array"}},

		{name: "unknown fields ignored", set: map[string]any{"happend_at": "whenever"}},
	} {
		status, body := f.putActivity(activity(t, tc.set))
		if len(tc.want) == 0 {
			if status != http.StatusOK {
				t.Errorf("%s: HTTP %d %s, want 200", tc.name, status, body)
			}
			continue
		}
		if status != http.StatusUnprocessableEntity {
			t.Errorf("%s: HTTP %d %s, want 422", tc.name, status, body)
			continue
		}
		errs := validationErrors(t, body)
		if got := keys(errs); !slices.Equal(got, tc.want) {
			t.Errorf("%s: errors on %v, want %v (%s)", tc.name, got, tc.want, body)
		}
		if tc.msg != "" && !slices.Equal(errs[tc.want[0]], []string{tc.msg}) {
			t.Errorf("%s: messages %q, want %q", tc.name, errs[tc.want[0]], tc.msg)
		}
	}
}

func TestActivityBodyLimits(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})

	for _, body := range []string{`{"account":`, `not json`} {
		if status, resp := f.putActivity(body); status != http.StatusBadRequest || messageOf(t, resp) == "" {
			t.Errorf("%q: HTTP %d %s, want 400 with a message", body, status, resp)
		}
	}
	for _, body := range []string{`[]`, `"text"`, `null`, `42`} {
		if status, resp := f.putActivity(body); status != http.StatusBadRequest {
			t.Errorf("%q: HTTP %d %s, want 400", body, status, resp)
		}
	}

	// Exactly 2 MiB is taken; one byte more is a 413.
	exact := padActivity(t, MaxBodyBytes)
	if status, resp := f.putActivity(exact); status != http.StatusOK {
		t.Errorf("2 MiB body: HTTP %d %s", status, resp)
	}
	if status, _ := f.putActivity(padActivity(t, MaxBodyBytes+1)); status != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB + 1 body: HTTP %d, want 413", status)
	}
	if n := f.srv.ActivityCount(); n != 1 {
		t.Errorf("ActivityCount = %d, want 1", n)
	}
	// The log keeps a bounded prefix of large bodies.
	for _, r := range f.srv.Requests() {
		if len(r.Body) > 8<<10 {
			t.Errorf("logged body of %d bytes", len(r.Body))
		}
	}
}

// padActivity returns a valid activity body of exactly size bytes.
func padActivity(t *testing.T, size int) string {
	t.Helper()
	base := activity(t, map[string]any{"additional_information_object": map[string]any{"pad": ""}})
	pad := strings.Repeat("x", size-len(base))
	body := strings.Replace(base, `"pad":""`, `"pad":"`+pad+`"`, 1)
	if len(body) != size {
		t.Fatalf("padded body has %d bytes, want %d", len(body), size)
	}
	return body
}

func TestActivityUpsertByReference(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	type result struct {
		Data struct {
			ID               int64   `json:"id"`
			Reference        *string `json:"reference"`
			ClassificationID int64   `json:"classification_id"`
			AccountID        int64   `json:"account_id"`
			ContactID        *int64  `json:"contact_id"`
		} `json:"data"`
	}
	put := func(body string) result {
		t.Helper()
		status, resp := f.putActivity(body)
		if status != http.StatusOK {
			t.Fatalf("HTTP %d %s", status, resp)
		}
		var r result
		mustUnmarshal(t, resp, &r)
		return r
	}

	first := put(activity(t, map[string]any{"reference": "ab12", "contact": "jane.roe@example.com"}))
	second := put(activity(t, map[string]any{"reference": "ab12", "type": "Call", "amount": json.Number("12345678901234567890.5")}))
	if first.Data.ID != second.Data.ID || first.Data.Reference == nil || *first.Data.Reference != "ab12" {
		t.Fatalf("update got id %d after %d (reference %v)", second.Data.ID, first.Data.ID, first.Data.Reference)
	}
	if first.Data.ContactID == nil || second.Data.ContactID != nil {
		t.Errorf("contact_id %v then %v, want a number then null", first.Data.ContactID, second.Data.ContactID)
	}
	if first.Data.AccountID != second.Data.AccountID || first.Data.ClassificationID == second.Data.ClassificationID {
		t.Errorf("same account and another type should give same account_id, new classification_id: %+v %+v", first.Data, second.Data)
	}
	a, ok := f.srv.ActivityByReference("ab12")
	if !ok || a.Puts != 2 || a.Type != "Call" || f.srv.ActivityCount() != 1 {
		t.Fatalf("stored %+v (found %v, count %d)", a, ok, f.srv.ActivityCount())
	}
	// The body is kept byte for byte: big numbers survive.
	if !bytes.Contains(a.Body, []byte(`12345678901234567890.5`)) {
		t.Errorf("stored body %s lost the number", a.Body)
	}

	// Without a reference every PUT creates a new activity.
	x := put(activity(t, nil))
	y := put(activity(t, nil))
	if x.Data.Reference != nil || x.Data.ID == y.Data.ID {
		t.Errorf("unreferenced activities: %+v %+v", x.Data, y.Data)
	}
	all := f.srv.Activities()
	if len(all) != 3 || all[0].Reference != "ab12" || all[1].ID >= all[2].ID {
		t.Errorf("Activities() = %+v", all)
	}
	if _, ok := f.srv.ActivityByReference(""); ok {
		t.Error("ActivityByReference(\"\") found an activity")
	}
}

func TestActivityHappenedAt(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	for in, want := range map[string]string{
		"2019-03-06 10:00:00 +0530": "2019-03-06 04:30:00",
		"2019-03-06 10:00:00":       "2019-03-06 10:00:00",
		"06-10-2019":                "2019-10-06 00:00:00",
		"2019-03-06T10:00:00-01:00": "2019-03-06 11:00:00",
	} {
		if status, body := f.putActivity(activity(t, map[string]any{"reference": in, "happened_at": in})); status != http.StatusOK {
			t.Fatalf("%s: HTTP %d %s", in, status, body)
		}
		a, _ := f.srv.ActivityByReference(in)
		if got := a.HappenedAt.Format(time.DateTime); got != want {
			t.Errorf("%s stored as %s, want %s", in, got, want)
		}
	}
	before := time.Now().Add(-time.Second)
	if status, _ := f.putActivity(activity(t, map[string]any{"reference": "now"})); status != http.StatusOK {
		t.Fatal(status)
	}
	if a, _ := f.srv.ActivityByReference("now"); a.HappenedAt.Before(before) {
		t.Errorf("absent happened_at stored as %v, want about now", a.HappenedAt)
	}
}

func TestActivityWithoutBodies(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{DiscardBodies: true})
	if status, _ := f.putActivity(activity(t, map[string]any{"reference": "r"})); status != http.StatusOK {
		t.Fatal(status)
	}
	if a, ok := f.srv.ActivityByReference("r"); !ok || a.Body != nil || a.Account != "ACME Industries" {
		t.Errorf("stored %+v", a)
	}
}

func TestActivityPathAndMethod(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	if status, body := f.status(http.MethodPut, "/activities", activity(t, nil)); status != http.StatusOK {
		t.Errorf("without trailing slash: HTTP %d %s", status, body)
	}
	resp, _ := f.do(http.MethodPost, ActivitiesPath, activity(t, nil))
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodPut {
		t.Errorf("POST: HTTP %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if status, _ := f.status(http.MethodPut, "/activity/", activity(t, nil)); status != http.StatusNotFound {
		t.Errorf("unknown path: HTTP %d", status)
	}
}
