package flow

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/cgworker/cgworker/cgapi"
)

// Breaker thresholds (DESIGN.md, "Flow control"). A breaker opens on
// tripAfter unavailable answers in a row, or when at least half of at least
// tripMinCalls calls in the last tripWindow were unavailable: a random 20%
// of 5xx among successes does either about once in 50,000 tries.
const (
	tripAfter    = 10
	tripMinCalls = 40
	tripWindow   = 10 * time.Second
	tripBucket   = time.Second
)

// Probe timing: the first probe after the breaker opens, and each one after
// a failed probe, waits a random time in [probeMin, probeMax], so replicas
// do not probe in step. A probe's own call is bounded by probeTimeout (or
// four round trips, if longer), so an API that hangs instead of refusing
// does not stretch recovery.
const (
	probeMin     = time.Second
	probeMax     = 2 * time.Second
	probeTimeout = 2 * time.Second
)

// Overload detection over the last recentSize answers: 429s or unavailable
// answers that make up at least half of them (and at least recentMin) are
// the API pushing back, not noise.
const (
	recentSize = 20
	recentMin  = 10
)

// defaultRTT is the round trip assumed before the first success.
const defaultRTT = 100 * time.Millisecond

// Reason names one kind of failed call, the same in metrics, spans and
// logs.
type Reason string

// The reasons a call failed, from cgapi.ClassOf.
const (
	ReasonRateLimit   Reason = "rate-limit"
	ReasonAuth        Reason = "auth"
	ReasonMisconfig   Reason = "misconfigured"
	ReasonUnavailable Reason = "unavailable"
	ReasonContact     Reason = "contact" // a 422 on the contact alone, retried while it may yet arrive
)

// ReasonOf names err's reason. Only errors worth retrying have one.
func ReasonOf(err error) Reason { return reasonOf(cgapi.ClassOf(err)) }

// reasonOf is ReasonOf for an error already classified.
func reasonOf(class cgapi.Class) Reason {
	switch class {
	case cgapi.ClassRateLimit:
		return ReasonRateLimit
	case cgapi.ClassAuth:
		return ReasonAuth
	case cgapi.ClassConfig:
		return ReasonMisconfig
	default:
		return ReasonUnavailable
	}
}

// Reasons lists every Reason, for precomputed metric attributes.
var Reasons = []Reason{ReasonRateLimit, ReasonAuth, ReasonMisconfig, ReasonUnavailable, ReasonContact}

// ErrStopped is returned by Do when Call.Wait ended while the call waited.
var ErrStopped = errors.New("flow: stopped while waiting for the API")

// Call is one call through a Controller.
type Call struct {
	// Wait bounds the wait for the endpoint: when it ends, Do returns
	// ErrStopped without calling.
	Wait context.Context
	// Ctx is the call's own context; a probe's is bounded further.
	Ctx context.Context
	// OnWait, when set, is told once, before Do first blocks, so the
	// caller can give up what others need while it waits (the worker
	// frees the handler and slot of the message).
	OnWait Waiter
}

// Waiter is told that its call is about to wait for the endpoint. An
// interface rather than a func, so a message can be its own Waiter without
// a closure per call.
type Waiter interface{ Wait() }

// WaitFunc is a func as a Waiter.
type WaitFunc func()

// Wait calls f.
func (f WaitFunc) Wait() { f() }

// Result is what became of a Call.
type Result struct {
	Err error
	// Waited is the time spent waiting for the endpoint, not the call:
	// it does not count against a message's retry budget.
	Waited time.Duration
	// Took is how long the call itself took; zero when none was made
	// (Err is ErrStopped).
	Took time.Duration
	// Open reports that the breaker was open when the call ended, so the
	// caller goes back to Do to wait at it instead of backing off alone.
	Open bool
}

// Controller is the flow control of one endpoint family of one replica.
// It is safe for concurrent use.
type Controller struct {
	name    string
	max     int
	limiter *rate.Limiter // CG_RATE_LIMIT, shared by the Set; nil for none
	log     *slog.Logger
	cb      *gobreaker.TwoStepCircuitBreaker[struct{}]

	mu        sync.Mutex
	changed   chan struct{} // closed when waiters may go; made only when someone waits
	limit     float64
	inflight  int
	waiting   int
	paused    time.Time // no calls before this (a spent window)
	pauses    int       // endpoint-wide pauses so far
	opens     int       // times the breaker opened
	changes   int       // breaker state changes, to tell whether a call made one
	budget    int       // calls left in the rate-limit window, if quota
	quota     bool      // the API sends X-RateLimit-Remaining
	rtt       time.Duration
	lastCut   time.Time
	recent    [recentSize]Reason // "" for a good answer
	recentN   int
	recentPos int

	open      bool // breaker open or half-open
	probing   bool // the one probe is in flight
	nextProbe time.Time
	openedAt  time.Time
	cause     string
	openTotal time.Duration // closed periods of being open
}

func newController(name string, maxInFlight int, limiter *rate.Limiter, log *slog.Logger) *Controller {
	c := &Controller{
		name:    name,
		max:     max(maxInFlight, 1),
		limiter: limiter,
		log:     log.With("endpoint", name),
		limit:   float64(max(maxInFlight, 1)),
		rtt:     defaultRTT,
	}
	c.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         name,
		MaxRequests:  1, // one probe at a time
		Interval:     tripWindow,
		BucketPeriod: tripBucket,
		// The probe schedule is ours (nextProbe): gobreaker may go
		// half-open at once, and we decide when the probe is sent.
		Timeout: time.Nanosecond,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			return n.ConsecutiveFailures >= tripAfter ||
				(n.Requests >= tripMinCalls && 2*n.TotalFailures >= n.Requests)
		},
		IsSuccessful:  func(err error) bool { return !cgapi.IsOutage(err) },
		IsExcluded:    func(err error) bool { return cgapi.ClassOf(err) == cgapi.ClassCanceled },
		OnStateChange: c.stateChanged,
	})
	return c
}

// Name is the endpoint family: activities, records, sync or token.
func (c *Controller) Name() string { return c.name }

// stateChanged is gobreaker's callback. Every breaker call is made under
// c.mu, so c.mu is held here.
func (c *Controller) stateChanged(_ string, _, to gobreaker.State) {
	now := time.Now()
	c.changes++
	switch to {
	case gobreaker.StateOpen:
		c.nextProbe = now.Add(probeMin + rand.N(probeMax-probeMin+1))
		if !c.open {
			c.open, c.openedAt = true, now
			c.opens++
			c.log.Warn("API breaker open: calls wait for the API to recover", "cause", c.cause)
		}
	case gobreaker.StateClosed:
		if c.open {
			d := now.Sub(c.openedAt)
			c.open, c.openTotal = false, c.openTotal+d
			c.log.Info("API breaker closed: calls flow again", "open_for", d.Round(time.Millisecond))
			c.broadcast()
		}
	}
}

// broadcast wakes every waiter; c.mu is held. Without waiters it costs
// nothing, so the calls of a healthy endpoint make no channels.
func (c *Controller) broadcast() {
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

// waitCh is the channel broadcast closes; c.mu is held.
func (c *Controller) waitCh() chan struct{} {
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	return c.changed
}

// Do waits until the endpoint may take a call, makes it with fn, and
// learns from its answer. fn must return the cgapi error of the call.
func (c *Controller) Do(call Call, fn func(context.Context) error) Result {
	var res Result
	t, parkedAt, err := c.acquire(call)
	if !parkedAt.IsZero() {
		// Only a call that waited reads the clock for it: the clock is
		// read four times per call as it is (twice here, twice by the
		// breaker), and a healthy endpoint never waits.
		res.Waited = time.Since(parkedAt)
	}
	if err != nil {
		res.Err = err
		return res
	}
	ctx := call.Ctx
	if t.probe {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.probeTimeout)
		defer cancel()
	}
	var q cgapi.Quota
	began := time.Now()
	res.Err = fn(cgapi.WithQuota(ctx, &q))
	ended := time.Now()
	res.Took = ended.Sub(began)
	res.Open = c.release(t, res.Err, q, res.Took, ended)
	return res
}

// Run is Do for a caller that waits as long as ctx allows and needs only
// the error, in the shape of cgapi.Config.TokenCall.
func (c *Controller) Run(ctx context.Context, fn func(context.Context) error) error {
	return c.Do(Call{Wait: ctx, Ctx: ctx}, fn).Err
}

// ticket is one admitted call.
type ticket struct {
	done         func(error)
	probe        bool
	probeTimeout time.Duration
}

// acquire waits for the endpoint: the rate limit, then the breaker, the
// pause, the concurrency limit and the window's budget. parkedAt is when
// it first had to wait; zero when it did not.
func (c *Controller) acquire(call Call) (_ ticket, parkedAt time.Time, _ error) {
	park := func() {
		if parkedAt.IsZero() {
			parkedAt = time.Now()
			if call.OnWait != nil {
				call.OnWait.Wait()
			}
		}
	}
	if c.limiter != nil {
		if r := c.limiter.Reserve(); r.Delay() > 0 {
			park()
			if !c.sleep(call.Wait, r.Delay()) {
				r.Cancel()
				return ticket{}, parkedAt, ErrStopped
			}
		}
	}
	counted := false
	defer func() {
		if counted {
			c.mu.Lock()
			c.waiting--
			c.mu.Unlock()
		}
	}()
	for {
		c.mu.Lock()
		// The clock matters only to an open breaker or a pause, which
		// is forgotten once over.
		var now time.Time
		if c.open || !c.paused.IsZero() {
			now = time.Now()
			if !c.open && !now.Before(c.paused) {
				c.paused = time.Time{}
			}
		}
		var until time.Time // a time to look again, besides a change
		switch {
		case c.open && c.probing:
			// The probe's answer wakes us.
		case c.open && now.Before(c.nextProbe):
			until = c.nextProbe
		case !c.open && now.Before(c.paused):
			until = c.paused
		case !c.open && (c.inflight >= int(c.limit) || c.quota && c.budget <= 0 && c.inflight > 0):
		default:
			done, err := c.cb.Allow()
			if err == nil {
				t := ticket{done: done, probe: c.open}
				if t.probe {
					c.probing = true
					t.probeTimeout = max(probeTimeout, 4*c.rtt)
				}
				c.inflight++
				c.budget--
				c.mu.Unlock()
				return t, parkedAt, nil
			}
			// Half-open with its probe out, or just opened: look again
			// at the next probe time.
			until = time.Now().Add(probeMin)
		}
		ch := c.waitCh()
		if !counted {
			counted = true
			c.waiting++
		}
		c.mu.Unlock()
		park()
		var tm *time.Timer
		var timer <-chan time.Time
		if !until.IsZero() {
			tm = time.NewTimer(max(time.Until(until), 0))
			timer = tm.C
		}
		stopped := false
		select {
		case <-ch:
		case <-timer:
		case <-call.Wait.Done():
			stopped = true
		}
		if tm != nil {
			tm.Stop()
		}
		if stopped {
			return ticket{}, parkedAt, ErrStopped
		}
	}
}

// release learns from a call's answer, which came at now after took, and
// reports whether the breaker is open afterwards.
func (c *Controller) release(t ticket, err error, q cgapi.Quota, took time.Duration, now time.Time) bool {
	class := cgapi.ClassOf(err)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight--
	if t.probe {
		c.probing = false
	}
	if class != cgapi.ClassCanceled {
		var r Reason
		if class != cgapi.ClassNone && class != cgapi.ClassData {
			r = reasonOf(class)
		}
		c.recent[c.recentPos] = r
		c.recentPos = (c.recentPos + 1) % recentSize
		c.recentN = min(c.recentN+1, recentSize)
	}
	outage := class.Outage()
	if outage && !c.open {
		c.cause = err.Error()
	}
	changes := c.changes
	t.done(err) // may open or close the breaker (stateChanged)

	if q.Known {
		c.quota, c.budget = true, q.Remaining-c.inflight
	} else if class == cgapi.ClassNone || class != cgapi.ClassCanceled && cgapi.StatusOf(err) != 0 {
		// The API answered without a window, a success included: the
		// last one it reported, spent or not, is no longer in force.
		c.quota = false
	}
	switch {
	case class == cgapi.ClassNone || class == cgapi.ClassData:
		c.rtt = (c.rtt*7 + took) / 8
		if !c.open && c.limit < float64(c.max) {
			c.limit = min(c.limit+1/c.limit, float64(c.max))
		}
	case class == cgapi.ClassRateLimit:
		rl, _ := errors.AsType[*cgapi.RateLimitError](err)
		if rl.Quota.Spent() || c.share(func(r Reason) bool { return r == ReasonRateLimit }) {
			wait := rl.RetryAfter
			if wait <= 0 {
				wait = time.Second
			}
			until := now.Add(wait)
			if r := rl.Quota.Reset; r.After(now) && r.Before(until) {
				// Retry-After has whole seconds; the window may turn
				// sooner. The call that got the 429 still waits out its
				// Retry-After (its caller's backoff); the others go when
				// the window turns.
				until = r
			}
			if until.After(c.paused) {
				if !now.Before(c.paused) {
					c.pauses++
				}
				c.paused = until
			}
			c.cut(now)
		}
	case outage:
		if c.share(func(r Reason) bool { return r != "" }) {
			c.cut(now)
		}
	}
	if t.probe && c.open && c.changes == changes {
		// The probe's answer neither opened nor closed the breaker (an
		// excluded cancellation): the next waiter probes.
		c.nextProbe = now
	}
	c.broadcast()
	return c.open
}

// cut halves the limit, at most once per round trip and never while the
// breaker is open (it stays where it was when the breaker opened).
func (c *Controller) cut(now time.Time) {
	if c.open || now.Sub(c.lastCut) < c.rtt {
		return
	}
	c.lastCut = now
	c.limit = max(c.limit/2, 1)
}

// share reports whether answers that match make up at least half of
// enough recent answers.
func (c *Controller) share(match func(Reason) bool) bool {
	if c.recentN < recentMin {
		return false
	}
	n := 0
	for i := range c.recentN {
		if match(c.recent[i]) {
			n++
		}
	}
	return 2*n >= c.recentN
}

// sleep waits d, counted as waiting, or until ctx ends, and reports
// whether d passed.
func (c *Controller) sleep(ctx context.Context, d time.Duration) bool {
	c.mu.Lock()
	c.waiting++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.waiting--
		c.mu.Unlock()
	}()
	return Sleep(ctx, d) == nil
}

// State is a breaker state as the metrics report it.
type State int

// Breaker states, as cgworker_api_breaker_state reports them.
const (
	Closed   State = 0
	Open     State = 1
	HalfOpen State = 2
)

// Snapshot is a Controller's state at one moment.
type Snapshot struct {
	State     State
	Limit     int
	Waiting   int
	InFlight  int
	OpenSince time.Time // zero when closed
	Cause     string    // why it opened, when open
	OpenTotal time.Duration
	Pauses    int // endpoint-wide pauses for a spent rate-limit window
	Opens     int // times the breaker opened
}

// Snapshot returns the controller's state now.
func (c *Controller) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Snapshot{Limit: int(c.limit), Waiting: c.waiting, InFlight: c.inflight, OpenTotal: c.openTotal, Pauses: c.pauses, Opens: c.opens}
	if c.open {
		s.State, s.OpenSince, s.Cause = Open, c.openedAt, c.cause
		s.OpenTotal += time.Since(c.openedAt)
		if c.probing {
			s.State = HalfOpen
		}
	}
	return s
}

// readyLocked reports whether the endpoint takes calls: the breaker is
// closed, the endpoint not paused, and fewer calls wait for a turn than
// the most it may have in flight. Pullers fetch only for ready endpoints,
// so the calls waiting stay bounded. c.mu is held.
func (c *Controller) readyLocked(now time.Time) bool {
	return !c.open && !now.Before(c.paused) && c.waiting < c.max
}

// WaitReady blocks until the endpoint is ready (readyLocked) or until ctx
// ends, and reports whether it is.
func (c *Controller) WaitReady(ctx context.Context) bool {
	for {
		c.mu.Lock()
		now := time.Now()
		if c.readyLocked(now) {
			c.mu.Unlock()
			return true
		}
		ch, until := c.waitCh(), c.paused
		if c.open {
			until = c.nextProbe
		}
		c.mu.Unlock()
		d := time.Until(until)
		if d <= 0 {
			d = probeMin
		}
		t := time.NewTimer(d)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
		t.Stop()
	}
}
