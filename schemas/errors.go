package schemas

import (
	"fmt"
	"math/big"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// ErrorKind says why a document is invalid, as in CG-Error-Kind.
type ErrorKind string

const (
	Malformed ErrorKind = "malformed" // not JSON at all
	Schema    ErrorKind = "schema"    // JSON that breaks the schema (including a non-object)
)

// BodyKey is the Fields key of errors about the body as a whole: too large,
// not JSON, not an object.
const BodyKey = "body"

// maxSummary caps Error.Summary: an event with thousands of unknown fields
// must not produce a header of megabytes.
const maxSummary = 1024

// Error is an invalid document: Fields is the API's 422 "errors" shape,
// field name (dotted path for nested fields) -> messages in the API's
// wording ("The type field is required.").
type Error struct {
	Kind    ErrorKind
	Summary string // one line
	Fields  map[string][]string
}

func (e *Error) Error() string { return e.Summary }

// newError sorts and deduplicates every message list, so that the same
// document always yields the same error, and builds the summary.
func newError(k ErrorKind, fields map[string][]string) *Error {
	keys := make([]string, 0, len(fields))
	for key, msgs := range fields {
		slices.Sort(msgs)
		fields[key] = slices.Compact(msgs)
		keys = append(keys, key)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(string(k))
	b.WriteString(": ")
	first := true
	for _, key := range keys {
		for _, msg := range fields[key] {
			if !first {
				b.WriteString("; ")
			}
			first = false
			b.WriteString(key)
			b.WriteString(": ")
			b.WriteString(msg)
		}
		if b.Len() > maxSummary {
			break
		}
	}
	return &Error{Kind: k, Summary: OneLine(b.String(), maxSummary), Fields: fields}
}

// OneLine makes s a single line of at most max bytes, for a header, a
// summary or a table cell: control characters (newlines included) become
// spaces, invalid UTF-8 becomes U+FFFD, surrounding space is trimmed, and a
// cut, made on a rune boundary, ends in "…". A line it made comes back
// unchanged, so a summary cut here is not cut again further on.
func OneLine(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", " ")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	if max < len(ellipsis) {
		return "" // no room for even the mark
	}
	cut := max - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.TrimRight(s[:cut], " ") + ellipsis
}

// translator turns jsonschema's error tree into field -> messages in the
// wording of the API (Laravel's validation messages).
type translator struct {
	fields    map[string][]string
	locations map[string]*jsonschema.Schema // compiled schemas by Location, for "not"
}

func (t *translator) add(key, msg string) {
	t.fields[key] = append(t.fields[key], msg)
}

// fieldKey is the Fields key of an instance location: the dotted path, or
// BodyKey for the document itself.
func fieldKey(loc []string, more ...string) string {
	if len(loc)+len(more) == 0 {
		return BodyKey
	}
	return strings.Join(append(slices.Clip(loc), more...), ".")
}

// attr is a key as Laravel names it in a message: underscores as spaces.
func attr(key string) string { return strings.ReplaceAll(key, "_", " ") }

func (t *translator) walk(e *jsonschema.ValidationError) {
	loc := e.InstanceLocation
	key := fieldKey(loc)
	a := attr(key)
	switch k := e.ErrorKind.(type) {
	case *kind.Schema, *kind.Group, *kind.AllOf, *kind.Reference:
		for _, c := range e.Causes {
			t.walk(c)
		}
	case *kind.Required:
		for _, m := range k.Missing {
			f := fieldKey(loc, m)
			t.add(f, fmt.Sprintf("The %s field is required.", attr(f)))
		}
	case *kind.DependentRequired:
		t.requiredWith(loc, k.Prop, k.Missing)
	case *kind.Dependency:
		t.requiredWith(loc, k.Prop, k.Missing)
	case *kind.MinLength:
		if k.Want == 1 {
			t.add(key, fmt.Sprintf("The %s field is required.", a))
		} else {
			t.add(key, fmt.Sprintf("The %s must be at least %d characters.", a, k.Want))
		}
	case *kind.MaxLength:
		t.add(key, fmt.Sprintf("The %s may not be greater than %d characters.", a, k.Want))
	case *kind.Pattern:
		t.add(key, fmt.Sprintf("The %s format is invalid.", a))
	case *kind.Type:
		t.add(key, typeMessage(a, k.Want))
	case *kind.Format:
		if noun, ok := formatNouns[k.Want]; ok && noun == "date" {
			t.add(key, fmt.Sprintf("The %s is not a valid date.", a))
		} else {
			t.add(key, fmt.Sprintf("The %s must be a valid %s.", a, formatNoun(k.Want)))
		}
	case *kind.AdditionalProperties:
		// The raw name, underscores and all: the point is to show a typo.
		for _, p := range k.Properties {
			t.add(fieldKey(loc, p), fmt.Sprintf("The %s field is not allowed.", fieldKey(loc, p)))
		}
	case *kind.FalseSchema:
		t.add(key, fmt.Sprintf("The %s field is not allowed.", key))
	case *kind.AnyOf:
		t.alternatives(e)
	case *kind.OneOf:
		if k.Subschemas == nil {
			t.alternatives(e)
		} else {
			t.add(key, fmt.Sprintf("The %s matches more than one allowed form.", a))
		}
	case *kind.Not:
		t.not(e)
	case *kind.Const, *kind.Enum:
		t.add(key, fmt.Sprintf("The selected %s is invalid.", a))
	case *kind.Minimum:
		t.add(key, fmt.Sprintf("The %s must be at least %s.", a, ratString(k.Want)))
	case *kind.ExclusiveMinimum:
		t.add(key, fmt.Sprintf("The %s must be greater than %s.", a, ratString(k.Want)))
	case *kind.Maximum:
		t.add(key, fmt.Sprintf("The %s may not be greater than %s.", a, ratString(k.Want)))
	case *kind.ExclusiveMaximum:
		t.add(key, fmt.Sprintf("The %s must be less than %s.", a, ratString(k.Want)))
	case *kind.MultipleOf:
		t.add(key, fmt.Sprintf("The %s must be a multiple of %s.", a, ratString(k.Want)))
	case *kind.MinItems:
		t.add(key, fmt.Sprintf("The %s must have at least %d items.", a, k.Want))
	case *kind.MaxItems:
		t.add(key, fmt.Sprintf("The %s may not have more than %d items.", a, k.Want))
	case *kind.MinProperties:
		t.add(key, fmt.Sprintf("The %s must have at least %d fields.", a, k.Want))
	case *kind.MaxProperties:
		t.add(key, fmt.Sprintf("The %s may not have more than %d fields.", a, k.Want))
	default:
		p := message.NewPrinter(language.English)
		t.add(key, fmt.Sprintf("The %s is invalid: %s.", a, e.ErrorKind.LocalizedString(p)))
	}
}

func (t *translator) requiredWith(loc []string, prop string, missing []string) {
	for _, m := range missing {
		f := fieldKey(loc, m)
		t.add(f, fmt.Sprintf("The %s field is required when %s is present.", attr(f), attr(fieldKey(loc, prop))))
	}
}

// alternatives explains an anyOf/oneOf of which no branch matched, in the
// few shapes a schema uses them for:
//   - {"const": ""} beside the real rule (an empty optional string is
//     absent): that branch says nothing and is dropped;
//   - one branch per field that must be present ("Email" or "Phone"):
//     "The Email field is required when Phone is not present.";
//   - one format per branch ("email" or "cg-phone"): "The contact must be a
//     valid email address or phone number.";
//   - a single remaining branch is explained as if it stood alone.
func (t *translator) alternatives(e *jsonschema.ValidationError) {
	key := fieldKey(e.InstanceLocation)
	var rest []*jsonschema.ValidationError
	for _, b := range e.Causes {
		if !isEmptyConst(b) {
			rest = append(rest, b)
		}
	}
	if len(rest) == 1 {
		t.walk(rest[0])
		return
	}
	if fields, ok := requiredFields(rest, e.InstanceLocation); ok {
		others := make([]string, len(fields)-1)
		for i, f := range fields[1:] {
			others[i] = attr(f)
		}
		msg := fmt.Sprintf("The %s field is required when %s is not present.", attr(fields[0]), others[0])
		if len(others) > 1 {
			msg = fmt.Sprintf("The %s field is required when none of %s are present.", attr(fields[0]), strings.Join(others, " / "))
		}
		t.add(fields[0], msg)
		return
	}
	if nouns, ok := formatAlternatives(rest, e.InstanceLocation); ok {
		t.add(key, fmt.Sprintf("The %s must be a valid %s.", attr(key), joinOr(nouns)))
		return
	}
	t.add(key, fmt.Sprintf("The %s is invalid.", attr(key)))
}

// leaves flattens the grouping nodes of an error tree.
func leaves(e *jsonschema.ValidationError, out []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	switch e.ErrorKind.(type) {
	case *kind.Schema, *kind.Group, *kind.AllOf, *kind.Reference:
		for _, c := range e.Causes {
			out = leaves(c, out)
		}
		return out
	}
	return append(out, e)
}

func isEmptyConst(b *jsonschema.ValidationError) bool {
	ls := leaves(b, nil)
	for _, l := range ls {
		c, ok := l.ErrorKind.(*kind.Const)
		if !ok {
			return false
		}
		if s, ok := c.Want.(string); !ok || s != "" {
			return false
		}
	}
	return len(ls) > 0
}

// requiredFields reports whether each branch failed on exactly one child
// field of loc (missing, empty, null or otherwise wrong), and which.
func requiredFields(branches []*jsonschema.ValidationError, loc []string) ([]string, bool) {
	var fields []string
	for _, b := range branches {
		ls := leaves(b, nil)
		if len(ls) != 1 {
			return nil, false
		}
		l := ls[0]
		switch {
		case len(l.InstanceLocation) == len(loc)+1 && slices.Equal(l.InstanceLocation[:len(loc)], loc):
			fields = append(fields, fieldKey(l.InstanceLocation))
		default:
			r, ok := l.ErrorKind.(*kind.Required)
			if !ok || len(r.Missing) != 1 || !slices.Equal(l.InstanceLocation, loc) {
				return nil, false
			}
			fields = append(fields, fieldKey(loc, r.Missing[0]))
		}
	}
	return fields, len(fields) >= 2
}

// formatAlternatives reports whether each branch failed only on a format of
// the value itself, and the nouns of those formats.
func formatAlternatives(branches []*jsonschema.ValidationError, loc []string) ([]string, bool) {
	var nouns []string
	for _, b := range branches {
		ls := leaves(b, nil)
		if len(ls) != 1 || !slices.Equal(ls[0].InstanceLocation, loc) {
			return nil, false
		}
		f, ok := ls[0].ErrorKind.(*kind.Format)
		if !ok {
			return nil, false
		}
		if n := formatNoun(f.Want); !slices.Contains(nouns, n) {
			nouns = append(nouns, n)
		}
	}
	return nouns, len(nouns) > 0
}

// not explains a failed "not". The shape schemas use is
// {"not": {"required": [a, b]}}: a and b may not both be given.
func (t *translator) not(e *jsonschema.ValidationError) {
	loc := e.InstanceLocation
	key := fieldKey(loc)
	sch := t.locations[e.SchemaURL]
	if sch == nil || sch.Not == nil || len(sch.Not.Required) == 0 {
		t.add(key, fmt.Sprintf("The %s is invalid.", attr(key)))
		return
	}
	names := sch.Not.Required
	last := fieldKey(loc, names[len(names)-1])
	switch len(names) {
	case 1:
		t.add(last, fmt.Sprintf("The %s field is not allowed.", last))
	case 2:
		t.add(last, fmt.Sprintf("Only one of %s and %s may be given.", names[0], names[1]))
	default:
		t.add(last, fmt.Sprintf("The fields %s may not all be given.", joinAnd(names)))
	}
}

func formatNoun(name string) string {
	if n, ok := formatNouns[name]; ok {
		return n
	}
	return name
}

var typeNouns = map[string]string{
	"string":  "a string",
	"number":  "a number",
	"integer": "an integer",
	"boolean": "true or false",
	"object":  "an object",
	"array":   "an array",
	"null":    "null",
}

func typeMessage(a string, want []string) string {
	if len(want) == 1 && want[0] == "boolean" {
		return fmt.Sprintf("The %s field must be true or false.", a)
	}
	// A fixed order, most expected first, so messages read naturally.
	var nouns []string
	for _, t := range []string{"string", "number", "integer", "boolean", "object", "array", "null"} {
		if slices.Contains(want, t) {
			n := typeNouns[t]
			if t == "boolean" && len(want) > 1 {
				n = "a boolean"
			}
			nouns = append(nouns, n)
		}
	}
	if len(nouns) == 0 {
		return fmt.Sprintf("The %s has the wrong type.", a)
	}
	return fmt.Sprintf("The %s must be %s.", a, joinOr(nouns))
}

func joinOr(items []string) string  { return joinLast(items, " or ") }
func joinAnd(items []string) string { return joinLast(items, " and ") }

func joinLast(items []string, last string) string {
	if len(items) == 1 {
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + last + items[len(items)-1]
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return fmt.Sprint(f)
}
