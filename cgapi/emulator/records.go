package emulator

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Mapped field names the platform requires, per data type.
const (
	fieldAccountName = "Account Name"
	fieldEmail       = "Email"
	fieldPhone       = "Phone"
	maxAccountName   = 255
	maxEmail         = 255
)

// putRecord is PUT /records/. The vendor pages show three ways to send a
// record; all are taken: a JSON body {"configuration": ..., "record": {...}},
// a form body, or (with an empty body) the query string
// configuration=...&record[Field]=... . Success is a 200 with an empty body.
func (e *Emulator) putRecord(c *call) {
	body, ok := readBody(c)
	if !ok {
		return
	}
	var (
		conf string
		rec  map[string]any
		errs fieldErrors
	)
	mediaType, _, _ := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if len(bytes.TrimSpace(body)) > 0 && mediaType != "application/x-www-form-urlencoded" {
		fields, ok := decodeObject(c, body)
		if !ok {
			return
		}
		rec = decodeRecord(&errs, fields["record"])
		switch raw := fields["configuration"]; kindOf(raw) {
		case kindAbsent:
		case kindString:
			conf = rawString(raw)
		default:
			errs.add("configuration", msgString("configuration"))
		}
	} else {
		values := c.r.URL.Query()
		if len(body) > 0 {
			form, err := url.ParseQuery(string(body))
			if err != nil {
				c.message(http.StatusBadRequest, "The request body is not a valid form.")
				return
			}
			values = form
		}
		conf = values.Get("configuration")
		rec = formRecord(&errs, values)
	}

	kind, known := e.recs.kind(conf)
	switch {
	case conf == "" && errs["configuration"] == nil:
		errs.add("configuration", msgRequired("configuration"))
	case conf != "" && !known:
		errs.add("configuration", msgSelected("configuration"))
	}
	var key string
	if rec != nil && conf != "" && known {
		key = checkRecord(&errs, kind, rec)
	}
	if errs != nil {
		c.invalid(errs)
		return
	}
	e.recs.put(conf, key, rec, e.opts.DiscardBodies)
	if kind == configContact {
		// A contact that exists may be named by activities from now on.
		if email, _ := recordValue(rec[fieldEmail]); email != "" {
			e.contacts.add(email)
		}
		if phone, _ := recordValue(rec[fieldPhone]); phone != "" {
			e.contacts.add(phone)
		}
	}
	c.raw(http.StatusOK, "", nil)
}

// decodeRecord decodes the "record" member, keeping numbers as written, and
// checks that it is a non-empty object of scalars.
func decodeRecord(errs *fieldErrors, raw json.RawMessage) map[string]any {
	switch kindOf(raw) {
	case kindAbsent:
		errs.add("record", msgRequired("record"))
		return nil
	case kindObject:
	default:
		errs.add("record", msgObject("record"))
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var rec map[string]any
	if err := dec.Decode(&rec); err != nil {
		errs.add("record", msgObject("record"))
		return nil
	}
	if len(rec) == 0 {
		errs.add("record", msgRequired("record"))
		return nil
	}
	for k, v := range rec {
		switch v.(type) {
		case map[string]any, []any:
			errs.add(k, "The "+k+" must be a string, number, boolean or null.")
		}
	}
	return rec
}

// formRecord collects record[Field]=value pairs of a form or query string.
func formRecord(errs *fieldErrors, values url.Values) map[string]any {
	rec := make(map[string]any)
	for k, vs := range values {
		name, ok := strings.CutPrefix(k, "record[")
		if !ok || !strings.HasSuffix(name, "]") || len(vs) == 0 {
			continue
		}
		rec[strings.TrimSuffix(name, "]")] = vs[0]
	}
	if len(rec) == 0 {
		if values.Has("record") {
			errs.add("record", msgObject("record"))
		} else {
			errs.add("record", msgRequired("record"))
		}
		return nil
	}
	return rec
}

// checkRecord applies the required fields of the configuration's data type
// and returns the record's identity key.
func checkRecord(errs *fieldErrors, kind configKind, rec map[string]any) string {
	if kind == configAccount {
		name, ok := recordText(errs, rec, fieldAccountName)
		switch {
		case !ok:
		case name == "":
			errs.add(fieldAccountName, "The "+fieldAccountName+" field is required.")
		case utf8.RuneCountInString(name) > maxAccountName:
			errs.add(fieldAccountName, msgMax(fieldAccountName, maxAccountName))
		}
		return name
	}

	email, emailOK := recordText(errs, rec, fieldEmail)
	phone := ""
	if v, present := rec[fieldPhone]; present && v != nil {
		if p, ok := recordValue(v); ok {
			phone = p
		} else {
			errs.add(fieldPhone, "The "+fieldPhone+" format is invalid.")
			return ""
		}
	}
	if !emailOK {
		return ""
	}
	switch {
	case email == "" && phone == "":
		errs.add(fieldEmail, "The Email field is required when Phone is not present.")
		errs.add(fieldPhone, "The Phone field is required when Email is not present.")
	case email != "" && utf8.RuneCountInString(email) > maxEmail:
		errs.add(fieldEmail, msgMax(fieldEmail, maxEmail))
	case email != "" && !validEmail(email):
		errs.add(fieldEmail, "The Email must be a valid email address.")
	}
	if phone != "" && !validPhone(phone) {
		errs.add(fieldPhone, "The Phone format is invalid.")
	}
	if email != "" {
		return foldContact(email)
	}
	return phone
}

// recordText reads a field that must be text when present; ok is false
// (with an error added) when it is of another type.
func recordText(errs *fieldErrors, rec map[string]any, field string) (string, bool) {
	switch v := rec[field].(type) {
	case nil:
		return "", true
	case string:
		return v, true
	}
	errs.add(field, "The "+field+" must be a string.")
	return "", false
}
