package cgapi_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cgworker/cgworker/cgapi"
)

// echoID and echoSecret are credentials chosen so that every encoding of
// the secret differs from the raw text: URL escapes, JSON escapes and a
// non-ASCII character.
const (
	echoID     = "echo-client"
	echoSecret = `s3cr3t+/&=%XYZ "q\é`
	echoToken  = "echo-token-7f3a9c2e51b84d06"
)

// echoEverything is what a careless server puts in an error: the request
// as it came, headers included, and the secret in every form that could
// have reached it.
func echoEverything(r *http.Request, body []byte) string {
	token := r.Header.Get("Authorization") != "" // only the API was given one
	lowerHex := regexp.MustCompile(`%[0-9A-F]{2}`).ReplaceAllStringFunc(url.QueryEscape(echoSecret), strings.ToLower)
	parts := []string{
		"body=" + string(body),
		"body64=" + base64.StdEncoding.EncodeToString(body),
		fmt.Sprint("headers=", r.Header),
		"authorization=" + r.Header.Get("Authorization"),
		"Authorization: " + r.Header.Get("Authorization"),
		"secret=" + echoSecret,
		"query=" + url.QueryEscape(echoSecret),
		"path=" + url.PathEscape(echoSecret),
		"lower=" + lowerHex,
		"basic=Basic " + base64.StdEncoding.EncodeToString([]byte(echoID+":"+echoSecret)),
	}
	if token {
		parts = append(parts, "token="+echoToken, "bearer=bearer "+echoToken)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		parts = append(parts,
			"b64="+enc.EncodeToString([]byte(echoSecret)),
			"b64pair="+enc.EncodeToString([]byte(echoID+":"+echoSecret)),
			"b64escaped="+enc.EncodeToString([]byte(url.QueryEscape(echoID)+":"+url.QueryEscape(echoSecret))))
	}
	return strings.Join(parts, "\n")
}

// leaks lists the forms of the secret and the token that text must not
// hold, each named for the failure message.
func leaks(text string) []string {
	forms := map[string]string{
		"raw":         echoSecret,
		"query":       url.QueryEscape(echoSecret),
		"path":        url.PathEscape(echoSecret),
		"lower hex":   strings.ToLower(url.QueryEscape(echoSecret)),
		"json":        strings.Trim(mustJSON(echoSecret), `"`),
		"token":       echoToken,
		"token part":  echoToken[len(echoToken)-12:],
		"bearer":      "Bearer e",
		"secret part": echoSecret[:6],
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for _, plain := range []string{echoSecret, echoID + ":" + echoSecret, url.QueryEscape(echoID) + ":" + url.QueryEscape(echoSecret)} {
			full := strings.TrimRight(enc.EncodeToString([]byte(plain)), "=")
			forms["base64 "+plain] = full[len(full)/3:] // any long part of it will do
		}
	}
	var out []string
	lower := strings.ToLower(text)
	for name, f := range forms {
		if strings.Contains(text, f) || (name == "lower hex" && strings.Contains(lower, f)) {
			out = append(out, name)
		}
	}
	return out
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// echoServer is a token endpoint and an API on loopback that echo their
// requests in their error bodies. tokenStatus and apiStatus choose the
// answers; a 200 from the token endpoint issues echoToken.
func echoServer(t *testing.T, tokenStatus, apiStatus int) *cgapi.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		echo := echoEverything(r, body)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/oauth2/token" {
			if tokenStatus == http.StatusOK {
				_ = json.NewEncoder(w).Encode(map[string]any{"access_token": echoToken, "token_type": "Bearer", "expires_in": 3600})
				return
			}
			w.WriteHeader(tokenStatus)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": "invalid_client", "error_description": echo})
			return
		}
		w.WriteHeader(apiStatus)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"message": echo,
			"errors":  map[string]any{echo: []string{echo}, "contact": []any{echo, map[string]string{"auth": r.Header.Get("Authorization")}}},
		})
	}))
	t.Cleanup(srv.Close)
	c, err := cgapi.New(cgapi.Config{
		AuthURL: srv.URL + "/oauth2/token", ImportsURL: srv.URL, APIURL: srv.URL,
		ClientID: echoID, ClientSecret: echoSecret, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestEchoedCredentialsAreRedacted: whatever a server echoes of the
// request, the error the client returns (its text, and for a rejection the
// field names and messages that go into a dead letter's CG-Errors) holds
// neither the client secret in any encoding nor the access token.
func TestEchoedCredentialsAreRedacted(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name               string
		tokenStatus, api   int
		wantClass          cgapi.Class
		wantDataErrorsKept bool
	}{
		{"token endpoint refuses", http.StatusBadRequest, 0, cgapi.ClassAuth, false},
		{"token endpoint fails", http.StatusServiceUnavailable, 0, cgapi.ClassAuth, false},
		{"API rejects the data", http.StatusOK, http.StatusUnprocessableEntity, cgapi.ClassData, true},
		{"API rejects the token", http.StatusOK, http.StatusUnauthorized, cgapi.ClassAuth, false},
		{"API fails", http.StatusOK, http.StatusInternalServerError, cgapi.ClassTransient, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := echoServer(t, tc.tokenStatus, tc.api)
			err := c.PutActivity(t.Context(), []byte(`{"account":"a"}`))
			if cgapi.ClassOf(err) != tc.wantClass {
				t.Fatalf("err = %v (%s), want class %s", err, cgapi.ClassOf(err), tc.wantClass)
			}
			texts := []string{err.Error()}
			var de *cgapi.DataError
			if errors.As(err, &de) {
				texts = append(texts, de.Message)
				for k, msgs := range de.Errors {
					texts = append(texts, k)
					texts = append(texts, msgs...)
				}
				if _, ok := de.Errors["contact"]; !ok {
					t.Errorf("a field name that holds no secret was changed: %v", de.Errors)
				}
			} else if tc.wantDataErrorsKept {
				t.Fatalf("want a *DataError, got %T", err)
			}
			for _, text := range texts {
				if l := leaks(text); len(l) > 0 {
					t.Errorf("leaks %v in %q", l, text)
				}
			}
			if !strings.Contains(err.Error(), "[redacted]") {
				t.Errorf("nothing redacted in %q: did the echo reach the error?", err)
			}
			// Nor is an unredacted copy left in the chain.
			for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
				if l := leaks(e.Error()); len(l) > 0 {
					t.Errorf("wrapped error %T leaks %v", e, l)
				}
			}
		})
	}
}

// TestRedactionKeepsProse: words after "Bearer" and "Basic" in an API's
// own wording are not credentials and stay readable.
func TestRedactionKeepsProse(t *testing.T) {
	t.Parallel()
	c := func() *cgapi.Client {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if r.URL.Path == "/oauth2/token" {
				_ = json.NewEncoder(w).Encode(map[string]any{"access_token": echoToken, "token_type": "Bearer"})
				return
			}
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"message":"Invalid bearer token; Basic auth is not supported"}`)
		}))
		t.Cleanup(srv.Close)
		c, err := cgapi.New(cgapi.Config{AuthURL: srv.URL + "/oauth2/token", ImportsURL: srv.URL, APIURL: srv.URL,
			ClientID: echoID, ClientSecret: echoSecret, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}()
	err := c.PutActivity(t.Context(), []byte(`{}`))
	if err == nil || !strings.Contains(err.Error(), "Invalid bearer token; Basic auth is not supported") {
		t.Errorf("err = %v", err)
	}
}

// TestLongSecretRedacted: a secret too long for the per-character pattern
// is still redacted in its raw, URL-encoded and base64 forms, and the
// client is built at once.
func TestLongSecretRedacted(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("k/é+", 2000)
	start := time.Now()
	c, err := cgapi.New(cgapi.Config{AuthURL: "http://127.0.0.1:1/oauth2/token", ImportsURL: "http://127.0.0.1:1", APIURL: "http://127.0.0.1:1",
		ClientID: "id", ClientSecret: long})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("client built in %v", d)
	}
	text := strings.Join([]string{long, url.QueryEscape(long), url.PathEscape(long), base64.StdEncoding.EncodeToString([]byte(long))}, " ")
	got := cgapi.RedactForTest(c, text)
	if strings.Contains(got, "k/é+k/é+") || strings.Contains(got, "k%2F") || strings.Contains(got, "k%2f") || strings.Count(got, "[redacted]") != 4 {
		t.Errorf("long secret not redacted: %.200s", got)
	}
}
