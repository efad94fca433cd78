package emulator

import (
	"net/http"
	"slices"
	"strconv"
	"testing"
)

func TestRequestLog(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	body := activity(t, map[string]any{"reference": "logged"})
	f.do(http.MethodPut, ActivitiesPath, body, "traceparent", traceparent, "User-Agent", "cgworker/test")

	reqs := f.srv.Requests()
	if len(reqs) != 2 { // the token call and the PUT
		t.Fatalf("%d requests logged: %+v", len(reqs), reqs)
	}
	tok, put := reqs[0], reqs[1]
	if tok.Path != TokenPath || tok.Body != nil || tok.Status != http.StatusOK {
		t.Errorf("token request logged as %+v", tok)
	}
	if put.Method != http.MethodPut || put.Path != ActivitiesPath || put.Status != http.StatusOK || string(put.Body) != body || put.BodySize != len(body) {
		t.Errorf("PUT logged as %+v", put)
	}
	if put.Header.Get("traceparent") != traceparent || put.Header.Get("User-Agent") != "cgworker/test" {
		t.Errorf("headers %v", put.Header)
	}
	if got := put.Header.Get("Authorization"); got != "Bearer [redacted]" {
		t.Errorf("Authorization logged as %q", got)
	}
	if f.srv.Calls(TokenPath) != 1 || f.srv.Calls("/activities") != 1 || f.srv.Calls(SyncPath) != 0 {
		t.Errorf("calls: token %d activities %d sync %d", f.srv.Calls(TokenPath), f.srv.Calls(ActivitiesPath), f.srv.Calls(SyncPath))
	}
	f.srv.ResetRequests()
	if n := len(f.srv.Requests()); n != 0 {
		t.Errorf("%d requests after ResetRequests", n)
	}
}

func TestRequestLogBounded(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{RequestLogSize: 3})
	f.srv.ResetRequests() // the fixture's token request
	// Before, at and past the wrap: the last three, oldest first.
	for i := 1; i <= 7; i++ {
		f.status(http.MethodGet, SyncPath+"?cursor="+strconv.Itoa(i), "")
		var got, want []string
		for _, r := range f.srv.Requests() {
			got = append(got, r.Query)
		}
		for j := max(1, i-2); j <= i; j++ {
			want = append(want, "cursor="+strconv.Itoa(j))
		}
		if !slices.Equal(got, want) {
			t.Errorf("after %d requests the log holds %v, want %v", i, got, want)
		}
	}
	reqs := f.srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests logged, want 3", len(reqs))
	}
	for i := 1; i < len(reqs); i++ {
		if reqs[i].Time.Before(reqs[i-1].Time) {
			t.Errorf("log out of order: %v", reqs)
		}
	}
	if reqs[0].Path != SyncPath || f.srv.Calls(SyncPath) != 7 {
		t.Errorf("oldest %s, calls %d", reqs[0].Path, f.srv.Calls(SyncPath))
	}
}

func TestNoRequestLog(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{NoRequestLog: true})
	f.putActivity(activity(t, nil))
	if n := len(f.srv.Requests()); n != 0 {
		t.Errorf("%d requests logged with NoRequestLog", n)
	}
	if f.srv.Calls(ActivitiesPath) != 1 {
		t.Errorf("Calls = %d, want 1", f.srv.Calls(ActivitiesPath))
	}
}
