package emulator

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func TestTokenFormCredentials(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	status, body := f.postToken(url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {"dev"},
		"client_secret": {"dev"},
	})
	if status != http.StatusOK {
		t.Fatalf("HTTP %d %s", status, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}
	mustUnmarshal(t, body, &tok)
	if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.ExpiresIn != 3600 {
		t.Fatalf("token = %+v", tok)
	}
	if got := f.srv.TokensIssued(); got != 2 { // setup's and this one
		t.Errorf("TokensIssued = %d, want 2", got)
	}
	f.token = tok.AccessToken
	if status, body := f.status(http.MethodGet, SyncPath, ""); status != http.StatusOK {
		t.Fatalf("sync with token: HTTP %d %s", status, body)
	}
}

// x/oauth2 sends credentials in a Basic header or in the body, form-encoded
// first in the header; a secret with reserved characters shows both work.
func TestTokenOAuth2ClientStyles(t *testing.T) {
	t.Parallel()
	const id, secret = "my client", "s3cr&t:+/=%"
	srv := newTestServer(t, Options{ClientID: id, ClientSecret: secret})
	for name, style := range map[string]oauth2.AuthStyle{
		"header":     oauth2.AuthStyleInHeader,
		"params":     oauth2.AuthStyleInParams,
		"autodetect": oauth2.AuthStyleAutoDetect,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: srv.URL + TokenPath, AuthStyle: style}
			resp, err := cfg.Client(context.Background()).Get(srv.URL + SyncPath)
			if err != nil {
				t.Fatal(err)
			}
			if status, body := readResponse(t, resp); status != http.StatusOK {
				t.Fatalf("HTTP %d %s", status, body)
			}
		})
	}
}

func TestTokenRejected(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {"dev"}, "client_secret": {"nope"}}, 401, "invalid_client"},
		{"wrong id", url.Values{"grant_type": {"client_credentials"}, "client_id": {"nope"}, "client_secret": {"dev"}}, 401, "invalid_client"},
		{"no credentials", url.Values{"grant_type": {"client_credentials"}}, 401, "invalid_client"},
		{"wrong grant", url.Values{"grant_type": {"password"}, "client_id": {"dev"}, "client_secret": {"dev"}}, 400, "unsupported_grant_type"},
	} {
		status, body := f.postToken(tc.form)
		var v struct {
			Error string `json:"error"`
		}
		mustUnmarshal(t, body, &v)
		if status != tc.status || v.Error != tc.code {
			t.Errorf("%s: HTTP %d %s, want %d %s", tc.name, status, body, tc.status, tc.code)
		}
	}
	if got := f.srv.TokensIssued(); got != 1 {
		t.Errorf("TokensIssued = %d, want 1", got)
	}
	// The secret must not end up in the request log.
	for _, r := range f.srv.Requests() {
		if r.Path == TokenPath && (len(r.Body) != 0 || r.Query != "") {
			t.Errorf("token request logged with body %q query %q", r.Body, r.Query)
		}
	}
}

func TestTokenExpires(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{TokenTTL: 300 * time.Millisecond})
	// expires_in is whole seconds and never 0, even for a shorter life.
	status, body := f.postToken(url.Values{"grant_type": {"client_credentials"}, "client_id": {"dev"}, "client_secret": {"dev"}})
	var tok struct {
		ExpiresIn int `json:"expires_in"`
	}
	mustUnmarshal(t, body, &tok)
	if status != http.StatusOK || tok.ExpiresIn != 1 {
		t.Fatalf("HTTP %d expires_in %d, want 200 and 1", status, tok.ExpiresIn)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, body := f.status(http.MethodGet, SyncPath, "")
		if status == http.StatusUnauthorized {
			if msg := messageOf(t, body); msg != "Unauthenticated." {
				t.Errorf("message = %q", msg)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("token still accepted after its lifetime: HTTP %d", status)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
	}
	f.srv.SetTokenTTL(time.Hour)
	f.token = f.fetchToken()
	if status, _ := f.status(http.MethodGet, SyncPath, ""); status != http.StatusOK {
		t.Fatalf("fresh token: HTTP %d", status)
	}
}

func TestAPIRequiresToken(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	calls := []struct{ method, path, body string }{
		{http.MethodPut, ActivitiesPath, `{"account":"a","type":"t","source":"s"}`},
		{http.MethodPut, RecordsPath, `{"configuration":"account","record":{"Account Name":"a"}}`},
		{http.MethodGet, SyncPath, ""},
	}
	for _, token := range []string{"", "not-a-token"} {
		f.token = token
		for _, c := range calls {
			status, body := f.status(c.method, c.path, c.body)
			if status != http.StatusUnauthorized || messageOf(t, body) != "Unauthenticated." {
				t.Errorf("%s %s with token %q: HTTP %d %s", c.method, c.path, token, status, body)
			}
		}
	}
	if f.srv.ActivityCount() != 0 || f.srv.RecordCount("account") != 0 {
		t.Error("unauthenticated calls stored data")
	}
}

func TestExpireTokens(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	f.srv.ExpireTokens()
	if status, _ := f.status(http.MethodGet, SyncPath, ""); status != http.StatusUnauthorized {
		t.Fatalf("after ExpireTokens: HTTP %d, want 401", status)
	}
	f.token = f.fetchToken()
	if status, _ := f.status(http.MethodGet, SyncPath, ""); status != http.StatusOK {
		t.Fatalf("new token: HTTP %d", status)
	}
}

func TestTokenOutage(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	f.srv.SetTokenOutage(true)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"dev"}, "client_secret": {"dev"}}
	if status, body := f.postToken(form); status != http.StatusServiceUnavailable {
		t.Fatalf("HTTP %d %s, want 503", status, body)
	}
	// Tokens already issued still work: only the auth service is down.
	if status, _ := f.status(http.MethodGet, SyncPath, ""); status != http.StatusOK {
		t.Fatalf("API during token outage: HTTP %d", status)
	}
	f.srv.SetTokenOutage(false)
	if status, _ := f.postToken(form); status != http.StatusOK {
		t.Fatalf("after outage: HTTP %d", status)
	}
}

func TestTokenHang(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	f.srv.SetTokenHang(true)
	cfg := clientcredentials.Config{ClientID: "dev", ClientSecret: "dev", TokenURL: f.srv.URL + TokenPath}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := cfg.Token(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hanging token endpoint: err = %v, want deadline exceeded", err)
	}

	done := make(chan error, 1)
	go func() {
		_, err := cfg.Token(context.Background())
		done <- err
	}()
	f.srv.SetTokenHang(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after the hang: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("token request still hanging after SetTokenHang(false)")
	}
}
