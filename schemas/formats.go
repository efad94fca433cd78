package schemas

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Custom formats, usable by the built-in schemas and by replacements in
// CG_SCHEMAS_DIR. Format assertion is switched on for every draft.
var customFormats = []*jsonschema.Format{
	{Name: "cg-happened-at", Validate: validHappenedAt},
	{Name: "cg-email", Validate: validEmail},
	{Name: "cg-phone", Validate: validPhone},
	{Name: "cg-contact", Validate: validContact},
}

// formatNouns name what a format stands for in messages
// ("must be a valid email address or phone number").
var formatNouns = map[string]string{
	"cg-happened-at": "date",
	"date":           "date",
	"date-time":      "date",
	"cg-email":       "email address",
	"email":          "email address",
	"idn-email":      "email address",
	"cg-phone":       "phone number",
	"cg-contact":     "email address or phone number",
	"uri":            "URL",
	"uuid":           "UUID",
}

var (
	errPhone   = errors.New("not a phone number")
	errEmail   = errors.New("not an email address")
	errContact = errors.New("neither an email address nor a phone number")
)

// validPhone: digits, spaces, parentheses and dashes, with an optional
// leading plus and at least one digit (README, "Events").
func validPhone(v any) error {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	seenDigit := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			seenDigit = true
		case c == ' ' || c == '(' || c == ')' || c == '-':
		case c == '+' && i == 0:
		default:
			return errPhone
		}
	}
	if !seenDigit {
		return errPhone
	}
	return nil
}

// validContact is an activity's contact: an email address or a phone
// number. One format rather than an anyOf of two, because it is checked for
// nearly every activity and an anyOf costs a dozen allocations.
func validContact(v any) error {
	if validEmail(v) == nil || validPhone(v) == nil {
		return nil
	}
	return errContact
}

// validEmail is stricter than the library's "email", which takes "@x" and
// "joe@localhost": a contact's email must be deliverable on the Internet.
// local@domain, the local part a dot-atom of at most 64 bytes, the domain at
// least two labels of letters (any script), digits and inner dashes.
func validEmail(v any) error {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	at := strings.LastIndexByte(s, '@')
	if len(s) > 254 || at < 1 || at > 64 {
		return errEmail
	}
	local, domain := s[:at], s[at+1:]
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return errEmail
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte(".!#$%&'*+-/=?^_`{|}~", c) >= 0) {
			return errEmail
		}
	}
	labels := 0
	for label := range strings.SplitSeq(domain, ".") {
		if !validLabel(label) {
			return errEmail
		}
		labels++
	}
	if labels < 2 {
		return errEmail
	}
	return nil
}

func validLabel(label string) bool {
	if label == "" || utf8.RuneCountInString(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
		return false
	}
	for _, r := range label {
		if r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}
