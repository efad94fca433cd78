package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// fixture is a running emulator and a token for it.
type fixture struct {
	t     *testing.T
	srv   *Server
	token string
}

func setup(t *testing.T, opts Options) *fixture {
	t.Helper()
	srv := newTestServer(t, opts)
	f := &fixture{t: t, srv: srv}
	f.token = f.fetchToken()
	return f
}

// fetchToken gets a token with the default credentials.
func (f *fixture) fetchToken() string {
	f.t.Helper()
	status, body := f.postToken(url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {"dev"},
		"client_secret": {"dev"},
	})
	if status != http.StatusOK {
		f.t.Fatalf("token: HTTP %d %s", status, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	mustUnmarshal(f.t, body, &tok)
	return tok.AccessToken
}

func (f *fixture) postToken(form url.Values) (int, []byte) {
	f.t.Helper()
	resp, err := http.PostForm(f.srv.URL+TokenPath, form)
	if err != nil {
		f.t.Fatal(err)
	}
	return readResponse(f.t, resp)
}

// do sends an authenticated request; header pairs are added.
func (f *fixture) do(method, path, body string, header ...string) (*http.Response, []byte) {
	f.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, r)
	if err != nil {
		f.t.Fatal(err)
	}
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	_, b := readResponse(f.t, resp)
	return resp, b
}

// status sends a request and returns only the status and body.
func (f *fixture) status(method, path, body string) (int, []byte) {
	f.t.Helper()
	resp, b := f.do(method, path, body)
	return resp.StatusCode, b
}

func (f *fixture) putActivity(body string) (int, []byte) {
	f.t.Helper()
	return f.status(http.MethodPut, ActivitiesPath, body)
}

func (f *fixture) putRecord(body string) (int, []byte) {
	f.t.Helper()
	return f.status(http.MethodPut, RecordsPath, body)
}

func readResponse(t *testing.T, resp *http.Response) (int, []byte) {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// validationErrors decodes a Laravel 422 body, checking its message.
func validationErrors(t *testing.T, body []byte) map[string][]string {
	t.Helper()
	var v struct {
		Message string              `json:"message"`
		Errors  map[string][]string `json:"errors"`
	}
	mustUnmarshal(t, body, &v)
	if v.Message != "The given data was invalid." {
		t.Errorf("422 message = %q", v.Message)
	}
	return v.Errors
}

// keys returns the sorted field names of a 422's errors.
func keys(errs map[string][]string) []string {
	out := make([]string, 0, len(errs))
	for k := range errs {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// messageOf decodes {"message": ...}.
func messageOf(t *testing.T, body []byte) string {
	t.Helper()
	var v struct {
		Message string `json:"message"`
	}
	mustUnmarshal(t, body, &v)
	return v.Message
}
