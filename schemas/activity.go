package schemas

import (
	"fmt"
	"unicode/utf8"
)

// ActivityFields are the identity fields of a valid activity body as the
// producer sent them; empty when absent or "" (an empty optional string
// means absent).
type ActivityFields struct {
	Reference  string
	HappenedAt string // normalised, "YYYY-MM-DD HH:MM:SS" UTC
}

// ValidateActivity validates an activity and returns its identity fields.
// It returns *Error for an invalid body. For a body that is JSON but breaks
// the schema, the fields are still filled as far as they can be read, so a
// dead letter can carry the reference the producer chose.
func (v *Validator) ValidateActivity(body []byte) (ActivityFields, error) {
	if f, ok := v.prechecked(body); ok {
		return f, nil
	}
	doc, verr := v.validate(Activity, body)
	var f ActivityFields
	obj, _ := doc.(map[string]any)
	if obj == nil { // validate never passes a body that is not an object
		return f, verr
	}
	// The fields may still be unusable under a replaced activity.json that
	// does not constrain them; the worker depends on them, so check here.
	// Valid activities, nearly all of them, allocate no error map.
	var fields map[string][]string
	if r, ok := obj["reference"]; ok && r != nil {
		if s, ok := r.(string); ok {
			f.Reference = s
		} else {
			fields = addField(fields, "reference", "The reference must be a string.")
		}
	}
	if h, ok := obj["happened_at"]; ok {
		s, isString := h.(string)
		switch {
		case !isString:
			fields = addField(fields, "happened_at", "The happened at must be a string.")
		case s != "":
			norm, err := NormalizeHappenedAt(s)
			if err != nil {
				fields = addField(fields, "happened_at", "The happened at is not a valid date.")
			}
			f.HappenedAt = norm
		}
	}
	if verr != nil {
		return f, verr
	}
	if fields != nil {
		return f, newError(Schema, fields)
	}
	return f, nil
}

// activityFieldNames are the members ValidateActivity returns.
var activityFieldNames = [...]string{memberReference, memberHappenedAt}

// prechecked is ValidateActivity's answer for a body the precheck accepts
// as text, read in the same walk; ok is false for any other body, and for
// one whose happened_at does not parse, so that its error comes from the
// one place that words it.
func (v *Validator) prechecked(body []byte) (f ActivityFields, ok bool) {
	var got [len(activityFieldNames)]string
	if !v.acceptsText(Activity, body, emptyMeansAbsent[:], activityFieldNames[:], got[:]) {
		return ActivityFields{}, false
	}
	f.Reference = got[0]
	if got[1] != "" {
		norm, err := NormalizeHappenedAt(got[1])
		if err != nil {
			return ActivityFields{}, false
		}
		f.HappenedAt = norm
	}
	return f, true
}

// addField adds msg under key, making fields on the first error.
func addField(fields map[string][]string, key, msg string) map[string][]string {
	if fields == nil {
		fields = make(map[string][]string, 2)
	}
	fields[key] = append(fields[key], msg)
	return fields
}

// emptyMeansAbsent are the optional string members of an activity that an
// empty string leaves out, as in the API's own example ("contact": "").
var emptyMeansAbsent = [...]string{memberContact, memberReference, memberHappenedAt}

// dropEmptyOptionals removes those members when they are "", so the schema
// sees the body as RewriteActivity will send it.
func dropEmptyOptionals(doc any) {
	obj, ok := doc.(map[string]any)
	if !ok {
		return
	}
	for _, name := range emptyMeansAbsent {
		if s, ok := obj[name].(string); ok && s == "" {
			delete(obj, name)
		}
	}
}

// MaxReferenceChars is the API's limit on an activity's reference, counted
// in Unicode characters (README, "Events"); the built-in activity.json
// says the same.
const MaxReferenceChars = 128

// CheckReference checks a reference given outside the body (the
// CG-Reference header) as the built-in schema checks the body field it
// stands for: text of at most MaxReferenceChars characters. It returns the
// problem in the API's wording, "" when there is none. Invalid UTF-8 is a
// problem too: the PUT would carry U+FFFD instead, another reference.
func CheckReference(ref string) string {
	if !utf8.ValidString(ref) {
		return "The reference must be valid UTF-8."
	}
	if utf8.RuneCountInString(ref) > MaxReferenceChars {
		return fmt.Sprintf("The reference may not be greater than %d characters.", MaxReferenceChars)
	}
	return ""
}
