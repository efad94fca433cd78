package emulator

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestOutage(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	f.srv.SetOutage(true)
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPut, ActivitiesPath, activity(t, nil)},
		{http.MethodPut, RecordsPath, recordBody(t, "account", map[string]any{"Account Name": "ACME"})},
		{http.MethodGet, SyncPath, ""},
	} {
		if status, body := f.status(c.method, c.path, c.body); status != http.StatusServiceUnavailable {
			t.Errorf("%s during outage: HTTP %d %s", c.path, status, body)
		}
	}
	if f.fetchToken() == "" { // the auth service is separate
		t.Fatal("no token during API outage")
	}
	f.srv.SetOutage(false)
	if status, _ := f.putActivity(activity(t, nil)); status != http.StatusOK {
		t.Errorf("after outage: HTTP %d", status)
	}
}

func TestFailNextScriptsStatuses(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	f.srv.FailNext(ActivitiesPath, http.StatusNotFound, 2)
	f.srv.FailNext("/activities", http.StatusForbidden, 1)
	f.srv.FailNext(SyncPath, http.StatusBadRequest, 1)

	// Scripts win over the probabilistic faults.
	f.srv.SetErrorRate(1)
	var got []int
	for range 3 {
		status, _ := f.putActivity(activity(t, nil))
		got = append(got, status)
	}
	f.srv.SetErrorRate(0)
	status, _ := f.putActivity(activity(t, nil))
	got = append(got, status)
	if want := []int{404, 404, 403, 200}; !slices.Equal(got, want) {
		t.Errorf("activity statuses %v, want %v", got, want)
	}
	if status, body := f.status(http.MethodGet, SyncPath, ""); status != http.StatusBadRequest || messageOf(t, body) == "" {
		t.Errorf("sync: HTTP %d %s, want 400", status, body)
	}
	if status, _ := f.putRecord(recordBody(t, "account", map[string]any{"Account Name": "A"})); status != http.StatusOK {
		t.Errorf("records unaffected by other paths' scripts: HTTP %d", status)
	}
	if n := f.srv.ActivityCount(); n != 1 {
		t.Errorf("ActivityCount = %d, want 1 (failed calls store nothing)", n)
	}

	// "" scripts whichever API path comes next.
	f.srv.FailNext("", http.StatusBadGateway, 1)
	if status, _ := f.putRecord(recordBody(t, "account", map[string]any{"Account Name": "A"})); status != http.StatusBadGateway {
		t.Errorf("any-path script: HTTP %d", status)
	}
	if got := f.srv.Calls(ActivitiesPath); got != 4 {
		t.Errorf("Calls(activities) = %d, want 4", got)
	}
}

func TestFailNextBody(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	body := []byte(`{"message":"The given data was invalid.","errors":{"contact":["The selected contact is invalid."]}}`)
	f.srv.FailNextBody(ActivitiesPath, http.StatusUnprocessableEntity, 1, body)
	status, got := f.putActivity(activity(t, nil))
	if status != http.StatusUnprocessableEntity || string(got) != string(body) {
		t.Errorf("HTTP %d %s", status, got)
	}
	f.srv.FailNext(ActivitiesPath, http.StatusUnprocessableEntity, 1)
	if status, got := f.putActivity(activity(t, nil)); status != http.StatusUnprocessableEntity || validationErrors(t, got) == nil {
		t.Errorf("default 422 body: HTTP %d %s", status, got)
	}
}

func TestFailNextTokenPath(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	f.srv.FailNext(TokenPath, http.StatusInternalServerError, 1)
	f.srv.FailNext("", http.StatusTeapot, 1) // API paths only: not the token call
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"dev"}, "client_secret": {"dev"}}
	if status, body := f.postToken(form); status != http.StatusInternalServerError {
		t.Errorf("scripted token call: HTTP %d %s", status, body)
	}
	if status, _ := f.postToken(form); status != http.StatusOK {
		t.Errorf("next token call: HTTP %d", status)
	}
}

func TestRateLimitRetryAfter(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{RetryAfter: 3 * time.Second})
	f.srv.FailNext(SyncPath, http.StatusTooManyRequests, 1)
	resp, _ := f.do(http.MethodGet, SyncPath, "")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "3" {
		t.Errorf("HTTP %d Retry-After %q, want 429 and 3", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	f.srv.SetRetryAfter(1500 * time.Millisecond) // rounds up
	f.srv.SetRateLimitRate(1)
	resp, _ = f.do(http.MethodPut, ActivitiesPath, activity(t, nil))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("HTTP %d Retry-After %q, want 429 and 2", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	f.srv.SetRetryAfterHTTPDate(true)
	f.srv.SetRetryAfter(time.Minute)
	resp, _ = f.do(http.MethodGet, SyncPath, "")
	when, err := http.ParseTime(resp.Header.Get("Retry-After"))
	if err != nil || when.Before(time.Now().Add(30*time.Second)) {
		t.Errorf("Retry-After %q (%v), want an HTTP date about a minute ahead", resp.Header.Get("Retry-After"), err)
	}

	f.srv.SetRetryAfter(-1)
	resp, _ = f.do(http.MethodGet, SyncPath, "")
	if _, has := resp.Header["Retry-After"]; resp.StatusCode != http.StatusTooManyRequests || has {
		t.Errorf("negative RetryAfter: HTTP %d header %v", resp.StatusCode, resp.Header["Retry-After"])
	}
	f.srv.SetRateLimitRate(0)
	if status, _ := f.status(http.MethodGet, SyncPath, ""); status != http.StatusOK {
		t.Errorf("rate 0: HTTP %d", status)
	}
}

func TestErrorRate(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{ErrorRate: 1})
	for range 5 {
		if status, _ := f.putActivity(activity(t, nil)); status < 500 || status > 599 {
			t.Errorf("ErrorRate 1: HTTP %d", status)
		}
	}
	if f.srv.ActivityCount() != 0 {
		t.Error("failed calls stored activities")
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	f.srv.SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+SyncPath, nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	f.srv.ClearFaults()
	if status, _ := f.status(http.MethodGet, SyncPath, ""); status != http.StatusOK {
		t.Errorf("after ClearFaults: HTTP %d", status)
	}
}

func TestConcurrentKnobs(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			f.srv.SetErrorRate(float64(i%2) / 2)
			f.srv.SetRateLimitRate(0.1)
			f.srv.SetLatency(0)
			f.srv.SetOutage(i%7 == 0)
			f.srv.FailNext("", 500, 1)
			f.srv.SetTokenTTL(time.Hour)
			f.srv.SetCursorMode(CursorNumber)
		}
	}()
	for i := range 50 {
		body := activity(t, map[string]any{"reference": strconv.Itoa(i % 5)})
		f.putActivity(body)
	}
	<-done
}
