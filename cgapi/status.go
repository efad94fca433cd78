package cgapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// statusError maps a non-2xx answer onto the outcome table (README, "Outcomes")
// (README, "Outcomes"); nil for 2xx. It sees a 401 or 403 only when a
// fresh token was rejected too. q is the answer's quota.
func statusError(method, url string, r *response, q Quota) error {
	switch s := r.status; {
	case s >= 200 && s <= 299:
		return nil
	case s == http.StatusUnprocessableEntity, s == http.StatusBadRequest, s == http.StatusRequestEntityTooLarge:
		return dataError(s, r.body)
	case s == http.StatusTooManyRequests:
		return &RateLimitError{RetryAfter: parseRetryAfter(r.header.Get("Retry-After"), time.Now()), Quota: q}
	case s == http.StatusUnauthorized, s == http.StatusForbidden:
		return &AuthError{Status: s, Err: errors.New(messageOr(r.body, s))}
	case s >= 500:
		return &TransientError{Status: s, Err: errors.New(messageOr(r.body, s))}
	default:
		// 404, 405, every other 4xx, and any 1xx/3xx that was not followed:
		// the URL is wrong, not the data.
		return &ConfigError{Status: s, Method: method, URL: stripQuery(url)}
	}
}

// dataError parses the Laravel validation shape
// {"message": "...", "errors": {"field": ["msg", ...]}}. 400 and 413 may
// carry only a message, or not be JSON at all.
func dataError(status int, body []byte) *DataError {
	e := &DataError{Status: status}
	var doc struct {
		Message json.RawMessage            `json:"message"`
		Errors  map[string]json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(body, &doc) != nil {
		e.Message = http.StatusText(status)
		return e
	}
	e.Message = jsonText(doc.Message)
	if len(doc.Errors) > 0 {
		e.Errors = make(map[string][]string, len(doc.Errors))
		for field, raw := range doc.Errors {
			e.Errors[field] = fieldMessages(raw)
		}
	}
	if e.Message == "" && len(e.Errors) == 0 {
		e.Message = http.StatusText(status)
	}
	return e
}

// fieldMessages reads one value of "errors": normally a list of strings;
// a lone string or anything else is kept rather than lost.
func fieldMessages(raw json.RawMessage) []string {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil {
		out := make([]string, 0, len(list))
		for _, m := range list {
			if t := jsonText(m); t != "" {
				out = append(out, t)
			}
		}
		return out
	}
	if t := jsonText(raw); t != "" {
		return []string{t}
	}
	return nil
}

// jsonText is a JSON string's value, or any other JSON value's text; ""
// for null or nothing.
func jsonText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return oneLine(s)
	}
	return oneLine(string(raw))
}

// errorMessage is the "message" (or OAuth2 "error_description"/"error") of
// a JSON error body, "" when there is none.
func errorMessage(body []byte) string {
	var doc struct {
		Message          json.RawMessage `json:"message"`
		ErrorDescription json.RawMessage `json:"error_description"`
		Error            json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return ""
	}
	for _, m := range []json.RawMessage{doc.Message, doc.ErrorDescription, doc.Error} {
		if t := jsonText(m); t != "" {
			return t
		}
	}
	return ""
}

func messageOr(body []byte, status int) string {
	if m := errorMessage(body); m != "" {
		return m
	}
	return http.StatusText(status)
}

// parseRetryAfter reads Retry-After as delay-seconds or an HTTP date
// (RFC 9110 section 10.2.3), as a duration from now; 0 when absent,
// unparsable or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		const most = int64(1<<63-1) / int64(time.Second)
		return time.Duration(min(secs, most)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// stripQuery drops the query string, which errors need not repeat.
func stripQuery(url string) string {
	if i := strings.IndexByte(url, '?'); i >= 0 {
		return url[:i]
	}
	return url
}
