package emulator

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Paging limits of GET /v7/rest/sync/responses.
const (
	defaultPerPage = 25
	maxPerPage     = 1000
)

// CursorMode says how a sync page carries cursor.next, so tests can check
// how clients treat the variations.
type CursorMode int32

const (
	CursorNumber  CursorMode = iota // "cursor":{"next":123}, as the API does
	CursorString                    // "cursor":{"next":"123"}
	CursorNull                      // "cursor":{"next":null}
	CursorMissing                   // "cursor":{}
)

// SetCursorMode sets how sync pages carry cursor.next from now on.
func (e *Emulator) SetCursorMode(m CursorMode) { e.cursorMode.Store(int32(m)) }

// syncQuery is a validated sync request.
type syncQuery struct {
	perPage     int
	cursor      int
	with        expansions
	number      *int64
	periodField string // period[field]; "": no period filter
	periodStart string
	periodEnd   string
}

// syncResponses is GET /v7/rest/sync/responses: responses after the cursor,
// oldest first. The cursor is the position of the last response returned;
// past the end, data is empty and cursor.next repeats the cursor.
func (e *Emulator) syncResponses(c *call) {
	q, errs := parseSyncQuery(c.r.URL.Query())
	if errs != nil {
		c.invalid(errs)
		return
	}
	s := &e.responses
	b := make([]byte, 0, 1024*min(q.perPage, 64))
	b = append(b, `{"data":[`...)
	next, n := q.cursor, 0
	s.mu.RLock()
	for pos := q.cursor + 1; pos <= s.total && n < q.perPage; pos++ {
		item, ok := s.render(pos, &q)
		if !ok {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, item...)
		next, n = pos, n+1
	}
	s.mu.RUnlock()
	b = append(b, `],"cursor":{`...)
	switch CursorMode(e.cursorMode.Load()) {
	case CursorString:
		b = append(b, `"next":"`...)
		b = strconv.AppendInt(b, int64(next), 10)
		b = append(b, '"')
	case CursorNull:
		b = append(b, `"next":null`...)
	case CursorMissing:
	default:
		b = append(b, `"next":`...)
		b = strconv.AppendInt(b, int64(next), 10)
	}
	b = append(b, "}}"...)
	c.json(http.StatusOK, b)
}

// parseSyncQuery validates the query string as the API does.
func parseSyncQuery(v url.Values) (syncQuery, fieldErrors) {
	var errs fieldErrors
	q := syncQuery{perPage: defaultPerPage}

	if s, ok := param(v, "per_page"); ok {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			errs.add("per_page", "The per page must be an integer.")
		case n < 1 || n > maxPerPage:
			errs.add("per_page", "The per page must be between 1 and 1000.")
		default:
			q.perPage = n
		}
	}
	if s, ok := param(v, "cursor"); ok {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			errs.add("cursor", "The cursor must be an integer.")
		case n < 0:
			errs.add("cursor", "The cursor must be at least 0.")
		default:
			q.cursor = n
		}
	}
	for i, w := range withValues(v) {
		if !parseExpansion(&q.with, w) {
			k := "with." + strconv.Itoa(i)
			errs.add(k, msgSelected(k))
		}
	}
	if s, ok := param(v, "number_customergauge"); ok {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			errs.add("number_customergauge", "The number customergauge must be an integer.")
		} else {
			q.number = &n
		}
	}
	// filter names an Outbound filter set up in the platform; the emulator
	// has none configured, so any reference passes everything.

	field, hasField := param(v, "period[field]")
	start, hasStart := param(v, "period[start]")
	end, hasEnd := param(v, "period[end]")
	if hasField {
		if isPeriodField(field) {
			q.periodField = field
		} else {
			errs.add("period.field", msgSelected("period.field"))
		}
	} else if hasStart || hasEnd {
		errs.add("period.field", "The period.field field is required when period.start / period.end is present.")
	}
	for _, p := range []struct {
		key, value string
		present    bool
		dst        *string
	}{{"period.start", start, hasStart, &q.periodStart}, {"period.end", end, hasEnd, &q.periodEnd}} {
		if !p.present {
			continue
		}
		if _, err := time.Parse(time.DateOnly, p.value); err != nil || len(p.value) != len(time.DateOnly) {
			errs.add(p.key, "The "+p.key+" does not match the format Y-m-d.")
			continue
		}
		*p.dst = p.value
	}
	return q, errs
}

// param returns a non-empty query parameter.
func param(v url.Values, key string) (string, bool) {
	s := strings.TrimSpace(v.Get(key))
	return s, s != ""
}

// withValues lists the with[] expansions in the order PHP would index
// them: with[]=a&with[]=b, with=a, and explicit with[0]=a.
func withValues(v url.Values) []string {
	out := append(slices.Clone(v["with[]"]), v["with"]...)
	type indexed struct {
		i     int
		value string
	}
	var explicit []indexed
	for k, vs := range v {
		inner, ok := strings.CutPrefix(k, "with[")
		if !ok || !strings.HasSuffix(inner, "]") || inner == "]" || len(vs) == 0 {
			continue
		}
		i, err := strconv.Atoi(strings.TrimSuffix(inner, "]"))
		if err != nil {
			i = 1 << 30 // named keys sort last
		}
		explicit = append(explicit, indexed{i, vs[0]})
	}
	slices.SortFunc(explicit, func(a, b indexed) int { return a.i - b.i })
	for _, x := range explicit {
		out = append(out, x.value)
	}
	return out
}
