package cgapi_test

// Cases the emulator cannot produce (a token endpoint that breaks in odd
// ways, a 200 that is not JSON, an HTML 413) run against small httptest
// servers: real HTTP all the same.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/cgworker/cgworker/cgapi"
)

const (
	stubClientID = "stub-client"
	stubSecret   = "stub-s3cret-never-in-errors"
	// secret is the emulator tests' client secret.
	secret = "emu-s3cret-never-in-errors"
)

// stub is an API on loopback whose token endpoint and API handler each test
// chooses. Tokens are "stub-token-N".
type stub struct {
	URL    string
	Tokens atomic.Int32 // token requests answered with a token

	mu       sync.Mutex
	tokenFn  http.HandlerFunc // nil: issue a token
	apiFn    http.HandlerFunc
	tokenReq []http.Header
	tokenTTL int // expires_in; 0 omits it
}

func newStub(t *testing.T, api http.HandlerFunc) *stub {
	t.Helper()
	s := &stub{apiFn: api, tokenTTL: 3600}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func (s *stub) setToken(fn http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenFn = fn
}

func (s *stub) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	tokenFn, apiFn, ttl := s.tokenFn, s.apiFn, s.tokenTTL
	s.mu.Unlock()
	if r.URL.Path != "/oauth2/token" {
		apiFn(w, r)
		return
	}
	if tokenFn != nil {
		tokenFn(w, r)
		return
	}
	s.issueToken(w, r, ttl)
}

func (s *stub) issueToken(w http.ResponseWriter, r *http.Request, ttl int) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" ||
		r.PostForm.Get("client_id") != stubClientID || r.PostForm.Get("client_secret") != stubSecret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"invalid_client"}`)
		return
	}
	s.mu.Lock()
	s.tokenReq = append(s.tokenReq, r.Header.Clone())
	s.mu.Unlock()
	n := s.Tokens.Add(1)
	w.Header().Set("Content-Type", "application/json")
	body := map[string]any{"access_token": fmt.Sprintf("stub-token-%d", n), "token_type": "Bearer"}
	if ttl > 0 {
		body["expires_in"] = ttl
	}
	_ = json.NewEncoder(w).Encode(body)
}

func (s *stub) client(t *testing.T, timeout time.Duration) *cgapi.Client {
	t.Helper()
	c, err := cgapi.New(cgapi.Config{
		AuthURL: s.URL + "/oauth2/token", ImportsURL: s.URL, APIURL: s.URL,
		ClientID: stubClientID, ClientSecret: stubSecret, Timeout: timeout, UserAgent: "cgworker/test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// noSecret fails the test when an error's text holds the client secret or
// an access token.
func noSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{stubSecret, "stub-token-", secret, "Bearer "} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains a secret (%q)", err, s)
		}
	}
}

func answer(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func TestRequestsAsSent(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, path, query string
		header              http.Header
		body                string
	}
	var mu sync.Mutex
	var got []seen
	s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(b)})
		mu.Unlock()
		if r.Method == http.MethodGet {
			answer(200, "application/json", `{"data":[],"cursor":{"next":null}}`)(w, r)
		}
	})
	c := s.client(t, 5*time.Second)
	// The caller's trace context goes with every call, whatever the
	// transport.
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	ctx := trace.ContextWithRemoteSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true}))
	const wantTraceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

	activity := `{"account":"ACME",  "type":"Ticket","source":"Desk","n":1.50000000000000000001}`
	if err := c.PutActivity(ctx, []byte(activity)); err != nil {
		t.Fatal(err)
	}
	if err := c.PutRecord(ctx, `con"f`, json.RawMessage(`{"Account Name": "ACME", "Big": 12345678901234567890}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SyncResponses(ctx, cgapi.SyncQuery{PerPage: 5, Cursor: "9", With: []string{"tags", "questions"}, PeriodField: "date_creation"}); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("got %d requests, want 3", len(got))
	}
	if got[0].method != "PUT" || got[0].path != "/activities/" || got[0].body != activity {
		t.Errorf("activity request: %s %s %q", got[0].method, got[0].path, got[0].body)
	}
	wantRecord := `{"configuration":"con\"f","record":{"Account Name": "ACME", "Big": 12345678901234567890}}`
	if got[1].method != "PUT" || got[1].path != "/records/" || got[1].body != wantRecord {
		t.Errorf("record request: %s %s %q, want body %q", got[1].method, got[1].path, got[1].body, wantRecord)
	}
	if got[2].method != "GET" || got[2].path != "/v7/rest/sync/responses" ||
		got[2].query != "cursor=9&per_page=5&period%5Bfield%5D=date_creation&with%5B%5D=tags&with%5B%5D=questions" {
		t.Errorf("sync request: %s %s?%s", got[2].method, got[2].path, got[2].query)
	}
	for i, r := range got {
		h := r.header
		if h.Get("Authorization") != "Bearer stub-token-1" || h.Get("User-Agent") != "cgworker/test" || h.Get("Accept") != "application/json" {
			t.Errorf("request %d headers: %v", i, h)
		}
		if ct := h.Get("Content-Type"); (r.method == "PUT") != (ct == "application/json") {
			t.Errorf("request %d (%s): Content-Type %q", i, r.method, ct)
		}
		if tp := h.Get("Traceparent"); tp != wantTraceparent {
			t.Errorf("request %d (%s): traceparent %q, want %q", i, r.method, tp, wantTraceparent)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tokenReq) != 1 || s.tokenReq[0].Get("User-Agent") != "cgworker/test" || s.tokenReq[0].Get("Authorization") != "" {
		t.Errorf("token requests: %v (want one, user agent set, credentials in the form body)", s.tokenReq)
	}
}

func TestNonJSONAnswers(t *testing.T) {
	t.Parallel()
	s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v7/rest/sync/responses":
			answer(200, "text/html", "<html><body>Welcome to nginx!</body></html>")(w, r)
		case "/activities/":
			answer(413, "text/html", "<html><head><title>413 Request Entity Too Large</title></head></html>")(w, r)
		default:
			answer(200, "text/html", "<html>not what you think</html>")(w, r)
		}
	})
	c := s.client(t, 5*time.Second)

	_, err := c.SyncResponses(t.Context(), cgapi.SyncQuery{})
	var te *cgapi.TransientError
	if !errors.As(err, &te) || te.Status != 200 || !cgapi.Retryable(err) {
		t.Errorf("sync with an HTML 200: err = %v, want a retryable *TransientError with status 200", err)
	}

	err = c.PutActivity(t.Context(), []byte(`{}`))
	var de *cgapi.DataError
	if !errors.As(err, &de) || de.Status != 413 || len(de.Errors) != 0 || cgapi.Retryable(err) {
		t.Errorf("HTML 413: err = %v, want a non-retryable *DataError 413", err)
	}

	// A 2xx is a success whatever its body says.
	if err := c.PutRecord(t.Context(), "account", json.RawMessage(`{}`)); err != nil {
		t.Errorf("records with an HTML 200: %v", err)
	}
}

func TestTokenEndpointFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		handler http.HandlerFunc
		status  int
	}{
		{"refused", answer(401, "application/json", `{"error":"invalid_client","error_description":"Client authentication failed"}`), 401},
		{"server error", answer(503, "text/html", "<html>down</html>"), 503},
		{"echoes the secret", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			answer(400, "application/json", `{"message":"bad secret `+r.PostForm.Get("client_secret")+`"}`)(w, r)
		}, 400},
		{"no token", answer(200, "application/json", `{"token_type":"Bearer"}`), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var apiCalls atomic.Int32
			s := newStub(t, func(w http.ResponseWriter, r *http.Request) { apiCalls.Add(1) })
			s.setToken(tc.handler)
			err := s.client(t, 5*time.Second).PutActivity(t.Context(), []byte(`{}`))
			var ae *cgapi.AuthError
			if !errors.As(err, &ae) || ae.Status != tc.status || !cgapi.Retryable(err) || !cgapi.IsOutage(err) {
				t.Errorf("err = %v (%T), want a retryable *AuthError with status %d", err, err, tc.status)
			}
			noSecret(t, err)
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
			if apiCalls.Load() != 0 {
				t.Errorf("the API was called without a token")
			}
		})
	}
}

func TestTokenEndpointUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	c, err := cgapi.New(cgapi.Config{AuthURL: url + "/oauth2/token", ImportsURL: url, APIURL: url,
		ClientID: stubClientID, ClientSecret: stubSecret, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = c.PutActivity(t.Context(), []byte(`{}`))
	var ae *cgapi.AuthError
	if !errors.As(err, &ae) || ae.Status != 0 || !cgapi.Retryable(err) {
		t.Errorf("err = %v, want a retryable *AuthError without status", err)
	}
	noSecret(t, err)
}

// A caller that gives up while the token is being fetched returns at once,
// and the fetch it started still completes and serves the next caller.
func TestCancelWhileFetchingToken(t *testing.T) {
	t.Parallel()
	s := newStub(t, answer(200, "", ""))
	arrived := make(chan struct{})
	release := make(chan struct{})
	s.setToken(func(w http.ResponseWriter, r *http.Request) {
		close(arrived) // only one token request is expected
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		s.issueToken(w, r, 3600)
	})
	c := s.client(t, 10*time.Second)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- c.PutActivity(ctx, []byte(`{}`))
	}()
	<-arrived
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || cgapi.Retryable(err) {
		t.Fatalf("err = %v, want context.Canceled and not retryable", err)
	}

	close(release)
	if err := c.PutActivity(t.Context(), []byte(`{}`)); err != nil {
		t.Fatalf("call after a cancelled one: %v", err)
	}
	if n := s.Tokens.Load(); n != 1 {
		t.Errorf("%d tokens issued, want 1 (the cancelled caller's fetch reused)", n)
	}
}

func TestRetryAfterHTTPDateStub(t *testing.T) {
	t.Parallel()
	s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
		answer(429, "application/json", `{"message":"Too Many Attempts."}`)(w, r)
	})
	err := s.client(t, 5*time.Second).PutActivity(t.Context(), []byte(`{}`))
	var rl *cgapi.RateLimitError
	if !errors.As(err, &rl) || rl.RetryAfter < 58*time.Minute || rl.RetryAfter > time.Hour || !cgapi.Retryable(err) {
		t.Errorf("err = %v, want a *RateLimitError of about an hour", err)
	}
}

// A token without expires_in is kept until the API rejects it.
func TestTokenWithoutExpiry(t *testing.T) {
	t.Parallel()
	var reject atomic.Bool // answer the first token with a 401
	s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
		if reject.Load() && r.Header.Get("Authorization") == "Bearer stub-token-1" {
			answer(401, "application/json", `{"message":"Unauthenticated."}`)(w, r)
			return
		}
		answer(200, "", "")(w, r)
	})
	s.mu.Lock()
	s.tokenTTL = 0
	s.mu.Unlock()
	c := s.client(t, 5*time.Second)
	for range 3 {
		if err := c.PutActivity(t.Context(), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Tokens.Load(); n != 1 {
		t.Fatalf("%d tokens for a token without expiry, want 1", n)
	}
	reject.Store(true)
	if err := c.PutActivity(t.Context(), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if n := s.Tokens.Load(); n != 2 {
		t.Errorf("%d tokens after a 401, want 2", n)
	}
}

// An activity answered 2xx is stored: no body, a body that is not JSON or
// JSON of another shape must not turn it into a failure and a retry.
func TestActivity2xxWhateverTheBody(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		answer http.HandlerFunc
	}{
		{"no body", answer(200, "", "")},
		{"HTML", answer(200, "text/html", "<html>stored, probably</html>")},
		{"broken JSON", answer(200, "application/json", `{"data":{"id":`)},
		{"other JSON", answer(201, "application/json", `["unexpected"]`)},
		{"no content", answer(204, "", "")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStub(t, tc.answer)
			if err := s.client(t, 5*time.Second).PutActivity(t.Context(), []byte(`{}`)); err != nil {
				t.Errorf("PutActivity: %v, want success", err)
			}
		})
	}
}

// A 200 that starts its body and then stalls costs the call its own
// timeout: a retryable *TransientError matching context.DeadlineExceeded.
func TestBodyStallsAfterHeaders(t *testing.T) {
	t.Parallel()
	s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"data":[`)
		http.NewResponseController(w).Flush()
		<-r.Context().Done() // until the client gives up
	})
	const timeout = 300 * time.Millisecond
	c := s.client(t, timeout)

	// The test's own context has no deadline: only the call's timeout
	// can end the call.
	start := time.Now()
	_, err := c.SyncResponses(t.Context(), cgapi.SyncQuery{})
	took := time.Since(start)
	var te *cgapi.TransientError
	if !errors.As(err, &te) || te.Status != 0 || !errors.Is(err, context.DeadlineExceeded) || !cgapi.Retryable(err) {
		t.Fatalf("err = %v, want a retryable *TransientError matching context.DeadlineExceeded", err)
	}
	if took < timeout {
		t.Errorf("the call ended after %s, before its %s timeout", took, timeout)
	}
	noSecret(t, err)
}

// A connection that breaks in the middle of a body is a retryable
// *TransientError, not a half-read page.
func TestConnectionClosedMidBody(t *testing.T) {
	t.Parallel()
	s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + `{"data":[{"number_customergauge":1}`)
		_ = buf.Flush()
	})
	_, err := s.client(t, 5*time.Second).SyncResponses(t.Context(), cgapi.SyncQuery{})
	var te *cgapi.TransientError
	if !errors.As(err, &te) || !errors.Is(err, io.ErrUnexpectedEOF) || !cgapi.Retryable(err) {
		t.Fatalf("err = %v, want a retryable *TransientError for the unexpected EOF", err)
	}
	noSecret(t, err)
}

// A sync page over the size limit is a retryable *TransientError saying
// so. The limit is lowered for the test; the production one is 64 MiB.
func TestSyncPageTooLarge(t *testing.T) {
	t.Parallel()
	const limit = 4 << 10
	page := `{"data":[` + strings.Repeat(`{"number_customergauge":1},`, limit/32) + `{}],"cursor":{"next":1}}`
	sizes := []struct {
		name    string
		size    int
		tooLong bool
	}{
		{"at the limit", limit, false},
		{"one byte over", limit + 1, true},
	}
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			t.Parallel()
			// Pad with spaces inside the JSON so the page parses at any size.
			body := page[:len(page)-1] + strings.Repeat(" ", sz.size-len(page)) + "}"
			if len(body) != sz.size {
				t.Fatalf("test page is %d bytes, want %d", len(body), sz.size)
			}
			s := newStub(t, answer(200, "application/json", body))
			c := s.client(t, 5*time.Second)
			cgapi.SetSyncLimit(c, limit)
			_, err := c.SyncResponses(t.Context(), cgapi.SyncQuery{})
			if !sz.tooLong {
				if err != nil {
					t.Fatalf("a page of exactly the limit: %v", err)
				}
				return
			}
			var te *cgapi.TransientError
			if !errors.As(err, &te) || te.Status != 200 || !cgapi.Retryable(err) || !strings.Contains(err.Error(), "too large") {
				t.Fatalf("err = %v, want a retryable *TransientError saying the page is too large", err)
			}
		})
	}
}

// A PUT's 2xx body is not kept (nothing in it is needed) but still read:
// a body that stalls or breaks fails the call as a retryable
// *TransientError, like a sync page's, rather than passing as stored.
func TestActivity2xxBodyFails(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		api   http.HandlerFunc
		cause error
	}{
		{"stalls", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `{"data":`)
			http.NewResponseController(w).Flush()
			<-r.Context().Done() // until the client gives up
		}, context.DeadlineExceeded},
		{"breaks", func(w http.ResponseWriter, r *http.Request) {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack: %v", err)
				return
			}
			defer conn.Close()
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + `{"data":`)
			_ = buf.Flush()
		}, io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := newStub(t, tc.api).client(t, 300*time.Millisecond).PutActivity(t.Context(), []byte(`{}`))
			var te *cgapi.TransientError
			if !errors.As(err, &te) || !errors.Is(err, tc.cause) || !cgapi.Retryable(err) {
				t.Fatalf("err = %v, want a retryable *TransientError matching %v", err, tc.cause)
			}
			noSecret(t, err)
		})
	}
}

// TestConnectionReusedAfterTheAnswer: a PUT's answer is read to its end,
// so the next call reuses the connection; one longer than the client
// keeps is drained a little further and reused too, when that reaches its
// end.
func TestConnectionReusedAfterTheAnswer(t *testing.T) {
	t.Parallel()
	var size atomic.Int64
	s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(strings.Repeat("x", int(size.Load()))))
	})
	c := s.client(t, 5*time.Second)
	reused := func() bool {
		t.Helper()
		var got bool
		ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { got = info.Reused },
		})
		if err := c.PutActivity(ctx, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, n := range []int64{2, 1<<20 + 100<<10} { // a short answer; one past the 1 MiB kept
		size.Store(n)
		_ = reused() // the answer of this size
		if !reused() {
			t.Errorf("after a %d-byte answer the next call opened a new connection", n)
		}
	}
}
