package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxBodyBytes is the largest request body the API takes (2 MiB); larger
// ones are answered 413.
const MaxBodyBytes = 2 << 20

// fieldErrors is the "errors" object of a Laravel 422: field -> messages.
type fieldErrors map[string][]string

func (fe *fieldErrors) add(field, msg string) {
	if *fe == nil {
		*fe = make(fieldErrors)
	}
	(*fe)[field] = append((*fe)[field], msg)
}

// attr is how Laravel names a field in a message: "happened_at" becomes
// "happened at".
func attr(field string) string { return strings.ReplaceAll(field, "_", " ") }

func msgRequired(field string) string { return "The " + attr(field) + " field is required." }
func msgString(field string) string   { return "The " + attr(field) + " must be a string." }
func msgSelected(field string) string { return "The selected " + attr(field) + " is invalid." }
func msgObject(field string) string   { return "The " + attr(field) + " must be an object." }
func msgMax(field string, n int) string {
	return fmt.Sprintf("The %s may not be greater than %d characters.", attr(field), n)
}

// invalid answers the Laravel 422.
func (c *call) invalid(errs fieldErrors) {
	b, _ := json.Marshal(struct {
		Message string      `json:"message"`
		Errors  fieldErrors `json:"errors"`
	}{"The given data was invalid.", errs})
	c.json(http.StatusUnprocessableEntity, b)
}

// readBody reads the request body, at most MaxBodyBytes, answering 413 or
// 400 itself when it cannot.
func readBody(c *call) ([]byte, bool) {
	r := c.r
	if r.ContentLength > MaxBodyBytes {
		c.message(http.StatusRequestEntityTooLarge, "The request body may not be larger than 2 MiB.")
		return nil, false
	}
	body := http.MaxBytesReader(c.w, r.Body, MaxBodyBytes)
	var err error
	if n := r.ContentLength; n >= 0 {
		// The server stops the body at Content-Length: read it in one
		// allocation of the right size.
		c.body = make([]byte, n)
		_, err = io.ReadFull(body, c.body)
	} else {
		c.body, err = io.ReadAll(body)
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			c.message(http.StatusRequestEntityTooLarge, "The request body may not be larger than 2 MiB.")
		} else {
			c.message(http.StatusBadRequest, "The request body could not be read.")
		}
		return nil, false
	}
	return c.body, true
}

// checkObject answers 400 unless body is a JSON object.
func checkObject(c *call, body []byte) bool {
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v)
		if err == nil {
			err = errors.New("unexpected end of JSON input")
		}
		c.message(http.StatusBadRequest, "The request body is not valid JSON: "+err.Error())
		return false
	}
	if kindOf(body) != kindObject {
		c.message(http.StatusBadRequest, "The request body must be a JSON object.")
		return false
	}
	return true
}

// decodeObject decodes a JSON object body into its raw members, answering
// 400 when the body is not one.
func decodeObject(c *call, body []byte) (map[string]json.RawMessage, bool) {
	if !checkObject(c, body) {
		return nil, false
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		c.message(http.StatusBadRequest, "The request body must be a JSON object.")
		return nil, false
	}
	return fields, true
}

// jsonKind is the type of a raw JSON value, by its first byte.
type jsonKind byte

const (
	kindAbsent jsonKind = iota // missing or null
	kindString
	kindNumber
	kindBool
	kindObject
	kindArray
)

func kindOf(raw json.RawMessage) jsonKind {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return kindAbsent
	}
	switch raw[0] {
	case '"':
		return kindString
	case '{':
		return kindObject
	case '[':
		return kindArray
	case 't', 'f':
		return kindBool
	case 'n':
		return kindAbsent
	}
	return kindNumber
}

// rawString decodes a raw JSON string, the cheap way when it has no escapes.
func rawString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) >= 2 && bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	_ = json.Unmarshal(raw, &s) // raw was validated by the outer decode
	return s
}

// stringField applies Laravel's "string|max:n" (and "required" when
// required) to the raw member value (nil when absent). An empty string or
// null counts as absent, as the API's ConvertEmptyStringsToNull makes it.
// Lengths are in characters.
func stringField(errs *fieldErrors, name string, raw []byte, required bool, maxLen int) string {
	kind := kindOf(raw)
	if kind == kindAbsent {
		if required {
			errs.add(name, msgRequired(name))
		}
		return ""
	}
	if kind != kindString {
		errs.add(name, msgString(name))
		return ""
	}
	s := rawString(raw)
	switch {
	case s == "":
		if required {
			errs.add(name, msgRequired(name))
		}
	case utf8.RuneCountInString(s) > maxLen:
		errs.add(name, msgMax(name, maxLen))
		return ""
	}
	return s
}

// parseHappenedAt accepts the forms of happened_at the API takes: YYYY-MM-DD,
// DD-MM-YYYY, YYYY-MM-DD HH:MM:SS with an optional offset (+0530, +05:30),
// and RFC 3339. Impossible calendar dates fail (time.Parse checks the day
// against the month and leap years). Times without an offset are UTC.
func parseHappenedAt(s string) (time.Time, bool) {
	layouts := dateTimeLayouts
	if len(s) == len("2006-01-02") {
		layouts = dateLayouts
	}
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

var (
	dateLayouts     = []string{"2006-01-02", "02-01-2006"}
	dateTimeLayouts = []string{
		"2006-01-02 15:04:05", // the worker's form first: the hot path
		"2006-01-02 15:04:05 -0700",
		"2006-01-02 15:04:05 -07:00",
		"2006-01-02 15:04:05-0700",
		"2006-01-02 15:04:05Z07:00",
		time.RFC3339,
	}
)

// validEmail is a plain syntactic check in the spirit of Laravel's email
// rule: one @, a local part, and a domain of non-empty dot-separated labels
// (or an address literal).
func validEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') || at == len(s)-1 || len(s) > 254 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if len(local) > 64 || local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return false
	}
	for _, r := range local {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(`()<>[]\,;:"`, r) {
			return false
		}
	}
	if strings.HasPrefix(domain, "[") && strings.HasSuffix(domain, "]") {
		return len(domain) > 2
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			ok := r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= 0x80
			if !ok {
				return false
			}
		}
	}
	return true
}

// validPhone: digits, spaces, parentheses and dashes, with a leading plus,
// and at least one digit.
func validPhone(s string) bool {
	s = strings.TrimPrefix(s, "+")
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == ' ' || r == '(' || r == ')' || r == '-':
		default:
			return false
		}
	}
	return digits > 0
}
