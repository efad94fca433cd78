package schemas

import (
	"reflect"
	"slices"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// A precheck answers one question about a document, cheaply: does the
// compiled schema certainly accept it? It is built from the library's
// compiled *jsonschema.Schema, so the schema files (built in or from
// CG_SCHEMAS_DIR) stay the only statement of the rules, and it reads only
// the keywords the three built-in schemas use: type, const, format,
// required, properties, additionalProperties, min/maxProperties,
// min/maxLength, pattern, allOf, anyOf and not. A schema with any other
// keyword anywhere gets no precheck, and every document of its kind goes to
// the library as before.
//
// Why: jsonschema/v6 allocates per value it visits (a validator per
// subschema, a copy of every string), about 40 allocations for a typical
// activity, which is most of validation's cost per event (DESIGN.md,
// "Per-event cost"). The precheck allocates nothing.
//
// It is applied to the body's text, not to a decoded document
// (precheck_text.go). It never decides that a document is invalid: "no"
// only means "ask the library", which then gives the verdict and the error
// messages. So a document the precheck turns down costs what it did
// before, and a precheck that wrongly said "yes" is the only way it could
// change an outcome; FuzzPrecheckAgreesWithLibrary holds it to the
// library's verdict.
type precheck struct {
	boolean    *bool   // a true/false schema
	types      typeSet // 0: any type
	constant   *any    // string, bool or nil only
	format     func(any) error
	required   []string
	properties map[string]*precheck
	additional *precheck // nil: any additional member; see noAdditional
	// noAdditional is additionalProperties: false.
	noAdditional         bool
	minProps, maxProps   int // -1: no bound
	minLength, maxLength int // -1: no bound
	pattern              jsonschema.Regexp
	not                  *precheck
	allOf, anyOf         []*precheck
	// notRequired: not is {"required": [...]} and nothing else (the
	// activity's "not both information members"), which the walk over
	// the text answers from the members it sees, without a second walk.
	notRequired bool
}

// typeSet is a set of JSON types.
type typeSet uint8

const (
	typeNull typeSet = 1 << iota
	typeBoolean
	typeNumber
	typeString
	typeArray
	typeObject
)

// handled are the *jsonschema.Schema fields a precheck reads, or may
// ignore: identity and annotations. Any other field set makes the schema
// unsupported, including fields a later library version adds.
var handled = map[string]bool{
	"DraftVersion": true, "Location": true, "ID": true, "Anchor": true, "DynamicAnchor": true,
	"Bool": true, "Types": true, "Const": true, "Format": true,
	"Required": true, "Properties": true, "AdditionalProperties": true,
	"MinProperties": true, "MaxProperties": true,
	"MinLength": true, "MaxLength": true, "Pattern": true,
	"Not": true, "AllOf": true, "AnyOf": true,
	"Title": true, "Description": true, "Default": true, "Comment": true,
	"ReadOnly": true, "WriteOnly": true, "Examples": true, "Deprecated": true,
}

// newPrecheck builds the precheck of s, or returns nil when s uses a
// keyword it does not read.
func newPrecheck(s *jsonschema.Schema) *precheck {
	return buildPrecheck(s, map[*jsonschema.Schema]*precheck{})
}

func buildPrecheck(s *jsonschema.Schema, built map[*jsonschema.Schema]*precheck) *precheck {
	if s == nil {
		return nil
	}
	if p, ok := built[s]; ok {
		return p // nil while being built: a cycle, which needs $ref anyway
	}
	built[s] = nil
	sv := reflect.ValueOf(s).Elem()
	for i := range sv.NumField() {
		f := sv.Type().Field(i)
		if f.IsExported() && !handled[f.Name] && !sv.Field(i).IsZero() {
			return nil
		}
	}
	p := &precheck{boolean: s.Bool, required: s.Required, pattern: s.Pattern,
		minProps: -1, maxProps: -1, minLength: -1, maxLength: -1}
	if s.Types != nil {
		types := s.Types.ToStrings()
		for _, t := range types {
			switch t {
			case "null":
				p.types |= typeNull
			case "boolean":
				p.types |= typeBoolean
			case "number":
				p.types |= typeNumber
			case "string":
				p.types |= typeString
			case "array":
				p.types |= typeArray
			case "object":
				p.types |= typeObject
			case "integer":
				if !slices.Contains(types, "number") {
					return nil // whether 1.0 is an integer: the library's call
				}
			default:
				return nil
			}
		}
	}
	if s.Const != nil {
		switch (*s.Const).(type) {
		case string, bool, nil:
			p.constant = s.Const
		default:
			return nil
		}
	}
	if s.Format != nil {
		if s.Format.Name == "regex" || s.Format.Validate == nil {
			return nil
		}
		p.format = s.Format.Validate
	}
	for _, b := range []struct {
		from *int
		to   *int
	}{{s.MinProperties, &p.minProps}, {s.MaxProperties, &p.maxProps}, {s.MinLength, &p.minLength}, {s.MaxLength, &p.maxLength}} {
		if b.from != nil {
			*b.to = *b.from
		}
	}
	if len(s.Properties) > 0 {
		p.properties = make(map[string]*precheck, len(s.Properties))
		for name, sub := range s.Properties {
			if p.properties[name] = buildPrecheck(sub, built); p.properties[name] == nil {
				return nil
			}
		}
	}
	switch a := s.AdditionalProperties.(type) {
	case nil:
	case bool:
		p.noAdditional = !a
	case *jsonschema.Schema:
		if p.additional = buildPrecheck(a, built); p.additional == nil {
			return nil
		}
	default:
		return nil
	}
	if s.Not != nil {
		if p.not = buildPrecheck(s.Not, built); p.not == nil {
			return nil
		}
		n := p.not
		p.notRequired = len(n.required) > 0 && len(n.required) <= 64 && n.boolean == nil && n.types == 0 &&
			n.constant == nil && n.format == nil && n.properties == nil && n.additional == nil && !n.noAdditional &&
			n.minProps < 0 && n.maxProps < 0 && n.minLength < 0 && n.maxLength < 0 && n.pattern == nil &&
			n.not == nil && len(n.allOf) == 0 && len(n.anyOf) == 0
	}
	for _, l := range []struct {
		from []*jsonschema.Schema
		to   *[]*precheck
	}{{s.AllOf, &p.allOf}, {s.AnyOf, &p.anyOf}} {
		for _, sub := range l.from {
			sp := buildPrecheck(sub, built)
			if sp == nil {
				return nil
			}
			*l.to = append(*l.to, sp)
		}
	}
	built[s] = p
	return p
}
