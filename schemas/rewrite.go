package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// errNotObject is returned by RewriteActivity and TopLevelMember for a body
// that is not a well-formed JSON object; ValidateActivity would have
// rejected it.
var errNotObject = errors.New("body is not a JSON object")

// member is one top-level member of an object, as byte ranges of the body.
type member struct {
	key        string // decoded name if it is one of the member* names, else ""
	keyStart   int    // the opening quote of the name
	keyEnd     int    // after the closing quote
	valueStart int
	valueEnd   int
}

// The optional string members that an empty string removes, and the two the
// worker sets.
const (
	memberReference  = "reference"
	memberHappenedAt = "happened_at"
	memberContact    = "contact"
)

// RewriteActivity returns body with "reference" and "happened_at" set to the
// given values (happenedAt already normalised) and empty optional strings
// removed; every other member is kept byte for byte, in its order. body must
// have passed ValidateActivity.
//
// A member that is set replaces the producer's at its place, or is added at
// the end; an empty value given removes it. When a name occurs more than
// once, the last occurrence is the one that counts (as for every JSON
// decoder the validator and the API use), so the earlier ones are dropped.
// Whitespace between members is not kept.
func RewriteActivity(body []byte, reference, happenedAt string) ([]byte, error) {
	var stack [16]member
	members, err := topLevelMembers(body, stack[:0])
	if err != nil {
		return nil, err
	}
	// Index of the last occurrence of each name that matters, -1 if none.
	lastRef, lastAt, lastContact := -1, -1, -1
	for i, m := range members {
		switch m.key {
		case memberReference:
			lastRef = i
		case memberHappenedAt:
			lastAt = i
		case memberContact:
			lastContact = i
		}
	}
	out := make([]byte, 0, len(body)+len(reference)+len(happenedAt)+32)
	out = append(out, '{')
	keep := func(m member) {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, body[m.keyStart:m.keyEnd]...)
		out = append(out, ':')
		out = append(out, body[m.valueStart:m.valueEnd]...)
	}
	set := func(name, value string) {
		if value == "" {
			return
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, name...)
		out = append(out, '"', ':')
		out = AppendJSONString(out, value)
	}
	for i, m := range members {
		switch m.key {
		case memberReference:
			if i == lastRef {
				set(memberReference, reference)
			}
		case memberHappenedAt:
			if i == lastAt {
				set(memberHappenedAt, happenedAt)
			}
		case memberContact:
			if i == lastContact && string(body[m.valueStart:m.valueEnd]) != `""` {
				keep(m)
			}
		default:
			keep(m)
		}
	}
	if lastRef < 0 {
		set(memberReference, reference)
	}
	if lastAt < 0 {
		set(memberHappenedAt, happenedAt)
	}
	return append(out, '}'), nil
}

// topLevelMembers scans the members of the object that body holds, without
// decoding values, so that they can be copied byte for byte.
func topLevelMembers(body []byte, into []member) ([]member, error) {
	o := objectScanner{scanner: scanner{b: body}}
	for {
		var m member
		more, escaped, err := o.next(&m)
		if err != nil {
			return nil, err
		}
		if !more {
			return into, nil
		}
		if escaped {
			var name string
			if err := json.Unmarshal(body[m.keyStart:m.keyEnd], &name); err != nil {
				return nil, errNotObject
			}
			m.key = name
		} else {
			m.key = knownName(body[m.keyStart+1 : m.keyEnd-1])
		}
		into = append(into, m)
	}
}

// TopLevelMember returns the raw bytes of the value of the top-level member
// name of the JSON object in body, without decoding any value; value shares
// body's memory. When the name occurs more than once the last occurrence
// counts, as for the JSON decoders. ok is false when there is no such
// member; err is non-nil when body is not a well-formed JSON object at its
// top level (values are checked only as far as needed to find their ends).
func TopLevelMember(body []byte, name string) (value []byte, ok bool, err error) {
	o := objectScanner{scanner: scanner{b: body}}
	for {
		var m member
		more, escaped, err := o.next(&m)
		if err != nil {
			return nil, false, err
		}
		if !more {
			return value, ok, nil
		}
		if escaped {
			// A name spelt with escapes is rare enough to pay for a decode.
			var key string
			if json.Unmarshal(body[m.keyStart:m.keyEnd], &key) != nil {
				return nil, false, errNotObject
			}
			if key != name {
				continue
			}
		} else if string(body[m.keyStart+1:m.keyEnd-1]) != name {
			continue
		}
		value, ok = body[m.valueStart:m.valueEnd], true
	}
}

// objectScanner walks the top-level members of an object one at a time.
type objectScanner struct {
	scanner
	started bool
}

// next scans the next member's byte ranges into m (leaving m.key alone) and
// says whether its name holds escapes. After the last member it returns
// more == false, having checked that nothing but space follows the object.
func (o *objectScanner) next(m *member) (more, escaped bool, err error) {
	s := &o.scanner
	s.space()
	if !o.started {
		o.started = true
		if !s.eat('{') {
			return false, false, errNotObject
		}
		s.space()
		if s.eat('}') {
			return false, false, s.end()
		}
	} else {
		if s.eat('}') {
			return false, false, s.end()
		}
		if !s.eat(',') {
			return false, false, errNotObject
		}
		s.space()
	}
	m.keyStart = s.i
	escaped, ok := s.str()
	if !ok {
		return false, false, errNotObject
	}
	m.keyEnd = s.i
	s.space()
	if !s.eat(':') {
		return false, false, errNotObject
	}
	s.space()
	m.valueStart = s.i
	if !s.value() {
		return false, false, errNotObject
	}
	m.valueEnd = s.i
	return true, escaped, nil
}

// knownName returns raw as one of the names RewriteActivity acts on, or ""
// for any other: no allocation for names nobody compares.
func knownName(raw []byte) string {
	switch string(raw) {
	case memberReference:
		return memberReference
	case memberHappenedAt:
		return memberHappenedAt
	case memberContact:
		return memberContact
	}
	return ""
}

// scanner skips over JSON values in raw bytes. It checks only as much
// syntax as it needs to find where each value ends.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) end() error {
	s.space()
	if s.i != len(s.b) {
		return errNotObject
	}
	return nil
}

// str skips a string starting at its opening quote; escaped says whether it
// holds a backslash.
func (s *scanner) str() (escaped, ok bool) {
	if !s.eat('"') {
		return false, false
	}
	for {
		// IndexByte is vectorised: strings are most of a body's bytes.
		q := bytes.IndexByte(s.b[s.i:], '"')
		if q < 0 {
			return false, false
		}
		bs := bytes.IndexByte(s.b[s.i:s.i+q], '\\')
		if bs < 0 {
			s.i += q + 1
			return escaped, true
		}
		escaped = true
		s.i += bs + 2 // the backslash and the byte it escapes
		if s.i > len(s.b) {
			return false, false
		}
	}
}

func (s *scanner) value() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		_, ok := s.str()
		return ok
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, ok := s.str(); !ok {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	default: // number or literal: up to the next delimiter
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.i > start
			}
			s.i++
		}
		return s.i > start
	}
}

// AppendJSONString appends s to dst as a JSON string. Unlike encoding/json
// it does not escape <, > and &, which neither the API nor a person reading
// a header has reason to see escaped; invalid UTF-8 becomes U+FFFD as
// encoding/json would make it.
func AppendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript readers.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
