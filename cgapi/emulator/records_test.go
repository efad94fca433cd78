package emulator

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func recordBody(t *testing.T, configuration string, record map[string]any) string {
	t.Helper()
	return mustJSON(t, map[string]any{"configuration": configuration, "record": record})
}

func TestRecordValidation(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{Configurations: []string{"account", "contact", "9dd58237=account", "53505294-0b20"}})
	r := strings.Repeat
	for _, tc := range []struct {
		name string
		body string
		want []string
		msg  string
	}{
		{name: "account", body: recordBody(t, "account", map[string]any{"Account Name": "ACME", "Revenue": 12.5, "Active": true, "Notes": nil})},
		{name: "account 255 é", body: recordBody(t, "account", map[string]any{"Account Name": r("é", 255)})},
		{name: "account 256 é", body: recordBody(t, "account", map[string]any{"Account Name": r("é", 256)}), want: []string{"Account Name"}, msg: "The Account Name may not be greater than 255 characters."},
		{name: "account name missing", body: recordBody(t, "account", map[string]any{"Email": "joe@example.com"}), want: []string{"Account Name"}, msg: "The Account Name field is required."},
		{name: "account name empty", body: recordBody(t, "account", map[string]any{"Account Name": ""}), want: []string{"Account Name"}},
		{name: "account name number", body: recordBody(t, "account", map[string]any{"Account Name": 7}), want: []string{"Account Name"}, msg: "The Account Name must be a string."},
		{name: "explicit account type", body: recordBody(t, "9dd58237", map[string]any{"Account Name": "ACME"})},
		{name: "explicit account type needs name", body: recordBody(t, "9dd58237", map[string]any{"Email": "joe@example.com"}), want: []string{"Account Name"}},

		{name: "contact email", body: recordBody(t, "contact", map[string]any{"Email": "joe.doe@example.com", "First Name": "Joe"})},
		{name: "contact phone", body: recordBody(t, "contact", map[string]any{"Phone": "+31 (20) 123-4567"})},
		{name: "contact phone number", body: recordBody(t, "contact", map[string]any{"Phone": json.Number("31201234567")})},
		{name: "uuid contact configuration", body: recordBody(t, "53505294-0b20", map[string]any{"Email": "a@b.example"})},
		{name: "contact neither", body: recordBody(t, "contact", map[string]any{"First Name": "Joe"}), want: []string{"Email", "Phone"}, msg: "The Email field is required when Phone is not present."},
		{name: "contact both empty", body: recordBody(t, "contact", map[string]any{"Email": "", "Phone": ""}), want: []string{"Email", "Phone"}},
		{name: "contact bad email", body: recordBody(t, "contact", map[string]any{"Email": "joe@"}), want: []string{"Email"}, msg: "The Email must be a valid email address."},
		{name: "contact email with space", body: recordBody(t, "contact", map[string]any{"Email": "joe doe@example.com"}), want: []string{"Email"}},
		{name: "contact bad phone", body: recordBody(t, "contact", map[string]any{"Phone": "call me"}), want: []string{"Phone"}, msg: "The Phone format is invalid."},
		{name: "contact plus inside phone", body: recordBody(t, "contact", map[string]any{"Phone": "31+20"}), want: []string{"Phone"}},
		{name: "contact bad phone good email", body: recordBody(t, "contact", map[string]any{"Email": "joe@example.com", "Phone": "x"}), want: []string{"Phone"}},

		{name: "non-scalar value", body: recordBody(t, "contact", map[string]any{"Email": "joe@example.com", "Tags": []string{"a"}}), want: []string{"Tags"}},
		{name: "unknown configuration", body: recordBody(t, "nope", map[string]any{"Account Name": "ACME"}), want: []string{"configuration"}, msg: "The selected configuration is invalid."},
		{name: "configuration missing", body: `{"record":{"Account Name":"ACME"}}`, want: []string{"configuration"}, msg: "The configuration field is required."},
		{name: "configuration number", body: `{"configuration":1,"record":{"Account Name":"ACME"}}`, want: []string{"configuration"}, msg: "The configuration must be a string."},
		{name: "record missing", body: `{"configuration":"account"}`, want: []string{"record"}, msg: "The record field is required."},
		{name: "record empty", body: `{"configuration":"account","record":{}}`, want: []string{"record"}},
		{name: "record list", body: `{"configuration":"account","record":["ACME"]}`, want: []string{"record"}, msg: "The record must be an object."},
		{name: "empty object", body: `{}`, want: []string{"configuration", "record"}},
	} {
		status, body := f.putRecord(tc.body)
		if len(tc.want) == 0 {
			if status != http.StatusOK || len(body) != 0 {
				t.Errorf("%s: HTTP %d %q, want 200 with an empty body", tc.name, status, body)
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
	if status, body := f.putRecord(`{"configuration":`); status != http.StatusBadRequest {
		t.Errorf("invalid JSON: HTTP %d %s", status, body)
	}
}

func TestRecordUpsert(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	for _, rec := range []map[string]any{
		{"Account Name": "ACME", "Revenue": json.Number("12345678901234567890")},
		{"Account Name": "ACME", "Country": "NL"},
		{"Account Name": "Globex"},
	} {
		if status, body := f.putRecord(recordBody(t, "account", rec)); status != http.StatusOK {
			t.Fatalf("HTTP %d %s", status, body)
		}
	}
	recs := f.srv.Records("account")
	if len(recs) != 2 || f.srv.RecordCount("account") != 2 {
		t.Fatalf("Records = %v", recs)
	}
	acme := recs[0]
	if acme["Account Name"] != "ACME" || acme["Country"] != "NL" || acme["Revenue"] != json.Number("12345678901234567890") {
		t.Errorf("merged record = %v", acme)
	}
	if n := f.srv.RecordPuts("account", "ACME"); n != 2 {
		t.Errorf("RecordPuts = %d, want 2", n)
	}
	// Contacts are keyed by email, whatever its case.
	for _, email := range []string{"Joe@Example.com", "joe@example.com"} {
		if status, body := f.putRecord(recordBody(t, "contact", map[string]any{"Email": email})); status != http.StatusOK {
			t.Fatalf("HTTP %d %s", status, body)
		}
	}
	if n := f.srv.RecordPuts("contact", "JOE@example.com"); n != 2 || f.srv.RecordCount("contact") != 1 {
		t.Errorf("contact puts %d count %d, want 2 and 1", n, f.srv.RecordCount("contact"))
	}
}

// The vendor pages also show the query-string and form encodings.
func TestRecordFormEncodings(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	q := url.Values{"configuration": {"account"}, "record[Account Name]": {"Example Corp"}, "record[Email]": {"john.doe@example.com"}}
	if status, body := f.status(http.MethodPut, RecordsPath+"?"+q.Encode(), ""); status != http.StatusOK {
		t.Fatalf("query string: HTTP %d %s", status, body)
	}
	q = url.Values{"configuration": {"contact"}, "record[Phone]": {"+31 20 555 0000"}}
	resp, body := f.do(http.MethodPut, RecordsPath, q.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("form body: HTTP %d %s", resp.StatusCode, body)
	}
	q = url.Values{"configuration": {"account"}, "record[First Name]": {"John"}}
	if status, body := f.status(http.MethodPut, RecordsPath+"?"+q.Encode(), ""); status != http.StatusUnprocessableEntity ||
		!slices.Equal(keys(validationErrors(t, body)), []string{"Account Name"}) {
		t.Errorf("query string without Account Name: HTTP %d %s", status, body)
	}
	if got := f.srv.Records("account"); len(got) != 1 || got[0]["Account Name"] != "Example Corp" {
		t.Errorf("account records = %v", got)
	}
	if f.srv.RecordCount("contact") != 1 {
		t.Errorf("contact records = %v", f.srv.Records("contact"))
	}
}

// A contact created through records can be named by activities from then
// on: the case the worker's CG_CONTACT_WAIT exists for.
func TestRecordContactBecomesKnown(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	act := activity(t, map[string]any{"contact": "late@example.com"})
	if status, body := f.putActivity(act); status != http.StatusUnprocessableEntity ||
		!slices.Equal(keys(validationErrors(t, body)), []string{"contact"}) {
		t.Fatalf("before the contact: HTTP %d %s", status, body)
	}
	if status, body := f.putRecord(recordBody(t, "contact", map[string]any{"Email": "late@example.com"})); status != http.StatusOK {
		t.Fatalf("contact: HTTP %d %s", status, body)
	}
	if status, body := f.putActivity(act); status != http.StatusOK {
		t.Fatalf("after the contact: HTTP %d %s", status, body)
	}
	f.srv.AddContacts("added@example.com")
	if status, body := f.putActivity(activity(t, map[string]any{"contact": "added@example.com"})); status != http.StatusOK {
		t.Fatalf("after AddContacts: HTTP %d %s", status, body)
	}
}

func TestRecordAddConfigurations(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{Configurations: []string{}})
	body := recordBody(t, "crm-accounts", map[string]any{"Account Name": "ACME"})
	if status, _ := f.putRecord(body); status != http.StatusUnprocessableEntity {
		t.Fatalf("no configurations: HTTP %d", status)
	}
	f.srv.AddConfigurations("crm-accounts")
	if status, resp := f.putRecord(body); status != http.StatusOK {
		t.Fatalf("after AddConfigurations: HTTP %d %s", status, resp)
	}
}
