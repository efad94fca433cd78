package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var normalForm = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$`)

// FuzzValidateActivity checks, for any body: no panic; an invalid body is
// an *Error that explains itself on one line; a valid body's happened_at is
// in the normal form, and its rewrite is JSON that validates again and
// carries exactly the values set.
func FuzzValidateActivity(f *testing.F) {
	f.Add(typicalActivity)
	f.Add([]byte(`{"account":"a","type":"t","source":"s","contact":"","happened_at":"06-10-2019"}`))
	f.Add([]byte(`{"account":"a","type":"t","source":"s","additional_information_array":{"k":"v"},"reference":"\u00e9"}`))
	f.Add([]byte(`{"account":"a","type":"t","source":"s","additional_information_object":{"n":1.000000000000000001}}`))
	f.Add([]byte(`[{"account": x}]`))
	v := validator(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fields, err := v.ValidateActivity(body)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error is not *Error: %v", err)
			}
			if len(se.Fields) == 0 || strings.ContainsAny(se.Summary, "\n\r") {
				t.Fatalf("unexplained error: %q %q", se.Summary, se.Fields)
			}
			return
		}
		if fields.HappenedAt != "" && !normalForm.MatchString(fields.HappenedAt) {
			t.Fatalf("happened_at %q not in the normal form", fields.HappenedAt)
		}
		ref, at := fields.Reference, fields.HappenedAt
		if ref == "" {
			ref = "cgw-fuzz"
		}
		if at == "" {
			at = "2020-02-29 12:00:00"
		}
		out, err := RewriteActivity(body, ref, at)
		if err != nil {
			t.Fatalf("RewriteActivity of a valid body: %v", err)
		}
		if !json.Valid(out) {
			t.Fatalf("rewrite is not JSON: %s", out)
		}
		again, err := v.ValidateActivity(out)
		if err != nil {
			t.Fatalf("rewrite does not validate: %v\n%s", err, out)
		}
		if again.Reference != ref || again.HappenedAt != at {
			t.Fatalf("rewrite carries %+v, want %q %q", again, ref, at)
		}
	})
}

// FuzzNormalizeHappenedAt checks that the parser never panics, that
// whatever it accepts comes out in the normal form, which is itself
// accepted unchanged, and that the schema format agrees with it.
func FuzzNormalizeHappenedAt(f *testing.F) {
	for _, s := range []string{"2019-10-06", "06-10-2019", "2019-03-06 10:00:00 +0530",
		"2019-10-06T10:00:00.123+02:00", "2019-02-29", "9999-12-31T23:59:59-01:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeHappenedAt(s)
		if (validHappenedAt(s) == nil) != (err == nil) {
			t.Fatalf("format and normaliser disagree on %q", s)
		}
		if err != nil {
			return
		}
		if !normalForm.MatchString(got) {
			t.Fatalf("NormalizeHappenedAt(%q) = %q", s, got)
		}
		if again, err := NormalizeHappenedAt(got); err != nil || again != got {
			t.Fatalf("normal form %q not a fixed point: %q %v", got, again, err)
		}
	})
}

// FuzzParse holds the hand-written decoder to encoding/json: the same
// documents are JSON, and they decode to the same values.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"a":[1,-0.5e+3,"\u00e9\n",true,false,null,{}]}`, `"\xff"`, `01`, `1.`, `-`, `[1,]`,
		`{"a" 1}`, `"\u12"`, "\"\x01\"", ` {} `, `{} {}`, `1e5`, `[[[]]]`, `{"a":1,"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > MaxBodyBytes {
			return
		}
		got, perr := parse(body)
		if (perr == nil) != json.Valid(body) {
			t.Fatalf("parse and json.Valid disagree on %q: %v", body, perr)
		}
		if perr != nil {
			return
		}
		want, err := jsonschemaUnmarshal(body)
		if err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parse(%q) = %#v, want %#v", body, got, want)
		}
	})
}

// jsonschemaUnmarshal is how the library itself would decode a document.
func jsonschemaUnmarshal(body []byte) (any, error) {
	return jsonschema.UnmarshalJSON(bytes.NewReader(body))
}
