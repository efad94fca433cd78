package emulator

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Limits of PUT /activities/, in characters.
const (
	maxAccount   = 255
	maxContact   = 255
	maxType      = 100
	maxSource    = 100
	maxReference = 128
)

// activityMembers are the raw values of the members the API reads, slices
// of the body; nil when absent.
type activityMembers struct {
	account, typ, source, reference, contact, happenedAt, object, array []byte
}

// putActivity is PUT /activities/: validate, then create or update by
// reference. Members the API does not know are ignored, as Laravel does.
func (e *Emulator) putActivity(c *call) {
	body, ok := readBody(c)
	if !ok || !checkObject(c, body) {
		return
	}
	var m activityMembers
	forEachMember(body, func(key, value []byte) {
		switch string(key) {
		case "account":
			m.account = value
		case "type":
			m.typ = value
		case "source":
			m.source = value
		case "reference":
			m.reference = value
		case "contact":
			m.contact = value
		case "happened_at":
			m.happenedAt = value
		case "additional_information_object":
			m.object = value
		case "additional_information_array":
			m.array = value
		}
	})
	a, errs := e.validateActivity(&m)
	if errs != nil {
		c.invalid(errs)
		return
	}
	if !e.opts.DiscardBodies {
		a.Body = body
	}
	res := e.acts.put(a)
	c.json(http.StatusOK, res.appendJSON(make([]byte, 0, 128)))
}

// validateActivity applies the API's rules and returns the parsed activity.
func (e *Emulator) validateActivity(m *activityMembers) (Activity, fieldErrors) {
	var errs fieldErrors
	a := Activity{
		Account:   stringField(&errs, "account", m.account, true, maxAccount),
		Type:      stringField(&errs, "type", m.typ, true, maxType),
		Source:    stringField(&errs, "source", m.source, true, maxSource),
		Reference: stringField(&errs, "reference", m.reference, false, maxReference),
		Contact:   stringField(&errs, "contact", m.contact, false, maxContact),
	}
	if a.Contact != "" && !e.contacts.has(a.Contact) {
		errs.add("contact", msgSelected("contact"))
	}

	if at := stringField(&errs, "happened_at", m.happenedAt, false, 255); at != "" {
		t, ok := parseHappenedAt(at)
		if !ok {
			errs.add("happened_at", "The happened at is not a valid date.")
		}
		a.HappenedAt = t
	} else {
		a.HappenedAt = time.Now().UTC().Truncate(time.Second)
	}

	const obj, arr = "additional_information_object", "additional_information_array"
	objKind, arrKind := kindOf(m.object), kindOf(m.array)
	if objKind != kindAbsent && objKind != kindObject {
		errs.add(obj, msgObject(obj))
	}
	switch arrKind {
	case kindAbsent:
	case kindObject:
		forEachMember(m.array, func(key, value []byte) {
			if kindOf(value) != kindString {
				field := arr + "." + string(key)
				errs.add(field, msgString(field))
			}
		})
	default:
		errs.add(arr, msgObject(arr))
	}
	if objKind != kindAbsent && arrKind != kindAbsent {
		errs.add(arr, "The "+attr(arr)+" field is prohibited when "+attr(obj)+" is present.")
	}
	return a, errs
}

// appendJSON renders the API's success body:
// {"data":{"id":N,"reference":"..."|null,"classification_id":N,"account_id":N,"contact_id":N|null}}
func (r activityResult) appendJSON(b []byte) []byte {
	b = append(b, `{"data":{"id":`...)
	b = strconv.AppendInt(b, r.id, 10)
	b = append(b, `,"reference":`...)
	if r.reference == "" {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, r.reference)
	}
	b = append(b, `,"classification_id":`...)
	b = strconv.AppendInt(b, r.classID, 10)
	b = append(b, `,"account_id":`...)
	b = strconv.AppendInt(b, r.accountID, 10)
	b = append(b, `,"contact_id":`...)
	if r.contactID == 0 {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, r.contactID, 10)
	}
	return append(b, "}}"...)
}

// appendJSONString appends s as a JSON string, without a detour through
// json.Marshal for the usual plain ASCII reference.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
