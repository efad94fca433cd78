package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// parse turns a body into the values jsonschema validates (map[string]any,
// []any, string, json.Number, bool, nil), or returns the *Error for a body
// that is too large or not JSON.
//
// It is not encoding/json's decoder because that allocates per token: here
// every string that needs no unescaping is a substring of one copy of the
// body, which keeps validating a typical activity to a few dozen
// allocations, and syntax is checked in the same pass. It accepts exactly
// what json.Valid accepts (a fuzz test holds it to that); for the error
// message it asks encoding/json.
func parse(body []byte) (any, *Error) {
	if len(body) > MaxBodyBytes {
		return nil, oversizeError()
	}
	d := decoder{s: string(body)}
	v, ok := d.document()
	if !ok {
		return nil, malformed(body)
	}
	return v, nil
}

// malformed describes why body is not JSON and where: the 0-based offset of
// the offending byte, or the body's length when it ends too early.
func malformed(body []byte) *Error {
	msg := "The body is not valid JSON."
	var raw json.RawMessage
	err := json.Unmarshal(body, &raw)
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		// encoding/json counts the bytes read, including the offending one.
		off := syn.Offset
		if strings.HasPrefix(syn.Error(), "invalid character") && off > 0 {
			off--
		}
		msg = fmt.Sprintf("The body is not valid JSON: %s at offset %d.", syn.Error(), off)
	} else if err != nil {
		msg = fmt.Sprintf("The body is not valid JSON: %s.", err)
	}
	return newError(Malformed, map[string][]string{BodyKey: {msg}})
}

// checkUTF8 returns the malformed *Error of a JSON body that is not valid
// UTF-8 (README, "Outcomes"): encoding/json, like parse, reads such bytes
// as U+FFFD, so the API would be sent the bytes as they are, or text the
// producer never wrote. It is not in parse, which accepts exactly what
// json.Valid accepts.
func checkUTF8(body []byte) *Error {
	if utf8.Valid(body) {
		return nil
	}
	off := 0
	for off < len(body) {
		r, n := utf8.DecodeRune(body[off:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		off += n
	}
	return newError(Malformed, map[string][]string{BodyKey: {fmt.Sprintf("The body is not valid UTF-8: invalid byte at offset %d.", off)}})
}

// maxDepth is encoding/json's nesting limit, kept so that both agree on
// what is JSON.
const maxDepth = 10000

// decoder reads one JSON document from s.
type decoder struct {
	s     string
	i     int
	depth int
}

func (d *decoder) document() (any, bool) {
	v, ok := d.value()
	if !ok {
		return nil, false
	}
	d.skipSpace()
	return v, d.i == len(d.s)
}

func (d *decoder) skipSpace() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) value() (any, bool) {
	d.skipSpace()
	if d.i >= len(d.s) {
		return nil, false
	}
	switch c := d.s[d.i]; {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		s, ok := d.str()
		return s, ok
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	}
	return nil, false
}

func (d *decoder) literal(lit string) bool {
	if strings.HasPrefix(d.s[d.i:], lit) {
		d.i += len(lit)
		return true
	}
	return false
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? as it is
// written: json.Number keeps every digit.
func (d *decoder) number() (any, bool) {
	start := d.i
	if !d.skipNumber() {
		return nil, false
	}
	return json.Number(d.s[start:d.i]), true
}

// skipNumber steps over a number, reporting whether it is well formed.
func (d *decoder) skipNumber() bool {
	if d.s[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.s) && d.s[d.i] == '0':
		d.i++
	case d.digits() == 0:
		return false
	}
	if d.i < len(d.s) && d.s[d.i] == '.' {
		d.i++
		if d.digits() == 0 {
			return false
		}
	}
	if d.i < len(d.s) && (d.s[d.i] == 'e' || d.s[d.i] == 'E') {
		d.i++
		if d.i < len(d.s) && (d.s[d.i] == '+' || d.s[d.i] == '-') {
			d.i++
		}
		if d.digits() == 0 {
			return false
		}
	}
	return true
}

func (d *decoder) digits() int {
	start := d.i
	for d.i < len(d.s) && d.s[d.i] >= '0' && d.s[d.i] <= '9' {
		d.i++
	}
	return d.i - start
}

func (d *decoder) object() (any, bool) {
	obj := make(map[string]any, 8)
	if empty, ok := d.open('}'); empty || !ok {
		return obj, ok
	}
	for {
		key, ok := d.name()
		if !ok {
			return nil, false
		}
		v, ok := d.value()
		if !ok {
			return nil, false
		}
		obj[key] = v // the last of duplicate names wins, as in encoding/json
		if more, ok := d.after('}'); !more {
			return obj, ok
		}
	}
}

func (d *decoder) array() (any, bool) {
	arr := []any{}
	if empty, ok := d.open(']'); empty || !ok {
		return arr, ok
	}
	for {
		v, ok := d.value()
		if !ok {
			return nil, false
		}
		arr = append(arr, v)
		if more, ok := d.after(']'); !more {
			return arr, ok
		}
	}
}

// name reads a member's name and the colon after it.
func (d *decoder) name() (string, bool) {
	d.skipSpace()
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return "", false
	}
	key, ok := d.str()
	if !ok {
		return "", false
	}
	d.skipSpace()
	if d.i >= len(d.s) || d.s[d.i] != ':' {
		return "", false
	}
	d.i++
	return key, true
}

// open steps into the object or array at d.i, whose closing byte is
// closing: empty reports one closed at once (and left). ok is false past
// maxDepth.
func (d *decoder) open(closing byte) (empty, ok bool) {
	if d.depth++; d.depth > maxDepth {
		return false, false
	}
	d.i++ // { or [
	d.skipSpace()
	if d.i < len(d.s) && d.s[d.i] == closing {
		d.i++
		d.depth--
		return true, true
	}
	return false, true
}

// after reads what follows a member or an element: a comma (more), or
// the closing byte, which ends the object or array (ok).
func (d *decoder) after(closing byte) (more, ok bool) {
	d.skipSpace()
	if d.i >= len(d.s) {
		return false, false
	}
	c := d.s[d.i]
	d.i++
	switch c {
	case ',':
		return true, true
	case closing:
		d.depth--
		return false, true
	}
	return false, false
}

// str reads a string starting at its opening quote. A string without
// escapes and with valid UTF-8 is a substring of the body; anything else is
// left to encoding/json, so the result is always what it would decode
// (invalid UTF-8 becomes U+FFFD).
func (d *decoder) str() (string, bool) {
	start := d.i
	escaped, ascii, ok := d.skipStr()
	if !ok {
		return "", false
	}
	raw := d.s[start:d.i]
	if !escaped && (ascii || utf8.ValidString(raw)) {
		return raw[1 : len(raw)-1], true
	}
	var out string
	if json.Unmarshal([]byte(raw), &out) != nil {
		return "", false
	}
	return out, true
}

// skipStr steps over the string starting at its opening quote, checking its
// syntax only: for a walk that needs no value, a string with escapes costs
// no decoding. escaped and ascii say what decoding it would take.
func (d *decoder) skipStr() (escaped, ascii, ok bool) {
	d.i++
	ascii = true
	for {
		if d.i >= len(d.s) {
			return false, false, false
		}
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			return escaped, ascii, true
		case c < 0x20:
			return false, false, false
		case c == '\\':
			escaped = true
			if !d.escape() {
				return false, false, false
			}
			continue
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.i++
	}
}

// escape checks the escape sequence at d.i and steps over it.
func (d *decoder) escape() bool {
	if d.i+1 >= len(d.s) {
		return false
	}
	switch d.s[d.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		d.i += 2
		return true
	case 'u':
		if d.i+6 > len(d.s) {
			return false
		}
		for _, h := range []byte(d.s[d.i+2 : d.i+6]) {
			if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
				return false
			}
		}
		d.i += 6
		return true
	}
	return false
}
