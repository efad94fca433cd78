package cgapitest

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

// putActivity is PUT /activities/: validate, then create or update by
// reference. Members the API does not know are ignored, as Laravel does.
func (e *Emulator) putActivity(c *call) {
	body, ok := readBody(c)
	if !ok {
		return
	}
	fields, ok := decodeObject(c, body)
	if !ok {
		return
	}
	a, errs := e.validateActivity(fields)
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
func (e *Emulator) validateActivity(fields map[string]json.RawMessage) (Activity, fieldErrors) {
	var errs fieldErrors
	a := Activity{
		Account:   stringField(&errs, fields, "account", true, maxAccount),
		Type:      stringField(&errs, fields, "type", true, maxType),
		Source:    stringField(&errs, fields, "source", true, maxSource),
		Reference: stringField(&errs, fields, "reference", false, maxReference),
		Contact:   stringField(&errs, fields, "contact", false, maxContact),
	}
	if a.Contact != "" && !e.contacts.has(a.Contact) {
		errs.add("contact", msgSelected("contact"))
	}

	if at := stringField(&errs, fields, "happened_at", false, 255); at != "" {
		t, ok := parseHappenedAt(at)
		if !ok {
			errs.add("happened_at", "The happened at is not a valid date.")
		}
		a.HappenedAt = t
	} else {
		a.HappenedAt = time.Now().UTC().Truncate(time.Second)
	}

	const obj, arr = "additional_information_object", "additional_information_array"
	objKind, arrKind := kindOf(fields[obj]), kindOf(fields[arr])
	if objKind != kindAbsent && objKind != kindObject {
		errs.add(obj, msgObject(obj))
	}
	switch arrKind {
	case kindAbsent:
	case kindObject:
		var values map[string]json.RawMessage
		_ = json.Unmarshal(fields[arr], &values) // validated by the outer decode
		for k, v := range values {
			if kindOf(v) != kindString {
				errs.add(arr+"."+k, msgString(arr+"."+k))
			}
		}
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
		ref, _ := json.Marshal(r.reference)
		b = append(b, ref...)
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
