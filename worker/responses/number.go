package responses

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// numberKey is the response field that identifies a response and orders the
// sync's output.
const numberKey = "number_customergauge"

// errNoNumber marks a response object without a usable number_customergauge.
var errNoNumber = errors.New("no number_customergauge")

// responseNumber returns the number_customergauge of one response object,
// given as a JSON integer or a string holding one. It scans only the
// top level of the object instead of decoding it: a page of a thousand
// large responses would otherwise be decoded in full just to read one field.
// The API client has already checked that raw is valid JSON.
func responseNumber(raw []byte) (int64, error) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return 0, fmt.Errorf("%w: response is not a JSON object", errNoNumber)
	}
	i++
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) {
			return 0, errMalformed
		}
		switch raw[i] {
		case '}':
			return 0, errNoNumber
		case ',':
			i++
			continue
		case '"':
		default:
			return 0, errMalformed
		}
		keyStart := i
		end, escaped, ok := scanString(raw, i)
		if !ok {
			return 0, errMalformed
		}
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] != ':' {
			return 0, errMalformed
		}
		valStart := skipSpace(raw, i+1)
		valEnd, ok := skipValue(raw, valStart)
		if !ok {
			return 0, errMalformed
		}
		if keyIs(raw[keyStart:end], escaped) {
			return parseNumber(raw[valStart:valEnd])
		}
		i = valEnd
	}
}

var errMalformed = fmt.Errorf("%w: malformed JSON", errNoNumber)

// keyIs reports whether the quoted key is numberKey.
func keyIs(quoted []byte, escaped bool) bool {
	if !escaped {
		return string(quoted[1:len(quoted)-1]) == numberKey
	}
	// A key spelt with escapes is rare enough to pay for a real decode.
	var k string
	return json.Unmarshal(quoted, &k) == nil && k == numberKey
}

// parseNumber reads the value of number_customergauge: a positive integer,
// as a JSON number (an integral float such as 3414.0 too) or a string.
func parseNumber(v []byte) (int64, error) {
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return 0, fmt.Errorf("%w: it is null", errNoNumber)
	}
	text := string(v)
	if v[0] == '"' {
		if err := json.Unmarshal(v, &text); err != nil {
			return 0, errMalformed
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(text, 64)
		if ferr != nil || f != math.Trunc(f) || f > 1<<53 || f < -(1<<53) {
			return 0, fmt.Errorf("%w: %.40s is not an integer", errNoNumber, v)
		}
		n = int64(f)
	}
	if n <= 0 {
		return 0, fmt.Errorf("%w: %d is not positive", errNoNumber, n)
	}
	return n, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the index just past the string starting at b[i] ('"')
// and whether it holds escapes.
func scanString(b []byte, i int) (end int, escaped, ok bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped, true
		}
	}
	return 0, false, false
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		end, _, ok := scanString(b, i)
		return end, ok
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _, ok := scanString(b, j)
				if !ok {
					return 0, false
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	default: // number, true, false, null
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return j, j > i
			}
			j++
		}
		return j, j > i
	}
}

// pageNumbers returns the number of every response of a page, or an error
// naming the first response without one: a page is published whole or not
// at all.
func pageNumbers(data []json.RawMessage) ([]int64, error) {
	nums := make([]int64, len(data))
	for i, raw := range data {
		n, err := responseNumber(raw)
		if err != nil {
			return nil, fmt.Errorf("response %d of the page: %w", i, err)
		}
		nums[i] = n
	}
	return nums, nil
}
