package emulator

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// The rate limit answers like Laravel's throttle: X-RateLimit-Limit and
// X-RateLimit-Remaining on every answer; beyond the limit a 429 with
// Retry-After up to the window's end and X-RateLimit-Reset.
func TestRateLimitAnswersLikeLaravelsThrottle(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{RateLimit: 3})
	const body = `{"reference":"r","account":"ACME","type":"T","source":"S"}`
	var limited *http.Response
	var at time.Time
	for range 20 {
		resp, _ := f.do(http.MethodPut, ActivitiesPath, body)
		if resp.Header.Get("X-RateLimit-Limit") != "3" {
			t.Fatalf("X-RateLimit-Limit = %q, want 3", resp.Header.Get("X-RateLimit-Limit"))
		}
		rem, err := strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining"))
		if err != nil || rem < 0 || rem > 2 {
			t.Fatalf("X-RateLimit-Remaining = %q, want 0 to 2", resp.Header.Get("X-RateLimit-Remaining"))
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			limited, at = resp, time.Now()
			break
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Retry-After") != "" {
			t.Fatalf("within the limit: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if limited == nil {
		t.Fatal("no 429 in 20 calls at 3 a second")
	}
	h := limited.Header
	if h.Get("X-RateLimit-Remaining") != "0" || h.Get("Retry-After") != "1" {
		t.Errorf("429: Remaining %q, Retry-After %q; want 0 and 1", h.Get("X-RateLimit-Remaining"), h.Get("Retry-After"))
	}
	reset, err := strconv.ParseInt(h.Get("X-RateLimit-Reset"), 10, 64)
	if err != nil || reset < at.Unix() || reset > at.Unix()+2 {
		t.Errorf("X-RateLimit-Reset = %q, want the end of the current one-second window", h.Get("X-RateLimit-Reset"))
	}
	f.srv.SetRateLimit(0)
	resp, _ := f.do(http.MethodPut, ActivitiesPath, body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-RateLimit-Limit") != "" {
		t.Errorf("without a limit: %d with X-RateLimit-Limit %q", resp.StatusCode, resp.Header.Get("X-RateLimit-Limit"))
	}
}
