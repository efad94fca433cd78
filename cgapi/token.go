package cgapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// tokenSource caches the client-credentials token and renews it before it
// expires. x/oauth2's ReuseTokenSource cannot be told that a token was
// rejected, and its fixed 10 s expiry margin would make short-lived tokens
// look expired at once, hence this small source of our own.
type tokenSource struct {
	conf *clientcredentials.Config
	// ctx is long-lived and carries the token HTTP client: a fetch outlives
	// the call that started it, so a cancelled call cannot break it.
	ctx  context.Context
	red  *redactor // cleans server text of the secret and the tokens
	now  func() time.Time
	call func(context.Context, func(context.Context) error) error // Config.TokenCall

	mu       sync.Mutex
	tok      bearer
	expiry   time.Time // zero: the server gave no lifetime
	renewAt  time.Time // renew from here on, while tok is still valid
	failedAt time.Time // last failed fetch
	inFlight *tokenFetch
}

// tokenFetch is one token request; waiters share its result.
type tokenFetch struct {
	done chan struct{}
	tok  bearer
	err  error
}

// bearer is an access token and the Authorization header that sends it,
// built once per token rather than once per call: an access token is
// often a JWT of a kilobyte or more, copied on every PUT otherwise.
type bearer struct {
	token  string
	header []string // {"Bearer " + token}: a request's header value, shared and never changed
}

func newBearer(token string) bearer { return bearer{token: token, header: []string{"Bearer " + token}} }

// renewRetryPause keeps a failing token endpoint from being called on every
// API call while the cached token is still usable.
const renewRetryPause = time.Second

func newTokenSource(cfg Config, transport http.RoundTripper, timeout time.Duration) *tokenSource {
	hc := &http.Client{Timeout: timeout, Transport: transport}
	return &tokenSource{
		conf: &clientcredentials.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			TokenURL:     cfg.AuthURL,
			// The API pages send client_id and client_secret in the form body.
			AuthStyle: oauth2.AuthStyleInParams,
		},
		ctx:  context.WithValue(context.Background(), oauth2.HTTPClient, hc),
		red:  newRedactor(cfg.ClientID, cfg.ClientSecret),
		now:  time.Now,
		call: cfg.TokenCall,
	}
}

// token returns a usable access token, fetching one when none is cached or
// the cached one is expired. A token past its renewal time but not yet
// expired is still returned while a renewal runs in the background, so
// callers do not stall at every renewal.
func (s *tokenSource) token(ctx context.Context) (bearer, error) {
	s.mu.Lock()
	now := s.now()
	if s.tok.token != "" && (s.expiry.IsZero() || now.Before(s.renewAt)) {
		tok := s.tok
		s.mu.Unlock()
		return tok, nil
	}
	if s.tok.token != "" && now.Before(s.expiry) {
		tok := s.tok
		if s.inFlight == nil && now.Sub(s.failedAt) >= renewRetryPause {
			s.startFetchLocked()
		}
		s.mu.Unlock()
		return tok, nil
	}
	f := s.inFlight
	if f == nil {
		f = s.startFetchLocked()
	}
	s.mu.Unlock()

	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return bearer{}, ctx.Err()
	}
}

// invalidate drops tok if it is still the cached token, so the next call
// fetches a new one. Comparing the value keeps many callers that saw the
// same 401 from discarding a token another caller has already renewed.
func (s *tokenSource) invalidate(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok.token == tok {
		s.tok = bearer{}
		s.expiry, s.renewAt = time.Time{}, time.Time{}
	}
}

func (s *tokenSource) startFetchLocked() *tokenFetch {
	f := &tokenFetch{done: make(chan struct{})}
	s.inFlight = f
	// Bounded by the token HTTP client's Timeout. The cached token, read
	// under the lock held here, is what a failure's text is redacted of.
	go s.fetch(f, s.tok.token)
	return f
}

func (s *tokenSource) fetch(f *tokenFetch, cached string) {
	start := s.now()
	var t *oauth2.Token
	fetch := func(ctx context.Context) error {
		var err error
		if t, err = s.conf.Token(ctx); err != nil {
			return s.authError(err, cached)
		}
		return nil
	}
	var err error
	if s.call != nil {
		err = s.call(s.ctx, fetch)
	} else {
		err = fetch(s.ctx)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight = nil
	if err != nil {
		var ae *AuthError
		if !errors.As(err, &ae) {
			ae = s.authError(err, s.tok.token)
		}
		f.err = ae
		s.failedAt = s.now()
	} else {
		s.tok = newBearer(t.AccessToken)
		s.expiry = t.Expiry
		if secs := expiresIn(t); secs > 0 {
			// Counted from when the request left, on our own clock: never
			// later than the server's idea of the expiry.
			s.expiry = start.Add(time.Duration(secs * float64(time.Second)))
		}
		s.renewAt = renewTime(start, s.expiry)
		f.tok = s.tok
	}
	close(f.done)
}

// expiresIn is the token response's expires_in in seconds, 0 when absent.
// clientcredentials drops Token.ExpiresIn, so it is read from the raw
// response: a JSON number, or what Extra makes of a form-encoded value.
func expiresIn(t *oauth2.Token) float64 {
	var secs float64
	switch v := t.Extra("expires_in").(type) {
	case float64:
		secs = v
	case int64:
		secs = float64(v)
	case string:
		secs, _ = strconv.ParseFloat(v, 64)
	}
	const most = float64(100 * 365 * 24 * 3600) // keeps the Duration in range
	return min(max(secs, 0), most)
}

// renewTime is expiry less the smaller of 10 s and a tenth of the lifetime
// (measured from when the request was sent, to err on the early side).
func renewTime(start, expiry time.Time) time.Time {
	if expiry.IsZero() {
		return expiry
	}
	early := min(10*time.Second, expiry.Sub(start)/10)
	return expiry.Add(-max(early, 0))
}

// authError turns a token endpoint failure into an *AuthError with a
// one-line, redacted message. x/oauth2's RetrieveError carries the
// response (never the request), but is not kept in the chain so that
// nothing the server echoed can reach a log; transport errors are kept for
// errors.Is. current is the access token cached now, redacted too; it is
// read under s.mu by the caller, since fetches run beside invalidate.
func (s *tokenSource) authError(err error, current string) *AuthError {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		msg := "token endpoint refused the request"
		switch {
		case re.ErrorCode != "":
			msg = "token endpoint: " + re.ErrorCode
			if re.ErrorDescription != "" {
				msg += ": " + re.ErrorDescription
			}
		default:
			if m := errorMessage(re.Body); m != "" {
				msg = "token endpoint: " + m
			}
		}
		return &AuthError{Status: status, Err: errors.New(s.red.redact(oneLine(msg), current))}
	}
	return &AuthError{Err: &scrubbedError{msg: s.red.redact("token endpoint: "+oneLine(err.Error()), current), cause: err}}
}

// redactError is err with the client secret, Authorization values and
// access tokens (used, the one a call sent, and the one cached now)
// redacted from whatever server text it carries.
func (s *tokenSource) redactError(err error, used string) error {
	if err == nil {
		return nil
	}
	s.mu.Lock()
	current := s.tok.token
	s.mu.Unlock()
	return s.red.redactError(err, used, current)
}

// scrubbedError has a cleaned message but keeps its cause for errors.Is
// (timeouts, connection errors), which carry no server-provided text.
type scrubbedError struct {
	msg   string
	cause error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.cause }

// oneLine keeps error text to one line, as log lines and headers need.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const most = 300
	if len(s) > most {
		n := most
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return s
}
