package worker_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/schemas"
	"github.com/cgworker/cgworker/worker"
	"github.com/cgworker/cgworker/worker/health"
	"github.com/cgworker/cgworker/worker/proctest"
)

const (
	leakySecret = "p@ss w0rd/+&=%é"
	leakyToken  = "tok-3e1f07b2c9d84a55"
)

// leakyAPI is a token endpoint and an API on loopback that put the whole
// request (form, headers, Authorization) into their error bodies, as a
// careless server does. refuseTokens makes the token endpoint fail so.
func leakyAPI(t *testing.T, refuseTokens bool) *cgapi.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		echo := fmt.Sprintf("you sent %s with %v; Authorization: %s; base64 %s; secret %s",
			body, r.Header, r.Header.Get("Authorization"),
			base64.StdEncoding.EncodeToString([]byte("leaky-id:"+leakySecret)), leakySecret)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/oauth2/token" && refuseTokens:
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": echo})
		case r.URL.Path == "/oauth2/token":
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": leakyToken, "token_type": "Bearer", "expires_in": 3600})
		default:
			w.WriteHeader(http.StatusUnprocessableEntity)
			_ = json.NewEncoder(w).Encode(map[string]any{"message": echo, "errors": map[string][]string{"account": {echo}, echo: {"unknown"}}})
		}
	}))
	t.Cleanup(srv.Close)
	c, err := cgapi.New(cgapi.Config{AuthURL: srv.URL + "/oauth2/token", ImportsURL: srv.URL, APIURL: srv.URL,
		ClientID: "leaky-id", ClientSecret: leakySecret, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// leaked names the credentials found in text.
func leaked(text string) []string {
	var out []string
	for name, form := range map[string]string{
		"secret":       leakySecret,
		"form secret":  url.QueryEscape(leakySecret),
		"basic secret": base64.StdEncoding.EncodeToString([]byte("leaky-id:" + leakySecret)),
		"token":        leakyToken,
	} {
		if strings.Contains(text, form) {
			out = append(out, name)
		}
	}
	return out
}

// TestEchoedCredentialsNeverLeaveTheWorker: an API that echoes the request
// in a 422 puts neither the token nor the secret into the dead letter's
// CG-Error and CG-Errors or the logs; a token endpoint that echoes its form
// puts no secret into /readyz or the logs.
func TestEchoedCredentialsNeverLeaveTheWorker(t *testing.T) {
	t.Parallel()
	t.Run("dead letter and logs", func(t *testing.T) {
		t.Parallel()
		w := setup(t, emulator.Options{})
		logs := &proctest.Buffer{}
		cfg := testConfig()
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		r := w.startWith(nil, leakyAPI(t, false), cfg)
		seq := w.publish(schemas.Activity, `{"account":"ACME","type":"Ticket","source":"Desk"}`, nil)
		waitFor(t, 10*time.Second, "dead letter", func() bool { s, ok := r.final(seq); return ok && s.Action == worker.DeadLetter })
		dls := w.deadLetters()
		if len(dls) != 1 {
			t.Fatalf("%d dead letters", len(dls))
		}
		h := dls[0].Header
		if h.Get("CG-Error-Kind") != "api-422" {
			t.Fatalf("CG-Error-Kind %q", h.Get("CG-Error-Kind"))
		}
		for _, name := range []string{"CG-Error", "CG-Errors"} {
			if l := leaked(h.Get(name)); len(l) > 0 {
				t.Errorf("%s leaks %v: %s", name, l, h.Get(name))
			}
			if !strings.Contains(h.Get(name), "[redacted]") {
				t.Errorf("%s shows no redaction; did the echo reach it? %s", name, h.Get(name))
			}
		}
		if l := leaked(logs.String()); len(l) > 0 {
			t.Errorf("logs leak %v:\n%s", l, logs.String())
		}
	})
	t.Run("readyz", func(t *testing.T) {
		t.Parallel()
		w := setup(t, emulator.Options{})
		hl := health.New(true, false)
		logs := &proctest.Buffer{}
		cfg := testConfig()
		cfg.Health = hl
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		w.startWith(nil, leakyAPI(t, true), cfg)
		w.publish(schemas.Activity, `{"account":"ACME","type":"Ticket","source":"Desk"}`, nil)
		srv := httptest.NewServer(hl.Handler(nil))
		t.Cleanup(srv.Close)
		var body string
		waitFor(t, 10*time.Second, "an outage on /readyz", func() bool {
			resp, err := http.Get(srv.URL + "/readyz")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
			return strings.Contains(body, "breaker open")
		})
		if l := leaked(body); len(l) > 0 {
			t.Errorf("/readyz leaks %v: %s", l, body)
		}
		if !strings.Contains(body, "[redacted]") {
			t.Errorf("/readyz shows no redaction; did the echo reach it? %s", body)
		}
		if l := leaked(logs.String()); len(l) > 0 {
			t.Errorf("logs leak %v:\n%s", l, logs.String())
		}
	})
}
