package cgapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Config configures a Client. Build it with URLsForRegion or explicit URLs.
type Config struct {
	AuthURL    string // full token URL, e.g. https://auth.eu.customergauge.com/oauth2/token
	ImportsURL string // base; the client appends /activities/ and /records/
	APIURL     string // base; the client appends /v7/rest/sync/responses

	ClientID     string
	ClientSecret string // never logged, never in an error

	// Timeout bounds every call, token calls included (CG_HTTP_TIMEOUT).
	Timeout time.Duration
	// Transport is used for API and token calls; nil means
	// http.DefaultTransport. Tracing wraps it (otelhttp).
	Transport http.RoundTripper
	// UserAgent, e.g. "cgworker/1.2.3".
	UserAgent string
}

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

// ActivityResult is the decoded "data" of a successful PUT /activities/,
// zero when the API answered without a body.
type ActivityResult struct {
	ID        json.Number `json:"id"`
	Reference string      `json:"reference"`
}

// Client talks to the CustomerGauge API. It is safe for concurrent use.
type Client struct {
	cfg Config
}

// New validates cfg and returns a client.
func New(cfg Config) (*Client, error) { panic("TODO") }

// PutActivity sends body, the JSON of one activity, unchanged.
func (c *Client) PutActivity(ctx context.Context, body []byte) (ActivityResult, error) {
	panic("TODO")
}

// PutRecord sends {"configuration": configuration, "record": record}, with
// record (a JSON object) unchanged.
func (c *Client) PutRecord(ctx context.Context, configuration string, record json.RawMessage) error {
	panic("TODO")
}

// SyncResponses fetches one page.
func (c *Client) SyncResponses(ctx context.Context, q SyncQuery) (SyncPage, error) {
	panic("TODO")
}

// URLsForRegion gives the default auth, imports and API base URLs for
// region eu, us or au.
func URLsForRegion(region string) (auth, imports, api string, err error) { panic("TODO") }
