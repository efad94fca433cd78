package schemas

import (
	"encoding/json"
	"slices"
	"unicode/utf8"
)

// The precheck over the JSON text. A valid event need not be decoded into
// values at all: a walk over its text, with the precheck of the schema in
// hand at every value, answers the same question (does the schema
// certainly accept it?) without building a map or boxing a string. It is
// as strict about syntax as parse (the same decoder steps over the same
// tokens), and every doubt answers "no": the body then takes the path it
// always took, parse and the library.
//
// Duplicate member names: the decoded document keeps the last value of a
// name. The walk checks every occurrence, so it can only be stricter,
// except where counting them could make it laxer: minProperties is not
// walked (the walk answers "no").

// textCheck is one walk.
type textCheck struct {
	decoder
	// absent are the top-level members that an empty string leaves out
	// (the activity's optional strings, dropEmptyOptionals).
	absent []string
	// capture are top-level members whose string values the caller needs;
	// got holds the last occurrence's value. A captured member that is
	// present but not a string makes the walk answer "no", so the caller's
	// own checks of such values run on the parsed document.
	capture []string
	got     []string
}

// acceptsText reports whether body is an object the schema of p certainly
// accepts (every kind is sent as an object, whatever the schema allows).
// absent and capture are as in textCheck; got must have capture's length.
func (p *precheck) acceptsText(body []byte, absent, capture, got []string) bool {
	if len(body) > MaxBodyBytes {
		return false
	}
	t := textCheck{decoder: decoder{s: string(body)}, absent: absent, capture: capture, got: got}
	if t.skipSpace(); t.i >= len(t.s) || t.s[t.i] != '{' || !t.check(p) {
		return false
	}
	t.skipSpace()
	return t.i == len(t.s)
}

// anything is the precheck of a schema without keywords.
var anything = &precheck{minProps: -1, maxProps: -1, minLength: -1, maxLength: -1}

// check walks one value and reports whether p certainly accepts it.
func (t *textCheck) check(p *precheck) bool {
	t.skipSpace()
	if t.i >= len(t.s) {
		return false
	}
	if p == nil {
		return t.skip()
	}
	if p.boolean != nil {
		if !*p.boolean {
			return false
		}
		if t.depth > 0 || len(t.capture) == 0 {
			return t.skip()
		}
		p = anything // the top level of a true schema: still capture
	}
	start := t.i
	object := t.s[t.i] == '{'
	if !t.own(p) {
		return false
	}
	not := p.not
	if object && p.notRequired {
		not = nil // answered by object
	}
	if not == nil && len(p.allOf) == 0 && len(p.anyOf) == 0 {
		return true
	}
	// The subschemas look at the same value again.
	end, depth := t.i, t.depth
	again := func(f func() bool) bool {
		t.i, t.depth = start, depth
		return f()
	}
	if not != nil && !again(func() bool { return t.rejects(not) }) {
		return false
	}
	for _, sub := range p.allOf {
		if !again(func() bool { return t.check(sub) }) {
			return false
		}
	}
	if len(p.anyOf) > 0 {
		ok := false
		for _, sub := range p.anyOf {
			if again(func() bool { return t.check(sub) }) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	t.i, t.depth = end, depth
	return true
}

// typeAt is the type of the value at t.i, told by its first byte; 0 when
// no value starts there.
func (t *textCheck) typeAt() typeSet {
	switch c := t.s[t.i]; {
	case c == '{':
		return typeObject
	case c == '[':
		return typeArray
	case c == '"':
		return typeString
	case c == 't' || c == 'f':
		return typeBoolean
	case c == 'n':
		return typeNull
	case c == '-' || c >= '0' && c <= '9':
		return typeNumber
	}
	return 0
}

// own walks one value against p's own keywords (not its subschemas).
func (t *textCheck) own(p *precheck) bool {
	typ := t.typeAt()
	if typ == 0 || p.types != 0 && p.types&typ == 0 {
		return false
	}
	switch typ {
	case typeObject:
		// A format's verdict on an object is the library's to give.
		return p.constant == nil && p.format == nil && t.object(p)
	case typeString:
		s, ok := t.str()
		if !ok {
			return false
		}
		if p.constant != nil {
			if c, isString := (*p.constant).(string); !isString || c != s {
				return false
			}
		}
		if p.format != nil && p.format(s) != nil {
			return false
		}
		if p.minLength >= 0 || p.maxLength >= 0 {
			n := utf8.RuneCountInString(s)
			if p.minLength >= 0 && n < p.minLength || p.maxLength >= 0 && n > p.maxLength {
				return false
			}
		}
		return p.pattern == nil || p.pattern.MatchString(s)
	case typeNumber:
		start := t.i
		if !t.skipNumber() || p.constant != nil {
			return false
		}
		return p.format == nil || p.format(json.Number(t.s[start:t.i])) == nil
	case typeBoolean, typeNull:
		var v any
		switch {
		case t.literal("true"):
			v = true
		case t.literal("false"):
			v = false
		case t.literal("null"):
		default:
			return false
		}
		if p.constant != nil && *p.constant != v {
			return false
		}
		return p.format == nil || p.format(v) == nil
	}
	// An array: no array keyword has a precheck, so only its syntax.
	return p.constant == nil && p.format == nil && t.skip()
}

// object walks an object's members against p.
func (t *textCheck) object(p *precheck) bool {
	if p.minProps >= 0 || len(p.required) > 64 {
		return false
	}
	top := t.depth == 0
	var seen, seenNot uint64 // bit i: p.required[i], p.not.required[i] present
	count := 0
	ok := t.members(func(name string) bool {
		if top && t.isAbsent(name) {
			// The document keeps the last occurrence: an earlier one
			// with a value no longer counts as present.
			seen &^= bitOf(p.required, name)
			if p.notRequired {
				seenNot &^= bitOf(p.not.required, name)
			}
			return true
		}
		count++
		seen |= bitOf(p.required, name)
		if p.notRequired {
			seenNot |= bitOf(p.not.required, name)
		}
		if top && t.captured(name) {
			return false // not a string: the caller's checks on the document
		}
		if sub, ok := p.properties[name]; ok {
			return t.check(sub)
		}
		if p.noAdditional {
			return false
		}
		return t.check(p.additional)
	})
	if !ok || p.maxProps >= 0 && count > p.maxProps {
		return false
	}
	if p.notRequired && seenNot == 1<<len(p.not.required)-1 {
		return false // every member "not" names is there: rejected
	}
	return seen == 1<<len(p.required)-1
}

// bitOf is the bit of name in a required list of at most 64 names, 0 if
// it is not there.
func bitOf(required []string, name string) uint64 {
	var bits uint64
	for i, r := range required {
		if r == name {
			bits |= 1 << i
		}
	}
	return bits
}

// members walks an object from its '{', calling member with each name
// before its value, and steps over a value member left unread.
func (t *textCheck) members(member func(name string) bool) bool {
	if empty, ok := t.open('}'); empty || !ok {
		return ok
	}
	for {
		name, ok := t.name()
		if !ok {
			return false
		}
		t.skipSpace()
		before := t.i
		if !member(name) {
			return false
		}
		if t.i == before && !t.skip() { // member left the value unread
			return false
		}
		if more, ok := t.after('}'); !more {
			return ok
		}
	}
}

// isAbsent reports whether the member about to be read is one of absent
// with the value "", and if so steps over the value.
func (t *textCheck) isAbsent(name string) bool {
	t.skipSpace()
	if !slices.Contains(t.absent, name) || !(t.i+1 < len(t.s) && t.s[t.i] == '"' && t.s[t.i+1] == '"') {
		return false
	}
	t.i += 2
	for i, c := range t.capture {
		if c == name {
			t.got[i] = "" // the document keeps the last occurrence: none
		}
	}
	return true
}

// captured records the member about to be read when it is one of capture
// and a string; it reports true for one that is not a string.
func (t *textCheck) captured(name string) bool {
	for i, c := range t.capture {
		if c != name {
			continue
		}
		t.skipSpace()
		if t.i >= len(t.s) || t.s[t.i] != '"' {
			return true
		}
		start := t.i
		s, ok := t.str()
		if !ok {
			return true
		}
		t.got[i] = s
		t.i = start // the schema's check reads it again
	}
	return false
}

// rejects reports whether the schema of p certainly rejects the value,
// which is what "not" needs: a false schema, a type it excludes, a required
// member missing. The value is read but its position not kept.
func (t *textCheck) rejects(p *precheck) bool {
	t.skipSpace()
	if t.i >= len(t.s) {
		return false
	}
	if p.boolean != nil {
		return !*p.boolean
	}
	typ := t.typeAt()
	if typ == 0 {
		return false
	}
	if p.types != 0 && p.types&typ == 0 {
		return true
	}
	if typ != typeObject || len(p.required) == 0 || len(p.required) > 64 {
		return false
	}
	top := t.depth == 0
	var seen uint64
	if !t.members(func(name string) bool {
		if top && t.isAbsent(name) {
			// The document keeps the last occurrence: an earlier one
			// with a value no longer counts as present.
			seen &^= bitOf(p.required, name)
			return true
		}
		seen |= bitOf(p.required, name)
		return true
	}) {
		return false
	}
	return seen != 1<<len(p.required)-1
}

// skip steps over one value, checking only its syntax.
func (t *textCheck) skip() bool {
	t.skipSpace()
	if t.i >= len(t.s) {
		return false
	}
	switch c := t.s[t.i]; {
	case c == '{':
		return t.members(func(string) bool { return true })
	case c == '[':
		if empty, ok := t.open(']'); empty || !ok {
			return ok
		}
		for {
			if !t.skip() {
				return false
			}
			if more, ok := t.after(']'); !more {
				return ok
			}
		}
	case c == '"':
		_, _, ok := t.skipStr()
		return ok
	case c == 't':
		return t.literal("true")
	case c == 'f':
		return t.literal("false")
	case c == 'n':
		return t.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return t.skipNumber()
	}
	return false
}
