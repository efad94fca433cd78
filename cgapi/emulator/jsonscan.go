package emulator

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// The activity hot path reads a body's top-level members as slices of the
// body itself: json.Valid checks the syntax once without allocating, and
// forEachMember then walks the (known valid) text. Decoding into a
// map[string]json.RawMessage instead copies every key and value and was
// the emulator's main cost under the worker benchmark.

// forEachMember calls fn with the key (unquoted, as JSON decoding gives it)
// and the raw value of each member of the object in valid JSON text b. It
// reports false when b is not an object. Later duplicates follow earlier
// ones, so "last one wins" falls out of assigning in fn.
func forEachMember(b []byte, fn func(key, value []byte)) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i++
	for {
		i = skipSpace(b, i)
		switch b[i] {
		case '}':
			return true
		case ',':
			i = skipSpace(b, i+1)
		}
		keyEnd := skipString(b, i)
		key := b[i:keyEnd]
		i = skipSpace(b, keyEnd) + 1 // the colon
		i = skipSpace(b, i)
		valueEnd := skipValue(b, i)
		fn(unquoteKey(key), b[i:valueEnd])
		i = valueEnd
	}
}

// unquoteKey turns a quoted JSON key into its text. Keys without escapes,
// the usual case, are a slice of the body: fn's switch on string(key)
// then allocates nothing.
func unquoteKey(quoted []byte) []byte {
	if bytes.IndexByte(quoted, '\\') >= 0 || !utf8.Valid(quoted) {
		var s string
		_ = json.Unmarshal(quoted, &s) // valid JSON string
		return []byte(s)
	}
	return quoted[1 : len(quoted)-1]
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j
		}
		j++
	}
	return j
}
