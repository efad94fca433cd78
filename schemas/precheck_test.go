package schemas

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// libraryAccepts is the library's verdict on body under kind's schema,
// with the precheck out of the way.
func libraryAccepts(t testing.TB, v *Validator, kind Kind, doc any) bool {
	t.Helper()
	return v.kinds[kind].schema.Validate(doc) == nil
}

// TestBuiltinSchemasHavePrecheck: the built-in schemas use only keywords
// the precheck reads. Were one to gain another, every event would pay the
// library's full cost again, silently: this test says so instead.
func TestBuiltinSchemasHavePrecheck(t *testing.T) {
	t.Parallel()
	v := validator(t)
	for _, k := range Kinds {
		if v.kinds[k].precheck == nil {
			t.Errorf("%s.json: no precheck; it uses a keyword precheck.go does not read", k)
		}
	}
}

// TestPrecheckMatchesLibraryOnBuiltins: for the built-in schemas the
// precheck is exact. It accepts what the library accepts (or every valid
// event would pay the library's cost) and nothing else (or an invalid
// event would reach the API). Thousands of generated documents per kind,
// each near the schemas' edges: lengths at and past each limit, wrong
// types, missing and extra members, bad formats.
func TestPrecheckMatchesLibraryOnBuiltins(t *testing.T) {
	t.Parallel()
	v := validator(t)
	rng := rand.New(rand.NewPCG(14, 2026))
	for _, k := range Kinds {
		accepted, rejected := 0, 0
		for i := range 3000 {
			body := generate(rng, k)
			doc, perr := parse(body)
			if perr != nil {
				t.Fatalf("generated body is not JSON: %s", body)
			}
			if k == Activity {
				dropEmptyOptionals(doc)
			}
			lib := libraryAccepts(t, v, k, doc)
			_, isObject := doc.(map[string]any)
			if text := acceptsText(v, k, body); text != (lib && isObject) {
				t.Fatalf("%s #%d: precheck over the text %v, library %v on %s", k, i, text, lib, body)
			}
			if lib {
				accepted++
			} else {
				rejected++
			}
		}
		// Both verdicts well represented, or the comparison proves little.
		if accepted < 300 || rejected < 300 {
			t.Errorf("%s: %d accepted, %d rejected: the generator is off", k, accepted, rejected)
		}
	}
}

// acceptsText is the precheck over the text as Validate and
// ValidateActivity use it.
func acceptsText(v *Validator, kind Kind, body []byte) bool {
	if kind != Activity {
		return v.acceptsText(kind, body, nil, nil, nil)
	}
	_, ok := v.prechecked(body)
	return ok
}

// generate makes a document of kind that is valid or nearly so.
func generate(rng *rand.Rand, kind Kind) []byte {
	str := func(limit int) any {
		switch rng.IntN(40) {
		case 0:
			return ""
		case 1:
			return strings.Repeat("é", limit) // at the limit, counted in characters
		case 2:
			return strings.Repeat("a", limit+1)
		case 3:
			return json.Number("7")
		case 4:
			return nil
		case 5:
			return true
		default:
			return fmt.Sprintf("v%d", rng.IntN(1000))
		}
	}
	contact := func() any {
		if rng.IntN(2) == 0 {
			return "john.doe@example.com"
		}
		return []any{"john.doe@example.com", "+31 (20) 555-0100", "not a contact", "", "a@b", "joe@localhost", "x@例え.jp",
			nil, json.Number("31205550100"), strings.Repeat("a", 250) + "@example.com"}[rng.IntN(10)]
	}
	m := map[string]any{}
	maybe := func(name string, v any) {
		if rng.IntN(10) != 0 { // one in ten missing
			m[name] = v
		}
	}
	switch kind {
	case Activity:
		maybe("account", str(255))
		maybe("type", str(100))
		maybe("source", str(100))
		if rng.IntN(2) == 0 {
			m["reference"] = str(128)
		}
		if rng.IntN(2) == 0 {
			m["contact"] = contact()
		}
		if rng.IntN(2) == 0 {
			m["happened_at"] = []any{"2019-10-06 22:34:45", "06-10-2019", "2019-02-29", "", "yesterday", json.Number("1570400085")}[rng.IntN(6)]
		}
		switch rng.IntN(10) {
		case 0:
			m["additional_information_object"] = map[string]any{"n": json.Number("1"), "l": []any{"x"}}
		case 1:
			m["additional_information_array"] = map[string]any{"k": "v"}
		case 2:
			m["additional_information_array"] = map[string]any{"k": json.Number("1")}
		case 3:
			m["additional_information_object"] = "not an object"
		case 4:
			m["additional_information_object"] = map[string]any{}
			m["additional_information_array"] = map[string]any{}
		}
		if rng.IntN(15) == 0 {
			m["unknown"] = "x"
		}
	case Account:
		maybe("Account Name", str(255))
	case Contact:
		if rng.IntN(4) != 0 {
			m["Email"] = contact()
		}
		if rng.IntN(4) != 0 {
			m["Phone"] = contact()
		}
	}
	if kind != Activity {
		switch rng.IntN(10) {
		case 0:
			m["Region"] = "EMEA"
		case 1:
			m["Seats"] = json.Number("12.5")
		case 2:
			m["Tags"] = []any{"a"} // not a scalar
		case 3:
			m["Owner"] = map[string]any{}
		}
	}
	if rng.IntN(40) == 0 {
		b, _ := json.Marshal([]any{m})
		return b
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzPrecheckAgreesWithLibrary: whatever the body, the precheck never
// accepts a document the library rejects, for each built-in schema.
func FuzzPrecheckAgreesWithLibrary(f *testing.F) {
	f.Add(typicalActivity)
	f.Add([]byte(`{"account":"a","type":"t","source":"s","additional_information_object":{},"additional_information_array":{}}`))
	f.Add([]byte(`{"Account Name":"ACME","Seats":3,"Tags":["x"]}`))
	f.Add([]byte(`{"Email":"","Phone":"+1 555"}`))
	f.Add([]byte(`{"Email":null,"Phone":""}`))
	f.Add([]byte(`{"account":"a","type":"t","source":"s","reference":"r","reference":"","happened_at":"2019-01-01","contact":"","contact":"x"}`))
	f.Add([]byte(` {"account":"a\u00e9","type":"t","source":"s","additional_information_array":{"k":"v","k":1}} `))
	f.Add([]byte(`{"Account Name":"a"}x`))
	v := validator(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		_, perr := parse(body)
		valid := perr == nil && checkUTF8(body) == nil
		for _, k := range Kinds {
			// Over the text: never a body the full path would turn down,
			// and the same identity fields.
			if acceptsText(v, k, body) {
				if !valid {
					t.Fatalf("%s: precheck over the text accepts a body that is not JSON or not UTF-8: %q", k, body)
				}
				d, _ := parse(body)
				if k == Activity {
					dropEmptyOptionals(d)
				}
				if _, ok := d.(map[string]any); !ok || !libraryAccepts(t, v, k, d) {
					t.Fatalf("%s: precheck over the text accepts what the library rejects: %s", k, body)
				}
			}
		}
		if f, ok := v.prechecked(body); ok {
			doc, _ := parse(body)
			dropEmptyOptionals(doc)
			obj := doc.(map[string]any)
			wantRef, _ := obj["reference"].(string)
			wantAt, _ := obj["happened_at"].(string)
			if f.Reference != wantRef || (f.HappenedAt == "") != (wantAt == "") {
				t.Fatalf("fields %+v, document has reference %q, happened_at %q: %s", f, wantRef, wantAt, body)
			}
		}
	})
}

// TestPrecheckKeywords: schemas in CG_SCHEMAS_DIR may use any keyword. The
// precheck reads the ones it knows, agreeing with the library on each, and
// steps aside (nil) for a schema with any other, anywhere in it.
func TestPrecheckKeywords(t *testing.T) {
	t.Parallel()
	cases := []struct {
		schema string
		docs   []string // checked against the library when there is a precheck
		none   bool     // no precheck expected
	}{
		{schema: `{"type":"object","properties":{"a":{"type":"string","pattern":"^x+$"}}}`,
			docs: []string{`{"a":"xx"}`, `{"a":"xy"}`, `{"a":1}`, `{}`, `[]`}},
		{schema: `{"properties":{"a":{"const":"k"},"b":{"const":null},"c":{"const":true}}}`,
			docs: []string{`{"a":"k","b":null,"c":true}`, `{"a":"K"}`, `{"b":0}`, `{"c":"true"}`, `{"c":false}`}},
		{schema: `{"minProperties":1,"maxProperties":2,"additionalProperties":{"type":["number","integer"]}}`,
			docs: []string{`{}`, `{"a":1}`, `{"a":1.5,"b":2}`, `{"a":1,"b":2,"c":3}`, `{"a":"1"}`}},
		{schema: `{"allOf":[{"required":["a"]},{"not":{"type":"string"}}],"anyOf":[{"required":["b"]},{"maxProperties":1}]}`,
			docs: []string{`{"a":1}`, `{"a":1,"b":2}`, `{"a":1,"c":2}`, `"s"`, `{"b":1}`}},
		{schema: `{"properties":{"a":false,"b":true},"additionalProperties":false}`,
			docs: []string{`{}`, `{"b":[]}`, `{"a":1}`, `{"c":1}`}},
		{schema: `{"not":{"minLength":2}}`, // a "not" it cannot be sure of: the library decides
			docs: []string{`"a"`, `"ab"`, `3`}},
		{schema: `{"type":"integer"}`, none: true},
		{schema: `{"properties":{"a":{"$ref":"#/$defs/x"}},"$defs":{"x":{"type":"string"}}}`, none: true},
		{schema: `{"properties":{"a":{"items":{"type":"string"}}}}`, none: true},
		{schema: `{"properties":{"a":{"enum":["x","y"]}}}`, none: true},
		{schema: `{"properties":{"a":{"minimum":1}}}`, none: true},
		{schema: `{"oneOf":[{"type":"string"},{"type":"number"}]}`, none: true},
		{schema: `{"if":{"required":["a"]},"then":{"required":["b"]}}`, none: true},
		{schema: `{"unevaluatedProperties":false}`, none: true},
		{schema: `{"properties":{"a":{"const":{"x":1}}}}`, none: true},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "account.json"), []byte(c.schema), 0o644); err != nil {
				t.Fatal(err)
			}
			v, err := New(dir)
			if err != nil {
				t.Fatal(err)
			}
			p := v.kinds[Account].precheck
			if c.none {
				if p != nil {
					t.Fatalf("%s: got a precheck, want none", c.schema)
				}
				return
			}
			if p == nil {
				t.Fatalf("%s: no precheck", c.schema)
			}
			for _, d := range c.docs {
				doc, err := jsonschema.UnmarshalJSON(strings.NewReader(d))
				if err != nil {
					t.Fatal(err)
				}
				lib := libraryAccepts(t, v, Account, doc)
				if text := acceptsText(v, Account, []byte(d)); text && !lib {
					t.Errorf("%s on %s: precheck over the text accepts, library rejects", c.schema, d)
				}
				// Same verdict through Validate, whichever path decides.
				if got := v.Validate(Account, []byte(d)) == nil; got != lib && strings.HasPrefix(d, "{") {
					t.Errorf("%s on %s: Validate %v, library %v", c.schema, d, got, lib)
				}
			}
		})
	}
}

// TestPrecheckEmptyLastOccurrenceIsAbsent: an optional member of an
// activity whose last occurrence is "" is left out of the document, so a
// schema that requires it rejects the body even when an earlier
// occurrence had a value, and the precheck must not say yes.
func TestPrecheckEmptyLastOccurrenceIsAbsent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "activity.json"), []byte(`{"type":"object","required":["reference"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.ValidateActivity([]byte(`{"reference":"x","reference":""}`)); err == nil {
		t.Error("a reference whose last occurrence is empty was accepted as present")
	}
	if f, err := v.ValidateActivity([]byte(`{"reference":"","reference":"x"}`)); err != nil || f.Reference != "x" {
		t.Errorf("the last occurrence with a value: %+v, %v", f, err)
	}
}

// TestPrecheckIdentityUnderPermissiveSchemas: with an activity schema that
// accepts anything (true, or {}), the identity fields are still read and
// happened_at still held to its formats: a date that does not parse is an
// error, not a field quietly left empty.
func TestPrecheckIdentityUnderPermissiveSchemas(t *testing.T) {
	t.Parallel()
	for _, schema := range []string{`true`, `{}`} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "activity.json"), []byte(schema), 0o644); err != nil {
			t.Fatal(err)
		}
		v, err := New(dir)
		if err != nil {
			t.Fatal(err)
		}
		f, err := v.ValidateActivity([]byte(`{"reference":"r-1","happened_at":"2019-10-06"}`))
		if err != nil || f.Reference != "r-1" || f.HappenedAt != "2019-10-06 00:00:00" {
			t.Errorf("%s: %+v, %v; want the reference and the normalised date", schema, f, err)
		}
		if f, err := v.ValidateActivity([]byte(`{"happened_at":"2019-02-30"}`)); err == nil {
			t.Errorf("%s: an impossible happened_at accepted: %+v", schema, f)
		}
	}
}
