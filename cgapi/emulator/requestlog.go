package emulator

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// maxLoggedBody is how much of each request body the log keeps.
const maxLoggedBody = 8 << 10

// maxCountedPaths bounds the per-path counters against clients that call
// ever-new paths.
const maxCountedPaths = 1024

// requestLog is a ring of the last requests plus per-path call counters.
type requestLog struct {
	disabled bool
	ringSize int

	mu    sync.Mutex
	ring  []Request
	next  int            // where the next request goes: len(ring) until the ring wraps, then the oldest
	calls map[string]int // normalised path -> calls
}

func (l *requestLog) init(o Options) {
	l.disabled = o.NoRequestLog
	if !l.disabled {
		l.ring = make([]Request, 0, min(o.RequestLogSize, 1024))
	}
	l.calls = make(map[string]int)
	l.ringSize = o.RequestLogSize
}

func (l *requestLog) add(c *call, arrived time.Time) {
	path := normalizePath(c.r.URL.Path)
	if l.disabled {
		l.mu.Lock()
		l.count(path)
		l.mu.Unlock()
		return
	}
	req := Request{
		Method:   c.r.Method,
		Path:     c.r.URL.Path,
		Query:    c.r.URL.RawQuery,
		Header:   redact(c.r.Header),
		BodySize: len(c.body),
		Status:   c.status,
		Time:     arrived,
	}
	if c.rt != routeToken { // a token request's body carries the secret
		req.Body = c.body
		if len(req.Body) > maxLoggedBody {
			// Copy, so the log does not pin a 2 MiB buffer.
			req.Body = append([]byte(nil), req.Body[:maxLoggedBody]...)
		}
	}
	if c.rt == routeToken {
		req.Query = "" // may carry credentials too
	}
	l.mu.Lock()
	l.count(path)
	if len(l.ring) < l.ringSize {
		l.ring = append(l.ring, req)
	} else {
		l.ring[l.next] = req
	}
	l.next = (l.next + 1) % l.ringSize
	l.mu.Unlock()
}

// count adds one call of path; the caller holds l.mu.
func (l *requestLog) count(path string) {
	if _, ok := l.calls[path]; ok || len(l.calls) < maxCountedPaths {
		l.calls[path]++
	}
}

// redact clones h without credentials.
func redact(h http.Header) http.Header {
	h = h.Clone()
	if v := h.Get("Authorization"); v != "" {
		scheme, _, _ := strings.Cut(v, " ")
		h.Set("Authorization", scheme+" [redacted]")
	}
	return h
}

// Requests returns the logged requests, oldest first: the last
// Options.RequestLogSize of them, none with Options.NoRequestLog.
func (e *Emulator) Requests() []Request {
	l := &e.log
	l.mu.Lock()
	defer l.mu.Unlock()
	// Until the ring wraps, next == len(ring) and this is the ring as is.
	out := make([]Request, 0, len(l.ring))
	out = append(out, l.ring[l.next:]...)
	return append(out, l.ring[:l.next]...)
}

// ResetRequests empties the request log (counters are kept).
func (e *Emulator) ResetRequests() {
	l := &e.log
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.ring)
	l.ring, l.next = l.ring[:0], 0
}

// Calls counts the requests made to path, whatever their outcome; a
// trailing slash does not matter ("/activities/" and "/activities" are one).
func (e *Emulator) Calls(path string) int {
	l := &e.log
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[normalizePath(path)]
}
