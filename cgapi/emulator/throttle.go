package emulator

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// throttle answers like Laravel's throttle middleware with one-second
// windows: X-RateLimit-Limit and X-RateLimit-Remaining on every API answer,
// and beyond the limit a 429 with Retry-After up to the window's end and
// X-RateLimit-Reset (its Unix time). Calls refused do not count against the
// window, as in Laravel.
type throttle struct {
	limit atomic.Int64 // calls per window; 0: no limit, no headers

	mu     sync.Mutex
	window int64 // Unix second of the current window
	hits   int64
}

// take counts a call in the current window and sets the headers; ok is
// false when the window is spent and the call must be answered 429.
func (t *throttle) take(h http.Header, now time.Time) (ok bool) {
	limit := t.limit.Load()
	if limit <= 0 {
		return true
	}
	sec := now.Unix()
	t.mu.Lock()
	if sec != t.window {
		t.window, t.hits = sec, 0
	}
	ok = t.hits < limit
	if ok {
		t.hits++
	}
	remaining := limit - t.hits
	t.mu.Unlock()

	h.Set("X-RateLimit-Limit", strconv.FormatInt(limit, 10))
	h.Set("X-RateLimit-Remaining", strconv.FormatInt(remaining, 10))
	if !ok {
		end := time.Unix(sec+1, 0)
		secs := int64((end.Sub(now) + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(end.Unix(), 10))
	}
	return ok
}

// SetRateLimit limits API calls to n per one-second window from now on; 0
// lifts the limit.
func (e *Emulator) SetRateLimit(n int) { e.throttle.limit.Store(int64(max(n, 0))) }
