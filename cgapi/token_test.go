package cgapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is the token source's view of the time, moved by the test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// TestTokenRenewalSchedule drives the token source's clock past the
// renewal point and past expiry of an hour-long token: cached before,
// renewed in the background (old token still served) after, fetched
// synchronously once expired.
func TestTokenRenewalSchedule(t *testing.T) {
	t.Parallel()
	var issued atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"access_token":"t%d","token_type":"Bearer","expires_in":3600}`, issued.Add(1))
	}))
	t.Cleanup(srv.Close)

	clock := &fakeClock{t: time.Now()}
	start := clock.now()
	s := newTokenSource(Config{AuthURL: srv.URL, ClientID: "id", ClientSecret: "secret"}, http.DefaultTransport, 5*time.Second)
	s.now = clock.now

	tokenIs := func(want string) {
		t.Helper()
		got, err := s.token(t.Context())
		if err != nil || !isBearer(got, want) {
			t.Fatalf("token = %+v, %v; want %q", got, err, want)
		}
	}
	waitIssued := func(n int32) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for issued.Load() < n || s.fetching() {
			if time.Now().After(deadline) {
				t.Fatalf("%d tokens issued, want %d", issued.Load(), n)
			}
			time.Sleep(time.Millisecond) // polling, not synchronisation
		}
	}

	tokenIs("t1")
	clock.set(start.Add(time.Hour - 11*time.Second)) // before the 10 s margin
	tokenIs("t1")
	if n := issued.Load(); n != 1 {
		t.Fatalf("%d tokens issued before the renewal point, want 1", n)
	}

	clock.set(start.Add(time.Hour - 9*time.Second)) // inside the margin
	tokenIs("t1")                                   // still valid: served while renewing
	waitIssued(2)
	tokenIs("t2")

	// The new token expired too: the caller waits for a fresh one.
	clock.set(clock.now().Add(2 * time.Hour))
	tokenIs("t3")

	// A rejected token is dropped only if it is still the current one.
	s.invalidate("t2")
	tokenIs("t3")
	s.invalidate("t3")
	tokenIs("t4")
}

func (s *tokenSource) fetching() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight != nil
}

// TestTokenSingleFlight: many callers needing a token at once cause one
// fetch.
func TestTokenSingleFlight(t *testing.T) {
	t.Parallel()
	var issued atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"access_token":"t%d","token_type":"Bearer","expires_in":3600}`, issued.Add(1))
	}))
	t.Cleanup(srv.Close)
	s := newTokenSource(Config{AuthURL: srv.URL, ClientID: "id", ClientSecret: "secret"}, http.DefaultTransport, 5*time.Second)

	const callers = 50
	errs := make(chan error, callers)
	for range callers {
		go func() {
			tok, err := s.token(t.Context())
			if err == nil && !isBearer(tok, "t1") {
				err = fmt.Errorf("token %+v, want t1", tok)
			}
			errs <- err
		}()
	}
	close(release)
	for range callers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := issued.Load(); n != 1 {
		t.Errorf("%d token requests for %d concurrent callers, want 1", n, callers)
	}
}

// TestFormEncodedTokenLifetime: a form-encoded token answer gives its
// lifetime as text, which must still be honoured.
func TestFormEncodedTokenLifetime(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		_, _ = io.WriteString(w, "access_token=f1&token_type=bearer&expires_in=120")
	}))
	t.Cleanup(srv.Close)
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := newTokenSource(Config{AuthURL: srv.URL, ClientID: "id", ClientSecret: "secret"}, http.DefaultTransport, 5*time.Second)
	s.now = clock.now
	if tok, err := s.token(t.Context()); err != nil || !isBearer(tok, "f1") {
		t.Fatalf("token = %+v, %v", tok, err)
	}
	if got := s.expiry.Sub(clock.now()); got != 2*time.Minute {
		t.Errorf("expiry in %s, want 2m", got)
	}
}

// TestFailedRenewal: a token endpoint that fails while the cached token is
// still valid costs callers nothing, is retried only once per
// renewRetryPause, and becomes an *AuthError only once the token expired.
func TestFailedRenewal(t *testing.T) {
	t.Parallel()
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if requests.Add(1) > 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			// An endpoint that echoes the token it could not renew.
			_, _ = io.WriteString(w, `{"error":"temporarily_unavailable","error_description":"cannot renew access_token t1"}`)
			return
		}
		_, _ = io.WriteString(w, `{"access_token":"t1","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(srv.Close)

	clock := &fakeClock{t: time.Now()}
	start := clock.now()
	s := newTokenSource(Config{AuthURL: srv.URL, ClientID: "id", ClientSecret: "secret"}, http.DefaultTransport, 5*time.Second)
	s.now = clock.now

	tokensAreT1 := func(calls int) {
		t.Helper()
		for range calls {
			if got, err := s.token(t.Context()); err != nil || !isBearer(got, "t1") {
				t.Fatalf("token = %+v, %v; want t1", got, err)
			}
		}
	}
	// settled waits until n requests were made and none is in flight.
	settled := func(n int32) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for requests.Load() < n || s.fetching() {
			if time.Now().After(deadline) {
				t.Fatalf("%d token requests, want %d", requests.Load(), n)
			}
			time.Sleep(time.Millisecond) // polling, not synchronisation
		}
		if got := requests.Load(); got != n {
			t.Fatalf("%d token requests, want %d", got, n)
		}
	}

	tokensAreT1(1)
	settled(1)

	// Inside the renewal margin: the first call starts a renewal, which
	// fails; the calls after it keep the valid token and do not call the
	// failing endpoint again within the pause.
	clock.set(start.Add(time.Hour - 9*time.Second))
	tokensAreT1(1)
	settled(2)
	tokensAreT1(50)
	settled(2)

	// Past the pause: exactly one more attempt, however many callers.
	clock.set(clock.now().Add(renewRetryPause))
	tokensAreT1(50)
	settled(3)

	// Expired: nothing usable is left, so the failure reaches the caller.
	clock.set(start.Add(time.Hour + time.Second))
	_, err := s.token(t.Context())
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		t.Fatalf("token after expiry: err = %v, want an *AuthError 503", err)
	}
	// The cached token, echoed by the failing endpoint, never reaches an
	// error's text.
	if strings.Contains(err.Error(), "t1") {
		t.Errorf("token failure shows the cached token: %v", err)
	}
}

// isBearer reports whether b is the token and the header that sends it.
func isBearer(b bearer, token string) bool {
	return b.token == token && slices.Equal(b.header, []string{"Bearer " + token})
}
