package cgapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// SyncQuery is one page request of GET /v7/rest/sync/responses.
type SyncQuery struct {
	PerPage             int      // 1..1000; 0 leaves it to the API
	Cursor              string   // "" for the first page
	With                []string // with[] expansions
	NumberCustomerGauge string
	Filter              string
	PeriodField         string
	PeriodStart         string // yyyy-mm-dd
	PeriodEnd           string // yyyy-mm-dd
}

// SyncPage is one page of synced responses.
type SyncPage struct {
	Data []json.RawMessage // response objects exactly as the API returned them
	Next string            // cursor.next; "" when missing or null
}

// SyncResponses fetches one page. A 200 whose body is not the expected
// {"data": [...], "cursor": {"next": ...}} is a *TransientError: a proxy or
// a broken deployment answered, and the next poll may fare better.
func (c *Client) SyncResponses(ctx context.Context, q SyncQuery) (SyncPage, error) {
	u := c.syncURL
	if v := q.values().Encode(); v != "" {
		u += "?" + v
	}
	resp, err := c.call(ctx, http.MethodGet, u, nil, c.syncLimit)
	if err != nil {
		return SyncPage{}, err
	}
	if resp.truncated {
		// Retryable: a smaller CG_SYNC_PER_PAGE, or a fixed API, gets past it.
		return SyncPage{}, &TransientError{Status: resp.status, Err: fmt.Errorf("sync page too large (over %s)", byteSize(c.syncLimit))}
	}
	page, err := parseSyncPage(resp.body)
	if err != nil {
		// The error may quote the page: redacted like any server text.
		return SyncPage{}, c.tokens.redactError(&TransientError{Status: resp.status, Err: err}, "")
	}
	return page, nil
}

// byteSize writes whole mebibytes as such, other sizes in bytes.
func byteSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

func (q SyncQuery) values() url.Values {
	v := url.Values{}
	if q.PerPage > 0 {
		v.Set("per_page", strconv.Itoa(q.PerPage))
	}
	set := func(key, val string) {
		if val != "" {
			v.Set(key, val)
		}
	}
	set("cursor", q.Cursor)
	for _, w := range q.With {
		if w != "" {
			v.Add("with[]", w)
		}
	}
	set("number_customergauge", q.NumberCustomerGauge)
	set("filter", q.Filter)
	set("period[field]", q.PeriodField)
	set("period[start]", q.PeriodStart)
	set("period[end]", q.PeriodEnd)
	return v
}

func parseSyncPage(body []byte) (SyncPage, error) {
	var doc struct {
		Data   *[]json.RawMessage `json:"data"`
		Cursor *struct {
			Next json.RawMessage `json:"next"`
		} `json:"cursor"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return SyncPage{}, fmt.Errorf("sync page is not the expected JSON: %w", err)
	}
	if doc.Data == nil {
		// Without "data" nothing says the sync is done; do not guess.
		return SyncPage{}, errors.New(`sync page has no "data" array`)
	}
	page := SyncPage{Data: *doc.Data}
	if doc.Cursor != nil {
		next, err := cursorText(doc.Cursor.Next)
		if err != nil {
			return SyncPage{}, err
		}
		page.Next = next
	}
	return page, nil
}

// cursorText reads cursor.next, documented as an integer but accepted as a
// string too; "" when missing or null.
func cursorText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("sync page cursor.next: %w", err)
		}
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", fmt.Errorf("sync page cursor.next is neither a number nor a string: %s", oneLine(string(raw)))
	}
	return n.String(), nil
}
