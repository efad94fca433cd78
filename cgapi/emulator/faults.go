package emulator

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// faults holds the knobs tests turn at run time. Each is an atomic, so the
// hot path reads them without a lock.
type faults struct {
	latencyNs      atomic.Int64
	errorRate      atomic.Uint64 // float64 bits
	rateLimitRate  atomic.Uint64 // float64 bits
	retryAfterNs   atomic.Int64  // negative: no header
	retryAfterDate atomic.Bool
	outage         atomic.Bool
	tokenOutage    atomic.Bool
	tokenHang      gate

	pending  atomic.Int64 // scripted failures left, to skip the lock when none
	scriptMu sync.Mutex
	scripts  map[string][]*script // normalised path ("" = any API path) -> queue
}

// script is a scripted answer for the next n calls of a path.
type script struct {
	status int
	body   []byte // nil: the API's usual body for status
	left   int
}

func (f *faults) init(o Options) {
	f.latencyNs.Store(int64(o.Latency))
	f.errorRate.Store(math.Float64bits(clampRate(o.ErrorRate)))
	f.rateLimitRate.Store(math.Float64bits(clampRate(o.RateLimitRate)))
	f.retryAfterNs.Store(int64(o.RetryAfter))
	f.retryAfterDate.Store(o.RetryAfterHTTPDate)
	f.scripts = make(map[string][]*script)
}

func clampRate(r float64) float64 {
	if r < 0 || math.IsNaN(r) {
		return 0
	}
	return min(r, 1)
}

func (f *faults) latency() time.Duration { return time.Duration(f.latencyNs.Load()) }

// random draws once: a 5xx with ErrorRate, else a 429 with RateLimitRate.
func (f *faults) random() (status int, ok bool) {
	er := math.Float64frombits(f.errorRate.Load())
	rl := math.Float64frombits(f.rateLimitRate.Load())
	if er == 0 && rl == 0 {
		return 0, false
	}
	x := rand.Float64()
	switch {
	case x < er:
		return serverErrors[rand.IntN(len(serverErrors))], true
	case x < er+rl:
		return http.StatusTooManyRequests, true
	}
	return 0, false
}

// serverErrors are the 5xx statuses ErrorRate picks from, as a real
// service behind a load balancer produces them.
var serverErrors = []int{
	http.StatusInternalServerError,
	http.StatusBadGateway,
	http.StatusServiceUnavailable,
	http.StatusGatewayTimeout,
}

// scripted pops the next scripted failure for path, the path's own queue
// first, then, on an API route, the one for any API path.
func (f *faults) scripted(rt route, path string) (script, bool) {
	if f.pending.Load() == 0 {
		return script{}, false
	}
	keys := []string{normalizePath(path), ""}
	if rt == routeToken {
		keys = keys[:1]
	}
	f.scriptMu.Lock()
	defer f.scriptMu.Unlock()
	for _, k := range keys {
		q := f.scripts[k]
		if len(q) == 0 {
			continue
		}
		s := q[0]
		s.left--
		if s.left == 0 {
			q = q[1:]
			if len(q) == 0 {
				delete(f.scripts, k)
			} else {
				f.scripts[k] = q
			}
		}
		f.pending.Add(-1)
		return *s, true
	}
	return script{}, false
}

// gate holds requests while it is shut.
type gate struct {
	mu sync.Mutex
	ch chan struct{} // non-nil while shut; closed when opened
}

func (g *gate) set(shut bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case shut && g.ch == nil:
		g.ch = make(chan struct{})
	case !shut && g.ch != nil:
		close(g.ch)
		g.ch = nil
	}
}

// closed returns the channel to wait on, nil when the gate is open.
func (g *gate) closed() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ch
}

// retryAfter sets the Retry-After header of a 429.
func (e *Emulator) retryAfter(h http.Header) {
	d := time.Duration(e.faults.retryAfterNs.Load())
	if d < 0 {
		return
	}
	if e.faults.retryAfterDate.Load() {
		// HTTP dates have whole seconds: round up so the wait is not shorter.
		h.Set("Retry-After", time.Now().Add(d+time.Second-1).UTC().Format(http.TimeFormat))
		return
	}
	secs := int64((d + time.Second - 1) / time.Second)
	h.Set("Retry-After", strconv.FormatInt(secs, 10))
}

// answerFault answers status with body, or with the API's usual body for
// that status when body is nil.
func (e *Emulator) answerFault(c *call, status int, body []byte) {
	if status == http.StatusTooManyRequests {
		e.retryAfter(c.w.Header())
	}
	if body != nil {
		c.json(status, body)
		return
	}
	if c.rt == routeToken {
		oauthError(c, status, oauthErrorFor(status))
		return
	}
	switch status {
	case http.StatusUnprocessableEntity:
		c.json(status, []byte(`{"message":"The given data was invalid.","errors":{}}`))
	case http.StatusUnauthorized:
		c.message(status, "Unauthenticated.")
	case http.StatusForbidden:
		c.message(status, "This action is unauthorized.")
	case http.StatusTooManyRequests:
		c.message(status, "Too Many Attempts.")
	case http.StatusInternalServerError:
		c.message(status, "Server Error")
	default:
		c.message(status, http.StatusText(status))
	}
}

func oauthErrorFor(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "invalid_client"
	case status == http.StatusServiceUnavailable:
		return "temporarily_unavailable"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request"
}

func (e *Emulator) answerScripted(c *call, s script) { e.answerFault(c, s.status, s.body) }

// SetLatency adds d to every API call from now on (not to token calls).
func (e *Emulator) SetLatency(d time.Duration) { e.faults.latencyNs.Store(int64(max(d, 0))) }

// SetErrorRate sets the share (0..1) of API calls answered with a 5xx.
func (e *Emulator) SetErrorRate(r float64) {
	e.faults.errorRate.Store(math.Float64bits(clampRate(r)))
}

// SetRateLimitRate sets the share (0..1) of API calls answered 429.
func (e *Emulator) SetRateLimitRate(r float64) {
	e.faults.rateLimitRate.Store(math.Float64bits(clampRate(r)))
}

// SetRetryAfter sets the Retry-After of 429s, rounded up to whole seconds;
// 0 sends "0", a negative d sends no header.
func (e *Emulator) SetRetryAfter(d time.Duration) { e.faults.retryAfterNs.Store(int64(d)) }

// SetRetryAfterHTTPDate makes 429s carry Retry-After as an HTTP date (on)
// or in seconds (off).
func (e *Emulator) SetRetryAfterHTTPDate(on bool) { e.faults.retryAfterDate.Store(on) }

// SetOutage makes every API path answer 503 while on (the token endpoint
// has SetTokenOutage).
func (e *Emulator) SetOutage(on bool) { e.faults.outage.Store(on) }

// FailNext answers the next n calls of path with status and the API's usual
// body for it (a 429 carries Retry-After). path is one of the API paths,
// with or without trailing slash, TokenPath, or "" for whichever API path
// is called next. Scripts queue up in call order and take precedence over
// every other fault.
func (e *Emulator) FailNext(path string, status int, n int) {
	e.FailNextBody(path, status, n, nil)
}

// FailNextBody is FailNext with the JSON body to answer (nil for the usual
// one), e.g. a 422 with the errors a test needs.
func (e *Emulator) FailNextBody(path string, status int, n int, body []byte) {
	if n <= 0 || status < 100 || status > 999 {
		return
	}
	key := ""
	if path != "" {
		key = normalizePath(path)
	}
	f := &e.faults
	f.scriptMu.Lock()
	f.scripts[key] = append(f.scripts[key], &script{status: status, body: body, left: n})
	f.pending.Add(int64(n))
	f.scriptMu.Unlock()
}

// ClearFaults turns every fault off: latency, rates, outages, hangs and
// scripted failures (Retry-After settings are kept).
func (e *Emulator) ClearFaults() {
	f := &e.faults
	f.latencyNs.Store(0)
	f.errorRate.Store(0)
	f.rateLimitRate.Store(0)
	f.outage.Store(false)
	f.tokenOutage.Store(false)
	f.tokenHang.set(false)
	f.scriptMu.Lock()
	clear(f.scripts)
	f.pending.Store(0)
	f.scriptMu.Unlock()
}
