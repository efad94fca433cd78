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
// allocations. Syntax is checked first by json.Valid, so the hand-written
// decoder only ever sees well-formed JSON.
func parse(body []byte) (any, *Error) {
	if len(body) > MaxBodyBytes {
		return nil, newError(Schema, map[string][]string{
			BodyKey: {fmt.Sprintf("The body may not be greater than %d bytes.", MaxBodyBytes)},
		})
	}
	if !json.Valid(body) {
		return nil, malformed(body)
	}
	d := decoder{s: string(body)}
	return d.value(), nil
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

// decoder reads one JSON value from s, which must be valid JSON.
type decoder struct {
	s string
	i int
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

func (d *decoder) value() any {
	d.skipSpace()
	switch c := d.s[d.i]; c {
	case '{':
		return d.object()
	case '[':
		return d.array()
	case '"':
		return d.str()
	case 't':
		d.i += 4
		return true
	case 'f':
		d.i += 5
		return false
	case 'n':
		d.i += 4
		return nil
	default:
		start := d.i
		for d.i < len(d.s) {
			c := d.s[d.i]
			if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
				d.i++
				continue
			}
			break
		}
		return json.Number(d.s[start:d.i])
	}
}

func (d *decoder) object() map[string]any {
	d.i++ // {
	obj := make(map[string]any, 8)
	d.skipSpace()
	if d.s[d.i] == '}' {
		d.i++
		return obj
	}
	for {
		d.skipSpace()
		key := d.str()
		d.skipSpace()
		d.i++ // :
		obj[key] = d.value()
		d.skipSpace()
		c := d.s[d.i]
		d.i++
		if c == '}' {
			return obj
		}
	}
}

func (d *decoder) array() []any {
	d.i++ // [
	arr := []any{}
	d.skipSpace()
	if d.s[d.i] == ']' {
		d.i++
		return arr
	}
	for {
		arr = append(arr, d.value())
		d.skipSpace()
		c := d.s[d.i]
		d.i++
		if c == ']' {
			return arr
		}
	}
}

// str reads a string starting at its opening quote. A string without
// escapes and with valid UTF-8 is a substring of the body; anything else is
// left to encoding/json, so the result is always what it would decode
// (invalid UTF-8 becomes U+FFFD).
func (d *decoder) str() string {
	start := d.i
	d.i++
	escaped, ascii := false, true
	for {
		c := d.s[d.i]
		if c == '"' {
			break
		}
		if c == '\\' {
			escaped = true
			d.i += 2
			continue
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
		d.i++
	}
	d.i++
	raw := d.s[start:d.i]
	if !escaped && (ascii || utf8.ValidString(raw)) {
		return raw[1 : len(raw)-1]
	}
	var out string
	_ = json.Unmarshal([]byte(raw), &out) // raw is a valid JSON string
	return out
}
