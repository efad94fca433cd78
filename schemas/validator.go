package schemas

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Kind is an event kind: one schema each.
type Kind string

const (
	Activity Kind = "activity"
	Account  Kind = "account"
	Contact  Kind = "contact"
)

// Kinds lists every kind, in a stable order.
var Kinds = []Kind{Activity, Account, Contact}

// ParseKind checks a kind name given by a user.
func ParseKind(s string) (Kind, error) {
	switch Kind(s) {
	case Activity, Account, Contact:
		return Kind(s), nil
	}
	return "", fmt.Errorf("unknown kind %q: want activity, account or contact", s)
}

// FileName is the schema file of a kind, built in and in CG_SCHEMAS_DIR.
func (k Kind) FileName() string { return string(k) + ".json" }

// MaxBodyBytes is the largest body the API takes (2 MiB).
const MaxBodyBytes = 2 << 20

//go:embed activity.json account.json contact.json
var builtins embed.FS

// builtinBase is the URL the built-in schemas are compiled under (their $id).
const builtinBase = "https://github.com/cgworker/cgworker/schemas/"

// Validator holds the compiled schemas of every kind. Safe for concurrent use.
type Validator struct {
	kinds map[Kind]*compiled
}

// compiled is one kind's schema, and where it came from.
type compiled struct {
	schema    *jsonschema.Schema
	precheck  *precheck                     // nil: the schema uses keywords it does not read
	locations map[string]*jsonschema.Schema // every subschema by Location
	source    string                        // "built-in" or the file path
}

// New compiles the built-in schemas, replacing any of activity.json,
// account.json and contact.json found in dir (CG_SCHEMAS_DIR; "" for none).
// A broken file is an error naming the file.
func New(dir string) (*Validator, error) {
	if dir != "" {
		st, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("schemas directory: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("schemas directory %s: not a directory", dir)
		}
	}
	v := &Validator{kinds: make(map[Kind]*compiled, len(Kinds))}
	for _, k := range Kinds {
		c, err := compileKind(k, dir)
		if err != nil {
			return nil, err
		}
		v.kinds[k] = c
	}
	return v, nil
}

// Source says where kind's schema came from: "built-in" or a file path.
func (v *Validator) Source(kind Kind) string {
	if c := v.kinds[kind]; c != nil {
		return c.source
	}
	return ""
}

func compileKind(k Kind, dir string) (*compiled, error) {
	url := builtinBase + k.FileName()
	source := "built-in"
	data, err := builtins.ReadFile(k.FileName())
	if err != nil {
		return nil, fmt.Errorf("built-in schema %s: %w", k.FileName(), err)
	}
	if dir != "" {
		path := filepath.Join(dir, k.FileName())
		custom, err := os.ReadFile(path)
		switch {
		case err == nil:
			abs, err := filepath.Abs(path)
			if err != nil {
				return nil, fmt.Errorf("schema %s: %w", path, err)
			}
			// A file path, so that the schema's relative $refs resolve
			// beside it.
			data, url, source = custom, abs, path
		case errors.Is(err, fs.ErrNotExist):
		default:
			return nil, fmt.Errorf("schema %s: %w", path, err)
		}
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("schema %s: not JSON: %w", source, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	// In 2019-09 and later "format" is only an annotation unless asked.
	c.AssertFormat()
	for _, f := range customFormats {
		c.RegisterFormat(f)
	}
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("schema %s: %w", source, err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("schema %s: %s", source, describeCompileError(err))
	}
	locations := map[string]*jsonschema.Schema{}
	indexLocations(sch, locations)
	return &compiled{schema: sch, precheck: newPrecheck(sch), locations: locations, source: source}, nil
}

// describeCompileError is one line saying what is wrong with a schema: the
// library's own message for a schema that breaks its metaschema names only
// the metaschema, the reasons being in the nested error.
func describeCompileError(err error) string {
	msg := err.Error()
	var sve *jsonschema.SchemaValidationError
	if errors.As(err, &sve) {
		msg = "not a valid JSON Schema: " + sve.Err.Error()
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", "; ")), " ")
}

// indexLocations records every subschema reachable from s by its Location,
// so that an error's SchemaURL leads back to the keyword that failed.
func indexLocations(s *jsonschema.Schema, into map[string]*jsonschema.Schema) {
	if s == nil || into[s.Location] != nil {
		return
	}
	into[s.Location] = s
	for _, sub := range []*jsonschema.Schema{s.Ref, s.Not, s.If, s.Then, s.Else,
		s.PropertyNames, s.UnevaluatedProperties, s.Contains, s.Items2020, s.UnevaluatedItems} {
		indexLocations(sub, into)
	}
	for _, list := range [][]*jsonschema.Schema{s.AllOf, s.AnyOf, s.OneOf, s.PrefixItems} {
		for _, sub := range list {
			indexLocations(sub, into)
		}
	}
	for _, sub := range s.Properties {
		indexLocations(sub, into)
	}
	for _, sub := range s.PatternProperties {
		indexLocations(sub, into)
	}
	for _, sub := range s.DependentSchemas {
		indexLocations(sub, into)
	}
	if s.DynamicRef != nil {
		indexLocations(s.DynamicRef.Ref, into)
	}
	if sub, ok := s.AdditionalProperties.(*jsonschema.Schema); ok {
		indexLocations(sub, into)
	}
}

// Validate checks body against kind's schema. It returns nil or *Error.
func (v *Validator) Validate(kind Kind, body []byte) error {
	var absent []string
	if kind == Activity {
		absent = emptyMeansAbsent[:]
	}
	if v.acceptsText(kind, body, absent, nil, nil) {
		return nil
	}
	if _, err := v.validate(kind, body); err != nil {
		return err
	}
	return nil
}

// acceptsText reports whether kind's precheck accepts body as it stands,
// without decoding it (precheck_text.go), and body is what validate would
// pass: valid UTF-8, and an object. Anything else takes validate's path.
func (v *Validator) acceptsText(kind Kind, body []byte, absent, capture, got []string) bool {
	c := v.kinds[kind]
	if c == nil || c.precheck == nil || !utf8.Valid(body) {
		return false
	}
	return c.precheck.acceptsText(body, absent, capture, got)
}

// validate parses and validates body, returning the parsed document for
// callers that read fields from it.
func (v *Validator) validate(kind Kind, body []byte) (any, *Error) {
	c := v.kinds[kind]
	if c == nil {
		return nil, newError(Schema, map[string][]string{BodyKey: {fmt.Sprintf("There is no schema for kind %q.", kind)}})
	}
	doc, perr := parse(body)
	if perr != nil {
		return nil, perr
	}
	if uerr := checkUTF8(body); uerr != nil {
		return nil, uerr
	}
	if kind == Activity {
		dropEmptyOptionals(doc)
	}
	err := c.schema.Validate(doc)
	if err == nil {
		if _, ok := doc.(map[string]any); !ok {
			// Every kind is sent as an object, whatever a replaced
			// schema in CG_SCHEMAS_DIR allows.
			return doc, newError(Schema, map[string][]string{BodyKey: {"The body must be an object."}})
		}
		return doc, nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return doc, newError(Schema, map[string][]string{BodyKey: {"The body is invalid: " + err.Error() + "."}})
	}
	t := translator{fields: map[string][]string{}, locations: c.locations}
	t.walk(verr)
	if len(t.fields) == 0 { // never expected; an invalid document must say why
		t.add(BodyKey, "The body is invalid.")
	}
	return doc, newError(Schema, t.fields)
}
