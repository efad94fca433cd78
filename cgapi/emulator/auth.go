package emulator

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tokens issues and checks bearer tokens. Expiry uses the monotonic clock
// at full precision, since tests use lifetimes of a second or two.
type tokens struct {
	clientID, clientSecret string

	ttl    atomic.Int64 // time.Duration of newly issued tokens
	issued atomic.Int64

	mu     sync.RWMutex
	expiry map[string]time.Time // token -> end of life
}

// maxLiveTokens bounds the token table against a client that fetches a
// token per call: past it, expired tokens are swept on issue.
const maxLiveTokens = 4096

func (t *tokens) init(o Options) {
	t.clientID, t.clientSecret = o.ClientID, o.ClientSecret
	t.ttl.Store(int64(o.TokenTTL))
	t.expiry = make(map[string]time.Time)
}

func (t *tokens) issue() (token string, ttl time.Duration) {
	var b [24]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	token = hex.EncodeToString(b[:])
	ttl = time.Duration(t.ttl.Load())
	now := time.Now()
	t.mu.Lock()
	if len(t.expiry) >= maxLiveTokens {
		for k, end := range t.expiry {
			if !now.Before(end) {
				delete(t.expiry, k)
			}
		}
	}
	t.expiry[token] = now.Add(ttl)
	t.mu.Unlock()
	t.issued.Add(1)
	return token, ttl
}

// authenticated reports whether r carries a live bearer token.
func (t *tokens) authenticated(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	token := strings.TrimSpace(h[len(prefix):])
	t.mu.RLock()
	end, ok := t.expiry[token]
	t.mu.RUnlock()
	return ok && time.Now().Before(end)
}

func (t *tokens) expireAll() {
	t.mu.Lock()
	clear(t.expiry)
	t.mu.Unlock()
}

// credentialsOK compares in constant time, so the emulator does not teach
// bad habits to anyone reading it.
func (t *tokens) credentialsOK(id, secret string) bool {
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(t.clientID))
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(t.clientSecret))
	return idOK&secretOK == 1
}

// maxTokenBody bounds the form body of a token request.
const maxTokenBody = 64 << 10

// serveToken is POST /oauth2/token with the client-credentials grant. The
// client authenticates in the form body or with HTTP Basic, whose parts
// are form-encoded first (RFC 6749 2.3.1), as x/oauth2 sends them.
func (e *Emulator) serveToken(c *call) {
	if s, ok := e.faults.scripted(c.rt, c.r.URL.Path); ok {
		e.answerScripted(c, s)
		return
	}
	if ch := e.faults.tokenHang.closed(); ch != nil && !e.hang(c, ch) {
		return
	}
	if e.faults.tokenOutage.Load() {
		oauthError(c, http.StatusServiceUnavailable, "temporarily_unavailable")
		return
	}
	if c.r.Method != http.MethodPost {
		c.w.Header().Set("Allow", http.MethodPost)
		oauthError(c, http.StatusMethodNotAllowed, "invalid_request")
		return
	}
	c.r.Body = http.MaxBytesReader(c.w, c.r.Body, maxTokenBody)
	if err := c.r.ParseForm(); err != nil {
		oauthError(c, http.StatusBadRequest, "invalid_request")
		return
	}
	form := c.r.PostForm
	id, secret, basic := c.r.BasicAuth()
	if basic {
		id, secret = formUnescape(id), formUnescape(secret)
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	switch grant := form.Get("grant_type"); {
	case grant == "":
		oauthError(c, http.StatusBadRequest, "invalid_request")
		return
	case grant != "client_credentials":
		oauthError(c, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	if !e.auth.credentialsOK(id, secret) {
		if basic {
			c.w.Header().Set("WWW-Authenticate", `Basic realm="oauth2"`)
		}
		oauthError(c, http.StatusUnauthorized, "invalid_client")
		return
	}
	token, ttl := e.auth.issue()
	expiresIn := int64(ttl / time.Second) // whole seconds, rounded down so clients renew early
	if expiresIn < 1 {
		expiresIn = 1
	}
	body, _ := json.Marshal(struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}{token, "Bearer", expiresIn})
	c.w.Header().Set("Cache-Control", "no-store")
	c.json(http.StatusOK, body)
}

// hang holds a token request until released is closed; false when the
// client or the emulator ended it first.
func (e *Emulator) hang(c *call, released <-chan struct{}) bool {
	e.holding.Add(1)
	defer e.holding.Add(-1)
	select {
	case <-released:
		return true
	case <-c.r.Context().Done():
	case <-e.closed:
	}
	return false
}

func formUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

func oauthError(c *call, status int, code string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{code})
	c.json(status, b)
}

// SetTokenTTL sets the lifetime of tokens issued from now on.
func (e *Emulator) SetTokenTTL(d time.Duration) {
	if d <= 0 {
		d = defaultTokenTTL
	}
	e.auth.ttl.Store(int64(d))
}

// ExpireTokens invalidates every token issued so far: the next API call
// with one of them gets a 401.
func (e *Emulator) ExpireTokens() { e.auth.expireAll() }

// TokensIssued counts successful token requests.
func (e *Emulator) TokensIssued() int { return int(e.auth.issued.Load()) }

// SetTokenOutage makes the token endpoint answer 503
// {"error":"temporarily_unavailable"} while on.
func (e *Emulator) SetTokenOutage(on bool) { e.faults.tokenOutage.Store(on) }

// SetTokenHang makes token requests hang while on: they are answered once
// it is turned off again, and end when the client gives up or the server
// closes.
func (e *Emulator) SetTokenHang(on bool) { e.faults.tokenHang.set(on) }
