package cgapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"
)

// Config configures a Client. Build it with URLsForRegion or explicit URLs.
type Config struct {
	AuthURL    string // full token URL, e.g. https://auth.eu.customergauge.com/oauth2/token
	ImportsURL string // base; the client appends /activities/ and /records/
	APIURL     string // base; the client appends /v7/rest/sync/responses

	ClientID     string
	ClientSecret string // never logged, never in an error

	// Timeout bounds every call, token calls included (CG_HTTP_TIMEOUT);
	// zero means DefaultTimeout.
	Timeout time.Duration
	// Transport is used for API and token calls; nil means a clone of
	// http.DefaultTransport sized for many parallel calls. Tracing wraps
	// it for client spans (worker/telemetry.HTTPTransport); the client
	// sets each API call's traceparent itself.
	Transport http.RoundTripper
	// UserAgent, e.g. "cgworker/1.2.3"; empty means "cgworker".
	UserAgent string
	// TokenCall, when set, makes each token fetch: the replica's flow
	// controller for the token endpoint (cgapi/flow), so a failing token
	// endpoint has a breaker of its own. nil calls fetch directly.
	TokenCall func(ctx context.Context, fetch func(context.Context) error) error
}

// DefaultTimeout is the per-call timeout when Config.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// Response body limits: error and activity bodies are small; a sync page of
// 1000 expanded responses can be large.
const (
	smallBodyLimit = 1 << 20
	syncBodyLimit  = 64 << 20
	drainLimit     = 256 << 10 // read further to reuse the connection; beyond, close it
)

// Client talks to the CustomerGauge API. It is safe for concurrent use.
type Client struct {
	http      *http.Client
	tokens    *tokenSource
	timeout   time.Duration
	userAgent []string // the User-Agent header's value
	syncLimit int64    // syncBodyLimit; tests lower it (export_test.go)

	activitiesURL string
	recordsURL    string
	syncURL       string
}

// SettingError is a Config field that is missing or malformed. Setting is
// the environment variable the field comes from (CG_AUTH_URL, CG_CLIENT_ID,
// ...); Problem never contains the secret.
type SettingError struct {
	Setting string
	Problem string
}

func (e *SettingError) Error() string { return e.Setting + ": " + e.Problem }

// Validate checks the URLs, the client credentials and the timeout, and
// returns a *SettingError for the first one at fault.
func (c Config) Validate() error {
	urls := []struct {
		setting, raw string
		base         bool
	}{
		{"CG_AUTH_URL", c.AuthURL, false},
		{"CG_IMPORTS_URL", c.ImportsURL, true},
		{"CG_API_URL", c.APIURL, true},
	}
	for _, u := range urls {
		if err := checkURL(u.setting, u.raw, u.base); err != nil {
			return err
		}
	}
	switch {
	case c.ClientID == "":
		return &SettingError{"CG_CLIENT_ID", "missing"}
	case c.ClientSecret == "":
		return &SettingError{"CG_CLIENT_SECRET", "missing (or set CG_CLIENT_SECRET_FILE)"}
	case c.Timeout < 0:
		return &SettingError{"CG_HTTP_TIMEOUT", c.Timeout.String() + " is negative"}
	}
	return nil
}

// New validates cfg (see Config.Validate) and returns a client.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The client appends paths to the base URLs.
	cfg.ImportsURL = strings.TrimRight(cfg.ImportsURL, "/")
	cfg.APIURL = strings.TrimRight(cfg.APIURL, "/")
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "cgworker"
	}
	transport := cfg.Transport
	if transport == nil {
		transport = NewTransport()
	}
	return &Client{
		// No client Timeout: each call sets its own deadline, which also
		// covers reading the body.
		http:      &http.Client{Transport: transport},
		tokens:    newTokenSource(cfg, userAgentTransport{base: transport, userAgent: cfg.UserAgent}, cfg.Timeout),
		timeout:   cfg.Timeout,
		userAgent: []string{cfg.UserAgent},
		syncLimit: syncBodyLimit,

		activitiesURL: cfg.ImportsURL + "/activities/",
		recordsURL:    cfg.ImportsURL + "/records/",
		syncURL:       cfg.APIURL + "/v7/rest/sync/responses",
	}, nil
}

// NewTransport returns the transport New uses when Config.Transport is
// nil, for callers that wrap it (tracing) and must keep its sizing: enough
// idle connections for the worker's parallel PUTs (CG_CONCURRENCY, 64 by
// default) to reuse them instead of redialling.
func NewTransport() http.RoundTripper {
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return http.DefaultTransport
	}
	t = t.Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	return t
}

// PutActivity sends body, the JSON of one activity, unchanged. Any 2xx is
// success, whatever its body: the activity is stored, and nothing in the
// answer is needed.
func (c *Client) PutActivity(ctx context.Context, body []byte) error {
	_, err := c.call(ctx, http.MethodPut, c.activitiesURL, body, 0)
	return err
}

// PutRecord sends {"configuration": configuration, "record": record}, with
// record (a JSON object) unchanged.
func (c *Client) PutRecord(ctx context.Context, configuration string, record json.RawMessage) error {
	conf, err := json.Marshal(configuration)
	if err != nil {
		return fmt.Errorf("cgapi: encoding configuration: %w", err)
	}
	if len(record) == 0 {
		record = json.RawMessage("null") // let the API say what is missing
	}
	body := make([]byte, 0, len(`{"configuration":,"record":}`)+len(conf)+len(record))
	body = append(body, `{"configuration":`...)
	body = append(body, conf...)
	body = append(body, `,"record":`...)
	body = append(body, record...)
	body = append(body, '}')
	_, err = c.call(ctx, http.MethodPut, c.recordsURL, body, 0)
	return err
}

// response is an API answer read into memory.
type response struct {
	status    int
	header    http.Header
	body      []byte
	truncated bool // the body was longer than the limit and was cut
}

// call sends one API request and returns its 2xx response, or the error the
// outcome table (README, "Outcomes") calls for. limit bounds the body of a 2xx
// answer and of an error; 0 means the caller does not need a 2xx body (a
// PUT): it is read but not kept, and an error's is read up to
// smallBodyLimit. When the API rejects the token (401
// or 403) the token is dropped and the request repeated once with a new
// one; a second rejection is an *AuthError.
//
// Whatever the server said is redacted (see redactor) before it leaves as
// an error.
func (c *Client) call(ctx context.Context, method, url string, body []byte, limit int64) (*response, error) {
	resp, tok, err := c.attempt(ctx, method, url, body, limit)
	if err == nil && isAuthRejection(resp.status) {
		c.tokens.invalidate(tok)
		resp, tok, err = c.attempt(ctx, method, url, body, limit)
	}
	if err == nil {
		q := quotaOf(resp.header) // once: the flow controller's, and a 429's
		reportQuota(ctx, q)
		err = statusError(method, url, resp, q)
	}
	if err != nil {
		return nil, c.tokens.redactError(err, tok)
	}
	return resp, nil
}

func isAuthRejection(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}

// attempt makes one request under its own timeout, token wait included, and
// reads the body. It returns the token it used.
func (c *Client) attempt(ctx context.Context, method, url string, body []byte, limit int64) (*response, string, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	cred, err := c.tokens.token(actx)
	tok := cred.token
	if err != nil {
		var ae *AuthError
		if errors.As(err, &ae) {
			return nil, "", err
		}
		return nil, "", c.transportError(ctx, method, url, fmt.Errorf("waiting for an access token: %w", err))
	}

	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, url, rd)
	if err != nil {
		return nil, tok, fmt.Errorf("cgapi: %s %s: %w", method, stripQuery(url), err)
	}
	// The values are slices built once and shared by every request: no
	// one changes a request's header values in place (http.Client copies
	// the header before a redirect, and Set and Add replace a slice of
	// length and capacity one), and Set would allocate each per call.
	hdr := req.Header
	hdr["Authorization"] = cred.header
	hdr["User-Agent"] = c.userAgent
	hdr["Accept"] = jsonValue
	if body != nil {
		hdr["Content-Type"] = jsonValue
	}
	// The W3C trace context of the call, set here on a request of our own:
	// a transport that propagates it (worker/telemetry) leaves a request
	// that carries one as it is, instead of cloning it to add the header.
	propagation.TraceContext{}.Inject(actx, propagation.HeaderCarrier(req.Header))

	hr, err := c.http.Do(req)
	if err != nil {
		return nil, tok, c.transportError(ctx, method, url, err)
	}
	cut := false // the body was read only up to a limit
	defer func() {
		if cut { // drain a little more, so the connection can be reused
			_, _ = io.Copy(io.Discard, io.LimitReader(hr.Body, drainLimit))
		}
		_ = hr.Body.Close()
	}()
	success := hr.StatusCode >= 200 && hr.StatusCode <= 299
	if success && limit == 0 {
		// A PUT's answer carries nothing the worker needs: it is read
		// through a pooled buffer rather than kept, yet read all the same,
		// so that a body that stalls or breaks fails the call as before.
		n, err := io.Copy(io.Discard, io.LimitReader(hr.Body, smallBodyLimit+1))
		if err != nil {
			return nil, tok, c.transportError(ctx, method, url, err)
		}
		cut = n > smallBodyLimit
		return &response{status: hr.StatusCode, header: hr.Header}, tok, nil
	}
	if limit == 0 {
		limit = smallBodyLimit // an error answer is read for its message
	}
	data, err := io.ReadAll(io.LimitReader(hr.Body, limit+1))
	if err != nil {
		return nil, tok, c.transportError(ctx, method, url, err)
	}
	resp := &response{status: hr.StatusCode, header: hr.Header, body: data}
	if int64(len(data)) > limit {
		resp.body, resp.truncated, cut = data[:limit], true, true
	}
	return resp, tok, nil
}

// jsonValue is the Accept and Content-Type header value of every call.
var jsonValue = []string{"application/json"}

// transportError classifies a failure to get an answer: the caller's own
// cancellation stays a cancellation (not retryable); anything else, the
// call's timeout included, is a *TransientError without a status.
func (c *Client) transportError(ctx context.Context, method, url string, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("cgapi: %s %s: %w", method, stripQuery(url), ctx.Err())
	}
	return &TransientError{Err: err}
}

// userAgentTransport sets the User-Agent of token requests, which x/oauth2
// builds itself.
type userAgentTransport struct {
	base      http.RoundTripper
	userAgent string
}

func (t userAgentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("User-Agent") == "" {
		r = r.Clone(r.Context()) // a RoundTripper must not modify its request
		r.Header.Set("User-Agent", t.userAgent)
	}
	return t.base.RoundTrip(r)
}
