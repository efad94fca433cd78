package schemas

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// builtin is compiled once for the whole package's tests: compiling is not
// what they test, and the Validator is safe for concurrent use.
var builtin = sync.OnceValues(func() (*Validator, error) { return New("") })

func validator(t testing.TB) *Validator {
	t.Helper()
	v, err := builtin()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return v
}

// activity builds a valid activity with extra members merged in (a nil
// value removes the member), so each case states only what it is about.
func activity(t testing.TB, extra map[string]any) []byte {
	t.Helper()
	m := map[string]any{"account": "ACME Industries", "type": "Support Tickets", "source": "Freshdesk"}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type fields = map[string][]string

// checkResult compares a Validate result with the expected fields: nil
// wantFields means valid.
func checkResult(t *testing.T, err error, wantKind ErrorKind, wantFields fields) {
	t.Helper()
	if wantFields == nil {
		if err != nil {
			t.Fatalf("want valid, got %v", err)
		}
		return
	}
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("want *Error, got %v", err)
	}
	if se.Kind != wantKind {
		t.Errorf("kind = %q, want %q", se.Kind, wantKind)
	}
	if !reflect.DeepEqual(se.Fields, wantFields) {
		t.Errorf("fields = %q\nwant     %q", se.Fields, wantFields)
	}
	if strings.ContainsAny(se.Summary, "\n\r") || !strings.HasPrefix(se.Summary, string(se.Kind)+": ") {
		t.Errorf("summary not one line with the kind first: %q", se.Summary)
	}
}

func TestActivitySchema(t *testing.T) {
	t.Parallel()
	v := validator(t)
	s := strings.Repeat
	invalidDate := fields{"happened_at": {"The happened at is not a valid date."}}
	badContact := fields{"contact": {"The contact must be a valid email address or phone number."}}
	tests := []struct {
		name string
		body []byte
		want fields // nil: valid
	}{
		{"minimal", activity(t, nil), nil},
		{"typical", typicalActivity, nil},
		{"reference 128", activity(t, map[string]any{"reference": s("r", 128)}), nil},
		{"reference 129", activity(t, map[string]any{"reference": s("r", 129)}),
			fields{"reference": {"The reference may not be greater than 128 characters."}}},
		{"reference 128 multibyte", activity(t, map[string]any{"reference": s("ü", 128)}), nil},
		{"account 255 multibyte", activity(t, map[string]any{"account": s("é", 255)}), nil},
		{"account 255 four-byte", activity(t, map[string]any{"account": s("𝄞", 255)}), nil},
		{"account 256 multibyte", activity(t, map[string]any{"account": s("é", 256)}),
			fields{"account": {"The account may not be greater than 255 characters."}}},
		{"type 100", activity(t, map[string]any{"type": s("t", 100)}), nil},
		{"type 101", activity(t, map[string]any{"type": s("t", 101)}),
			fields{"type": {"The type may not be greater than 100 characters."}}},
		{"source 100", activity(t, map[string]any{"source": s("ß", 100)}), nil},
		{"source 101", activity(t, map[string]any{"source": s("s", 101)}),
			fields{"source": {"The source may not be greater than 100 characters."}}},
		{"contact 255 phone", activity(t, map[string]any{"contact": s("1", 255)}), nil},
		{"contact 256 phone", activity(t, map[string]any{"contact": s("1", 256)}),
			fields{"contact": {"The contact may not be greater than 255 characters."}}},

		{"date YYYY-MM-DD", activity(t, map[string]any{"happened_at": "2019-10-06"}), nil},
		{"date DD-MM-YYYY", activity(t, map[string]any{"happened_at": "06-10-2019"}), nil},
		{"datetime", activity(t, map[string]any{"happened_at": "2019-10-06 10:00:00"}), nil},
		{"datetime space +0530", activity(t, map[string]any{"happened_at": "2019-03-06 10:00:00 +0530"}), nil},
		{"datetime +05:30", activity(t, map[string]any{"happened_at": "2019-03-06 10:00:00+05:30"}), nil},
		{"datetime -0800", activity(t, map[string]any{"happened_at": "2019-03-06 10:00:00-0800"}), nil},
		{"rfc3339", activity(t, map[string]any{"happened_at": "2019-10-06T10:00:00Z"}), nil},
		{"rfc3339 fraction", activity(t, map[string]any{"happened_at": "2019-10-06T10:00:00.123456+02:00"}), nil},
		{"leap day 2020", activity(t, map[string]any{"happened_at": "2020-02-29"}), nil},
		{"leap day 2000", activity(t, map[string]any{"happened_at": "29-02-2000"}), nil},
		{"no leap day 2019", activity(t, map[string]any{"happened_at": "2019-02-29"}), invalidDate},
		{"no leap day 1900", activity(t, map[string]any{"happened_at": "1900-02-29"}), invalidDate},
		{"february 30", activity(t, map[string]any{"happened_at": "2019-02-30"}), invalidDate},
		{"april 31", activity(t, map[string]any{"happened_at": "31-04-2019"}), invalidDate},
		{"slashes", activity(t, map[string]any{"happened_at": "2019/10/06"}), invalidDate},
		{"month 13", activity(t, map[string]any{"happened_at": "06-13-2019"}), invalidDate},
		{"digits only", activity(t, map[string]any{"happened_at": "20191006"}), invalidDate},
		{"single-digit day", activity(t, map[string]any{"happened_at": "2019-10-6"}), invalidDate},
		{"no seconds", activity(t, map[string]any{"happened_at": "2019-10-06 10:00"}), invalidDate},
		{"hour 24", activity(t, map[string]any{"happened_at": "2019-10-06 24:00:00"}), invalidDate},
		{"leap second", activity(t, map[string]any{"happened_at": "2019-10-06 23:59:60"}), invalidDate},
		{"rfc3339 without offset", activity(t, map[string]any{"happened_at": "2019-10-06T10:00:00"}), invalidDate},
		{"rfc3339 offset without colon", activity(t, map[string]any{"happened_at": "2019-10-06T10:00:00+0200"}), invalidDate},
		{"trailing space", activity(t, map[string]any{"happened_at": "2019-10-06 10:00:00 "}), invalidDate},
		{"words", activity(t, map[string]any{"happened_at": "yesterday"}), invalidDate},
		{"date as number", []byte(`{"account":"a","type":"t","source":"s","happened_at":20191006}`),
			fields{"happened_at": {"The happened at must be a string."}}},

		{"contact email", activity(t, map[string]any{"contact": "john.doe@example.com"}), nil},
		{"contact phone", activity(t, map[string]any{"contact": "+31 (20) 123-4567"}), nil},
		{"contact not either", activity(t, map[string]any{"contact": "john doe"}), badContact},
		{"contact no domain dot", activity(t, map[string]any{"contact": "joe@localhost"}), badContact},
		{"contact empty local part", activity(t, map[string]any{"contact": "@example.com"}), badContact},
		{"contact plus only", activity(t, map[string]any{"contact": "+"}), badContact},
		{"contact inner plus", activity(t, map[string]any{"contact": "12+34"}), badContact},
		{"contact number", []byte(`{"account":"a","type":"t","source":"s","contact":31201234567}`),
			fields{"contact": {"The contact must be a string."}}},

		{"empty optionals are absent", activity(t, map[string]any{"contact": "", "reference": "", "happened_at": ""}), nil},
		{"empty account", activity(t, map[string]any{"account": ""}), fields{"account": {"The account field is required."}}},
		{"empty type and source", activity(t, map[string]any{"type": "", "source": ""}),
			fields{"type": {"The type field is required."}, "source": {"The source field is required."}}},
		{"nothing", []byte(`{}`), fields{
			"account": {"The account field is required."},
			"type":    {"The type field is required."},
			"source":  {"The source field is required."}}},
		{"account number", []byte(`{"account":12,"type":"t","source":"s"}`), fields{"account": {"The account must be a string."}}},
		{"account null", []byte(`{"account":null,"type":"t","source":"s"}`), fields{"account": {"The account must be a string."}}},
		{"account array", []byte(`{"account":["a"],"type":"t","source":"s"}`), fields{"account": {"The account must be a string."}}},
		{"reference number", []byte(`{"account":"a","type":"t","source":"s","reference":12}`),
			fields{"reference": {"The reference must be a string."}}},
		{"misspelt field", activity(t, map[string]any{"happend_at": "2019-10-06"}),
			fields{"happend_at": {"The happend_at field is not allowed."}}},

		{"information object", activity(t, map[string]any{"additional_information_object": map[string]any{"a": []any{1, "x"}, "b": map[string]any{}}}), nil},
		{"information array", activity(t, map[string]any{"additional_information_array": map[string]any{"agent": "Jane"}}), nil},
		{"information both", activity(t, map[string]any{"additional_information_object": map[string]any{}, "additional_information_array": map[string]any{}}),
			fields{"additional_information_array": {"Only one of additional_information_object and additional_information_array may be given."}}},
		{"information array non-string", activity(t, map[string]any{"additional_information_array": map[string]any{"agent": "Jane", "count": 3}}),
			fields{"additional_information_array.count": {"The additional information array.count must be a string."}}},
		{"information array as list", activity(t, map[string]any{"additional_information_array": []any{"a"}}),
			fields{"additional_information_array": {"The additional information array must be an object."}}},
		{"information object as string", activity(t, map[string]any{"additional_information_object": "a"}),
			fields{"additional_information_object": {"The additional information object must be an object."}}},
		{"several errors", []byte(`{"account":"","type":5,"happend_at":"x"}`), fields{
			"account":    {"The account field is required."},
			"type":       {"The type must be a string."},
			"source":     {"The source field is required."},
			"happend_at": {"The happend_at field is not allowed."}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkResult(t, v.Validate(Activity, tt.body), Schema, tt.want)
		})
	}
}

func TestBodyErrors(t *testing.T) {
	t.Parallel()
	v := validator(t)
	notObject := fields{"body": {"The body must be an object."}}
	overSize := fields{"body": {"The body may not be greater than 2097152 bytes."}}
	// Padding with whitespace keeps the document valid while reaching the
	// limit exactly.
	valid := activity(t, nil)
	atLimit := append(append([]byte{}, valid...), strings.Repeat(" ", MaxBodyBytes-len(valid))...)
	tests := []struct {
		name     string
		body     []byte
		wantKind ErrorKind
		want     fields
	}{
		{"not JSON", []byte(`{"account": x}`), Malformed,
			fields{"body": {"The body is not valid JSON: invalid character 'x' looking for beginning of value at offset 12."}}},
		{"trailing data", []byte(`{} x`), Malformed,
			fields{"body": {"The body is not valid JSON: invalid character 'x' after top-level value at offset 3."}}},
		{"truncated", []byte(`{"account":`), Malformed,
			fields{"body": {"The body is not valid JSON: unexpected end of JSON input at offset 11."}}},
		{"empty", nil, Malformed, fields{"body": {"The body is not valid JSON: unexpected end of JSON input at offset 0."}}},
		{"invalid UTF-8 in a string", []byte("{\"account\":\"AC\xffME\"}"), Malformed,
			fields{"body": {"The body is not valid UTF-8: invalid byte at offset 14."}}},
		{"a cut UTF-8 sequence", []byte("{\"account\":\"\xc3\"}"), Malformed,
			fields{"body": {"The body is not valid UTF-8: invalid byte at offset 12."}}},
		// Valid for the schema apart from its bytes: the precheck's walk
		// would read it as U+FFFD and accept it.
		{"invalid UTF-8 in an otherwise valid activity", []byte("{\"account\":\"AC\xffME\",\"type\":\"t\",\"source\":\"s\"}"), Malformed,
			fields{"body": {"The body is not valid UTF-8: invalid byte at offset 14."}}},
		{"nested deeper than encoding/json allows", []byte(`{"account":"A","type":"t","source":"s","additional_information_object":{"x":` +
			strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}}`), Malformed,
			fields{"body": {"The body is not valid JSON: invalid character '[' exceeded max depth at offset 10074."}}},
		{"null", []byte(`null`), Schema, notObject},
		{"array", []byte(`[{"account":"a"}]`), Schema, notObject},
		{"number", []byte(` 12 `), Schema, notObject},
		{"string", []byte(`"x"`), Schema, notObject},
		{"at the size limit", atLimit, Schema, nil},
		{"over the size limit", append(atLimit, ' '), Schema, overSize},
		{"over the limit and not JSON", []byte(strings.Repeat("x", MaxBodyBytes+1)), Schema, overSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, k := range Kinds {
				if tt.want == nil && k != Activity {
					continue
				}
				checkResult(t, v.Validate(k, tt.body), tt.wantKind, tt.want)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	v := validator(t)
	err := v.Validate(Activity, []byte(`{"account":"a","type":"","source":"s","happened_at":"2019-02-30"}`))
	want := "schema: happened_at: The happened at is not a valid date.; type: The type field is required."
	if err == nil || err.Error() != want {
		t.Fatalf("summary = %v\nwant      %s", err, want)
	}

	// Unknown names are the producer's: the summary stays one bounded line.
	body := []byte(`{"account":"a","type":"t","source":"s","bad\nname":1,"` + strings.Repeat("y", 5000) + `":2}`)
	var se *Error
	if !errors.As(v.Validate(Activity, body), &se) {
		t.Fatal("want *Error")
	}
	if strings.ContainsAny(se.Summary, "\n\r") || len(se.Summary) > maxSummary+20 {
		t.Errorf("summary not one short line: %d bytes %q", len(se.Summary), se.Summary[:40])
	}
	if _, ok := se.Fields["bad\nname"]; !ok {
		t.Errorf("fields keep the real name: %q", slicesOf(maps.Keys(se.Fields)))
	}
}

func slicesOf(seq func(func(string) bool)) []string {
	var out []string
	for k := range seq {
		out = append(out, k)
	}
	return out
}

func TestRecordSchemas(t *testing.T) {
	t.Parallel()
	v := validator(t)
	emailOrPhone := fields{"Email": {"The Email field is required when Phone is not present."}}
	tests := []struct {
		name string
		kind Kind
		body string
		want fields
	}{
		{"account", Account, `{"Account Name":"ACME","Employees":12,"Revenue":1.5e6,"Active":true,"Notes":null}`, nil},
		{"account 255 multibyte", Account, `{"Account Name":"` + strings.Repeat("ñ", 255) + `"}`, nil},
		{"account 256", Account, `{"Account Name":"` + strings.Repeat("a", 256) + `"}`,
			fields{"Account Name": {"The Account Name may not be greater than 255 characters."}}},
		{"account missing name", Account, `{"Name":"ACME"}`, fields{"Account Name": {"The Account Name field is required."}}},
		{"account empty name", Account, `{"Account Name":""}`, fields{"Account Name": {"The Account Name field is required."}}},
		{"account name number", Account, `{"Account Name":12}`, fields{"Account Name": {"The Account Name must be a string."}}},
		{"account nested value", Account, `{"Account Name":"ACME","Address":{"City":"Amsterdam"}}`,
			fields{"Address": {"The Address must be a string, a number, a boolean or null."}}},
		{"account list value", Account, `{"Account Name":"ACME","Tags":["a"]}`,
			fields{"Tags": {"The Tags must be a string, a number, a boolean or null."}}},
		{"account not object", Account, `["ACME"]`, fields{"body": {"The body must be an object."}}},

		{"contact email", Contact, `{"Email":"joe@example.com","Name":"Joe"}`, nil},
		{"contact phone", Contact, `{"Phone":"+31 20 123 4567"}`, nil},
		{"contact email empty phone given", Contact, `{"Email":"","Phone":"020-1234567"}`, nil},
		{"contact phone null email given", Contact, `{"Email":"joe@example.com","Phone":null}`, nil},
		{"contact neither", Contact, `{"Name":"Joe"}`, emailOrPhone},
		{"contact both empty", Contact, `{"Email":"","Phone":""}`, emailOrPhone},
		{"contact both null", Contact, `{"Email":null,"Phone":null}`, emailOrPhone},
		{"contact invalid email", Contact, `{"Email":"joe(at)example.com"}`,
			fields{"Email": {"The Email must be a valid email address."}}},
		{"contact invalid email valid phone", Contact, `{"Email":"joe","Phone":"+31 20 123 4567"}`,
			fields{"Email": {"The Email must be a valid email address."}}},
		{"contact invalid phone valid email", Contact, `{"Email":"joe@example.com","Phone":"call me"}`,
			fields{"Phone": {"The Phone must be a valid phone number."}}},
		{"contact phone without digits", Contact, `{"Phone":"()-"}`,
			fields{"Phone": {"The Phone must be a valid phone number."}}},
		{"contact nested value", Contact, `{"Email":"joe@example.com","Address":{}}`,
			fields{"Address": {"The Address must be a string, a number, a boolean or null."}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkResult(t, v.Validate(tt.kind, []byte(tt.body)), Schema, tt.want)
		})
	}
}

func TestSchemasDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	custom := `{
	  "$schema": "https://json-schema.org/draft/2020-12/schema",
	  "type": "object",
	  "required": ["E-mail"],
	  "properties": {"E-mail": {"type": "string", "format": "cg-email"}},
	  "additionalProperties": {"type": ["string", "number", "boolean", "null"]}
	}`
	if err := os.WriteFile(filepath.Join(dir, "contact.json"), []byte(custom), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := New(dir)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	checkResult(t, v.Validate(Contact, []byte(`{"E-mail":"joe@example.com"}`)), Schema, nil)
	checkResult(t, v.Validate(Contact, []byte(`{"Email":"joe@example.com"}`)), Schema,
		fields{"E-mail": {"The E-mail field is required."}})
	checkResult(t, v.Validate(Contact, []byte(`{"E-mail":"joe"}`)), Schema,
		fields{"E-mail": {"The E-mail must be a valid email address."}})
	// The kinds without a file keep their built-in schema.
	checkResult(t, v.Validate(Account, []byte(`{"Account Name":"ACME"}`)), Schema, nil)
	checkResult(t, v.Validate(Activity, typicalActivity), Schema, nil)
	if got := v.Source(Contact); got != filepath.Join(dir, "contact.json") {
		t.Errorf("Source(contact) = %q", got)
	}
	if got := v.Source(Account); got != "built-in" {
		t.Errorf("Source(account) = %q", got)
	}
}

// A replaced activity.json that allows anything still cannot let through
// what the worker cannot send or read: a body that is not an object, or
// identity fields that are not strings.
func TestSchemasDirPermissiveActivity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "activity.json"), []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := New(dir)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	notObject := fields{BodyKey: {"The body must be an object."}}
	for _, body := range []string{`[1]`, `"x"`, `5`, `null`} {
		_, err := v.ValidateActivity([]byte(body))
		checkResult(t, err, Schema, notObject)
		checkResult(t, v.Validate(Activity, []byte(body)), Schema, notObject)
	}
	if _, err := v.ValidateActivity([]byte(`[`)); err == nil || err.(*Error).Kind != Malformed {
		t.Errorf("malformed body: %v", err)
	}
	f, err := v.ValidateActivity([]byte(`{"anything":1,"reference":"r1"}`))
	checkResult(t, err, Schema, nil)
	if f.Reference != "r1" {
		t.Errorf("reference = %q", f.Reference)
	}
	_, err = v.ValidateActivity([]byte(`{"reference":5,"happened_at":"2019-02-30"}`))
	checkResult(t, err, Schema, fields{
		"reference":   {"The reference must be a string."},
		"happened_at": {"The happened at is not a valid date."},
	})
}

func TestSchemasDirErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		file   string // written as account.json; "" for none
		noDir  bool
		wantIn string // the error must name this path
	}{
		{name: "missing dir", noDir: true, wantIn: "missing"},
		{name: "not JSON", file: `{"type": `, wantIn: "account.json"},
		{name: "not a schema", file: `{"type": 5}`, wantIn: "account.json"},
		{name: "bad ref", file: `{"$ref": "other.json"}`, wantIn: "account.json"},
		{name: "bad regexp", file: `{"pattern": "("}`, wantIn: "account.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if tt.noDir {
				dir = filepath.Join(dir, "missing")
			}
			if tt.file != "" {
				if err := os.WriteFile(filepath.Join(dir, "account.json"), []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := New(dir)
			if err == nil {
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, tt.wantIn)) && !strings.Contains(err.Error(), dir) {
				t.Errorf("error does not name the file: %v", err)
			}
			if tt.file != "" && !strings.Contains(err.Error(), filepath.Join(dir, tt.wantIn)) {
				t.Errorf("error does not name %s: %v", tt.wantIn, err)
			}
		})
	}
}

func TestParseKind(t *testing.T) {
	t.Parallel()
	for _, k := range Kinds {
		if got, err := ParseKind(string(k)); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
	if _, err := ParseKind("Activity"); err == nil {
		t.Error("ParseKind is case-sensitive")
	}
}

// TestConcurrentValidate runs validations in parallel; with -race it shows
// that a Validator is shared safely.
func TestConcurrentValidate(t *testing.T) {
	t.Parallel()
	v := validator(t)
	bad := []byte(`{"account":"","type":"t","source":"s"}`)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := v.ValidateActivity(typicalActivity); err != nil {
					t.Error(err)
					return
				}
				if v.Validate(Activity, bad) == nil {
					t.Error("invalid body passed")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		max  int
		want string
	}{
		{" a\nb\r\nc\td\x00\x7f ", 100, "a b c d"},
		{"bad \xff utf-8", 100, "bad \uFFFD utf-8"},
		{"abcdef", 6, "abcdef"},
		{"abcdefg", 6, "abc…"},
		{"ab   defg", 6, "ab…"},
		{"éééé", 6, "é…"},
		{"abcd", 2, ""},
	} {
		got := OneLine(tt.in, tt.max)
		if got != tt.want {
			t.Errorf("OneLine(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
		if again := OneLine(got, tt.max); again != got {
			t.Errorf("OneLine is not idempotent: %q -> %q", got, again)
		}
	}
	// A long summary is cut once, with one mark, however often it passes.
	var many fields = map[string][]string{}
	for i := range 500 {
		many[strings.Repeat("f", 10)+strconv.Itoa(i)] = []string{"The field\nis not allowed."}
	}
	s := newError(Schema, many).Summary
	if len(s) > maxSummary || strings.Count(s, "…") != 1 || OneLine(s, maxSummary) != s {
		t.Errorf("summary cut badly: %d bytes, ends %q", len(s), s[len(s)-20:])
	}
}
