package flow_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/cgapi/cgapitest"
	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/cgapi/flow"
	"github.com/cgworker/cgworker/worker/proctest"
)

const activity = `{"reference":"ref-1","account":"ACME","type":"Support Ticket","source":"Freshdesk","happened_at":"2019-10-06 22:34:45"}`

type rig struct {
	emu    *emulator.Server
	client *cgapi.Client
	set    *flow.Set
	ctrl   *flow.Controller
}

func newRig(t *testing.T, opts emulator.Options, concurrency int) *rig {
	t.Helper()
	emu := cgapitest.NewServer(t, opts)
	set, err := flow.NewSet(flow.Config{Concurrency: concurrency})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	return &rig{emu: emu, client: cgapitest.NewClient(t, emu, opts), set: set, ctrl: set.Endpoint(flow.Activities)}
}

// put is one PUT through the controller.
func (r *rig) put(ctx context.Context) flow.Result {
	return r.ctrl.Do(flow.Call{Wait: ctx, Ctx: ctx}, func(ctx context.Context) error {
		return r.client.PutActivity(ctx, []byte(activity))
	})
}

// deliver retries one activity as the worker does: back at the breaker
// at once while it is open, a short backoff otherwise; never before a
// 429's Retry-After.
func (r *rig) deliver(ctx context.Context) error {
	for {
		res := r.put(ctx)
		if res.Err == nil || errors.Is(res.Err, flow.ErrStopped) {
			return res.Err
		}
		if res.Open {
			continue
		}
		d := max(cgapi.RetryAfterOf(res.Err), 10*time.Millisecond)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// run calls fn from n goroutines, calls times in all.
func run(n, calls int, fn func()) {
	var left atomic.Int64
	left.Store(int64(calls))
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				fn()
			}
		})
	}
	wg.Wait()
}

func TestRandomServerErrorsDoNotOpenTheBreaker(t *testing.T) {
	t.Parallel()
	r := newRig(t, emulator.Options{ErrorRate: 0.2}, 16)
	var failed atomic.Int64
	run(16, 1500, func() {
		if res := r.put(t.Context()); res.Err != nil {
			failed.Add(1)
		}
	})
	snap := r.ctrl.Snapshot()
	if snap.Opens != 0 || snap.State != flow.Closed {
		t.Errorf("a random 20%% of 5xx opened the breaker %d times (state %d)", snap.Opens, snap.State)
	}
	if f := failed.Load(); f < 150 {
		t.Errorf("only %d of 1500 calls failed: the fault mix did not apply", f)
	}
	if err := r.set.Unavailable(); err != nil {
		t.Errorf("Unavailable() = %v with every breaker closed", err)
	}
}

func TestOutageOpensTheBreakerProbesAndRecovers(t *testing.T) {
	t.Parallel()
	r := newRig(t, emulator.Options{}, 32)
	r.emu.SetOutage(true)
	var done atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if err := r.deliver(t.Context()); err == nil {
				done.Add(1)
			}
		})
	}
	proctest.WaitFor(t, 5*time.Second, 5*time.Millisecond, "breaker open", func() (bool, string) {
		return r.ctrl.Snapshot().State != flow.Closed, ""
	})
	err := r.set.Unavailable()
	if err == nil {
		t.Fatal("Unavailable() = nil with the activities breaker open")
	}
	t.Logf("readiness: %v", err)
	// The calls in flight when it opened come back and wait.
	proctest.WaitFor(t, 5*time.Second, 5*time.Millisecond, "callers waiting", func() (bool, string) {
		s := r.ctrl.Snapshot()
		return s.Waiting >= 31 && s.InFlight <= 1, ""
	})

	// While open: only probes, one at a time, at most one every second.
	before := r.emu.Calls(emulator.ActivitiesPath)
	const window = 3 * time.Second
	measured := time.Now()
	proctest.WaitFor(t, 2*window, 10*time.Millisecond, "the measured span", func() (bool, string) {
		return time.Since(measured) >= window, ""
	})
	calls := r.emu.Calls(emulator.ActivitiesPath) - before
	if calls < 1 || calls > 4 {
		t.Errorf("%d calls in %s while the API was down; want 1 to 4 probes", calls, window)
	}
	if done.Load() != 0 {
		t.Fatalf("%d deliveries succeeded during the outage", done.Load())
	}

	// The first probe that succeeds closes it, and every waiter goes.
	back := time.Now()
	r.emu.SetOutage(false)
	wg.Wait()
	if took := time.Since(back); took > 4*time.Second {
		t.Errorf("recovery took %s, want within a probe interval (<= 2 s) and a little", took)
	}
	if n := done.Load(); n != 32 {
		t.Errorf("%d of 32 delivered after the outage", n)
	}
	snap := r.ctrl.Snapshot()
	if snap.State != flow.Closed || snap.Opens != 1 || snap.OpenTotal < window {
		t.Errorf("after recovery: %+v, want closed, opened once, open for at least %s", snap, window)
	}
	if snap.Limit != 32 {
		t.Errorf("limit %d after recovery, want 32 restored", snap.Limit)
	}
	if err := r.set.Unavailable(); err != nil {
		t.Errorf("Unavailable() = %v after recovery", err)
	}
}

func TestLoneRateLimitsDelayOnlyTheirCall(t *testing.T) {
	t.Parallel()
	r := newRig(t, emulator.Options{RateLimitRate: 0.1, RetryAfter: time.Second}, 16)
	var limited atomic.Int64
	minLimit := atomic.Int64{}
	minLimit.Store(16)
	run(16, 1500, func() {
		res := r.put(t.Context())
		if cgapi.ClassOf(res.Err) == cgapi.ClassRateLimit {
			limited.Add(1)
		}
		if l := int64(r.ctrl.Snapshot().Limit); l < minLimit.Load() {
			minLimit.Store(l)
		}
	})
	snap := r.ctrl.Snapshot()
	if snap.Pauses != 0 {
		t.Errorf("random 429s paused the whole endpoint %d times; no window was spent", snap.Pauses)
	}
	if minLimit.Load() <= 1 {
		t.Errorf("random 429s pinned the concurrency limit at %d", minLimit.Load())
	}
	if limited.Load() < 50 {
		t.Errorf("only %d 429s in 1500 calls: the fault mix did not apply", limited.Load())
	}
}

func TestSpentWindowPausesTheEndpoint(t *testing.T) {
	t.Parallel()
	r := newRig(t, emulator.Options{RateLimit: 2}, 8)
	var rl *cgapi.RateLimitError
	var limitedAt time.Time
	for range 20 {
		res := r.put(t.Context())
		if errors.As(res.Err, &rl) {
			limitedAt = time.Now()
			break
		}
		if res.Waited != 0 || res.Took <= 0 {
			t.Errorf("a call to an endpoint with room reports a wait of %s and a call of %s", res.Waited, res.Took)
		}
	}
	if rl == nil || !rl.Quota.Spent() || rl.RetryAfter <= 0 {
		t.Fatalf("no 429 for a spent window in 20 calls at 2 a second (last %+v)", rl)
	}
	if p := r.ctrl.Snapshot().Pauses; p != 1 {
		t.Fatalf("%d endpoint pauses after a 429 saying the window is spent, want 1", p)
	}
	// Every caller now waits until the window turns (X-RateLimit-Reset,
	// or the Retry-After when sooner), not only the one that got the 429.
	notBefore := limitedAt.Add(rl.RetryAfter)
	if reset := rl.Quota.Reset; !reset.IsZero() && reset.Before(notBefore) {
		notBefore = reset
	}
	var wg sync.WaitGroup
	var early atomic.Int64
	for range 4 {
		wg.Go(func() {
			start := time.Now()
			res := r.ctrl.Do(flow.Call{Wait: t.Context(), Ctx: t.Context()}, func(context.Context) error {
				if time.Now().Before(notBefore.Add(-20 * time.Millisecond)) {
					early.Add(1)
				}
				return nil
			})
			if res.Err != nil {
				t.Error(res.Err)
			}
			// The wait is reported, so that it does not count against
			// a message's retry budget.
			if want := notBefore.Sub(start) - 50*time.Millisecond; res.Waited < want {
				t.Errorf("a call paused for %s reports a wait of %s", notBefore.Sub(start), res.Waited)
			}
		})
	}
	wg.Wait()
	if n := early.Load(); n != 0 {
		t.Errorf("%d calls went before the spent window turned (Retry-After %s, reset %s)", n, rl.RetryAfter, rl.Quota.Reset)
	}
}

func TestPacingKeepsRateLimitedShareLow(t *testing.T) {
	t.Parallel()
	r := newRig(t, emulator.Options{RateLimit: 100, Latency: 5 * time.Millisecond}, 32)
	var limited, ok atomic.Int64
	var early atomic.Int64
	var mu sync.Mutex
	// The endpoint's pause as the callers see it: from an answer saying
	// the window is spent until the window turns (X-RateLimit-Reset, or
	// the Retry-After when sooner). A call started in it must wait.
	var pausedAt, notBefore time.Time
	run(32, 400, func() {
		mu.Lock()
		start := time.Now()
		inPause := start.After(pausedAt) && start.Before(notBefore.Add(-50*time.Millisecond))
		mu.Unlock()
		res := r.put(t.Context())
		now := time.Now()
		mu.Lock()
		if inPause && res.Waited == 0 {
			early.Add(1) // went straight out while the endpoint was paused
		}
		if rl, isRL := errors.AsType[*cgapi.RateLimitError](res.Err); isRL && rl.Quota.Spent() && now.After(notBefore) {
			pausedAt, notBefore = now, now.Add(rl.RetryAfter)
			if reset := rl.Quota.Reset; !reset.IsZero() && reset.Before(notBefore) {
				notBefore = reset
			}
		}
		mu.Unlock()
		switch cgapi.ClassOf(res.Err) {
		case cgapi.ClassNone:
			ok.Add(1)
		case cgapi.ClassRateLimit:
			limited.Add(1)
		}
	})
	snap := r.ctrl.Snapshot()
	total := ok.Load() + limited.Load()
	share := float64(limited.Load()) / float64(total)
	t.Logf("%d stored, %d answered 429 (%.1f%%), %d pauses", ok.Load(), limited.Load(), 100*share, snap.Pauses)
	if share > 0.20 {
		t.Errorf("%.1f%% of calls answered 429; pacing by X-RateLimit-Remaining should keep it well under 20%%", 100*share)
	}
	if n := early.Load(); n > 0 {
		t.Errorf("%d calls went straight out while a spent window paused the endpoint", n)
	}
}

func TestProbeWaitIsBounded(t *testing.T) {
	t.Parallel()
	r := newRig(t, emulator.Options{}, 4)
	r.emu.SetOutage(true)
	for r.ctrl.Snapshot().State == flow.Closed {
		_ = r.put(t.Context())
	}
	// The API now hangs instead of refusing: the probe gives up after its
	// own bound, not the client's 10 s timeout, and the next one follows.
	r.emu.SetOutage(false)
	r.emu.SetLatency(time.Minute)
	start := time.Now()
	res := r.put(t.Context())
	took := time.Since(start)
	if res.Err == nil || !res.Open {
		t.Fatalf("probe against a hanging API: %+v, want an error with the breaker still open", res)
	}
	if took > 5*time.Second {
		t.Errorf("probe took %s, want bounded by about 2 s after its wait", took)
	}
	r.emu.SetLatency(0)
	if err := r.deliver(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r.ctrl.Snapshot().State != flow.Closed {
		t.Error("breaker still open after a successful probe")
	}
}

func TestStoppedWhileWaiting(t *testing.T) {
	t.Parallel()
	r := newRig(t, emulator.Options{}, 4)
	r.emu.SetOutage(true)
	for r.ctrl.Snapshot().State == flow.Closed {
		_ = r.put(t.Context())
	}
	ctx, cancel := context.WithCancel(t.Context())
	var parked atomic.Bool
	before := r.emu.Calls(emulator.ActivitiesPath)
	res := r.ctrl.Do(flow.Call{Wait: ctx, Ctx: t.Context(), OnWait: flow.WaitFunc(func() { parked.Store(true); cancel() })}, func(ctx context.Context) error {
		return r.client.PutActivity(ctx, []byte(activity))
	})
	if !errors.Is(res.Err, flow.ErrStopped) || !parked.Load() || res.Took != 0 || res.Waited <= 0 {
		t.Errorf("Do = %+v, parked %t; want ErrStopped after OnWait, a wait and no call", res, parked.Load())
	}
	if n := r.emu.Calls(emulator.ActivitiesPath) - before; n > 1 {
		t.Errorf("%d calls while stopped", n)
	}
}

func TestTokenEndpointHasItsOwnBreaker(t *testing.T) {
	t.Parallel()
	emu := cgapitest.NewServer(t, emulator.Options{})
	set, err := flow.NewSet(flow.Config{Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	cfg := cgapitest.Config(emu, emulator.Options{})
	cfg.TokenCall = set.Endpoint(flow.Token).Run
	client, err := cgapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	emu.SetTokenOutage(true)
	for range 12 {
		if err := client.PutActivity(t.Context(), []byte(activity)); !cgapi.IsOutage(err) {
			t.Fatalf("PUT with the token endpoint down: %v, want unavailable", err)
		}
		if set.Endpoint(flow.Token).Snapshot().State != flow.Closed {
			break
		}
	}
	err = set.Unavailable()
	if err == nil || set.Endpoint(flow.Token).Snapshot().State == flow.Closed {
		t.Fatalf("token breaker still closed after failing token fetches (%v)", err)
	}
	if set.Endpoint(flow.Activities).Snapshot().State != flow.Closed {
		t.Error("the activities breaker opened: its calls never went through it")
	}
	emu.SetTokenOutage(false)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for client.PutActivity(ctx, []byte(activity)) != nil && ctx.Err() == nil {
	}
	if ctx.Err() != nil || set.Unavailable() != nil {
		t.Fatalf("no recovery once the token endpoint is back: %v", set.Unavailable())
	}
}

// TestRateLimitPacesTheReplica: CG_RATE_LIMIT is one limit for the whole
// replica, every endpoint together; a call stopped while it waits for it
// gives its turn back.
func TestRateLimitPacesTheReplica(t *testing.T) {
	t.Parallel()
	const perSecond, calls = 20, 12 // burst: 2, a tenth of a second's calls
	emu := cgapitest.NewServer(t, emulator.Options{})
	client := cgapitest.NewClient(t, emu, emulator.Options{})
	set, err := flow.NewSet(flow.Config{Concurrency: 8, RateLimit: perSecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	// The token and a connection first, outside the limiter, so the first
	// paced call costs what the others do.
	if err := client.PutActivity(t.Context(), []byte(activity)); err != nil {
		t.Fatal(err)
	}
	var i atomic.Int64
	run(4, calls, func() {
		ctx := t.Context()
		var res flow.Result
		if i.Add(1)%2 == 0 {
			res = set.Endpoint(flow.Records).Do(flow.Call{Wait: ctx, Ctx: ctx}, func(ctx context.Context) error {
				return client.PutRecord(ctx, "account", []byte(`{"Account Name":"ACME"}`))
			})
		} else {
			res = set.Endpoint(flow.Activities).Do(flow.Call{Wait: ctx, Ctx: ctx}, func(ctx context.Context) error {
				return client.PutActivity(ctx, []byte(activity))
			})
		}
		if res.Err != nil {
			t.Error(res.Err)
		}
	})
	var times []time.Time
	for _, req := range emu.Requests() {
		if req.Method == "PUT" {
			times = append(times, req.Time)
		}
	}
	times = times[1:] // after the warm-up
	if len(times) != calls {
		t.Fatalf("%d PUTs, want %d", len(times), calls)
	}
	// After the burst of 2, one call every 50 ms: the last at least
	// 450 ms after the first (less a margin for the clock).
	if span := times[len(times)-1].Sub(times[0]); span < 400*time.Millisecond {
		t.Errorf("%d calls over %s at %d/s: not paced", calls, span, perSecond)
	}

	// One call a second: the first takes the burst, the second waits and
	// is stopped, and the third must not wait for the second's turn too.
	slow := flow.NewController(flow.Activities, flow.Config{RateLimit: 1})
	put := func(ctx context.Context) error { return client.PutActivity(ctx, []byte(activity)) }
	if res := slow.Do(flow.Call{Wait: t.Context(), Ctx: t.Context()}, put); res.Err != nil {
		t.Fatal(res.Err)
	}
	stop, cancel := context.WithCancel(t.Context())
	parked := false
	res := slow.Do(flow.Call{Wait: stop, Ctx: t.Context(), OnWait: flow.WaitFunc(func() { parked = true; cancel() })}, put)
	if !errors.Is(res.Err, flow.ErrStopped) || !parked {
		t.Fatalf("stopped while waiting for the rate limit: %+v, parked %t", res, parked)
	}
	began := time.Now()
	if res := slow.Do(flow.Call{Wait: t.Context(), Ctx: t.Context()}, put); res.Err != nil {
		t.Fatal(res.Err)
	}
	if waited := time.Since(began); waited > 1500*time.Millisecond {
		t.Errorf("the next call waited %s: the stopped call's turn was not given back", waited)
	}
}

// TestWindowForgottenWhenAnswersStopCarryingIt: an API that stops sending
// X-RateLimit-* (its limit lifted, or headers sent only with a 429) must
// not leave the endpoint held to one call at a time by the last window it
// reported spent. Each answer says what the window is now, and an answer
// without one says there is none.
func TestWindowForgottenWhenAnswersStopCarryingIt(t *testing.T) {
	t.Parallel()
	r := newRig(t, emulator.Options{RateLimit: 2, Latency: 20 * time.Millisecond}, 16)
	var rl *cgapi.RateLimitError
	for range 20 {
		if res := r.put(t.Context()); errors.As(res.Err, &rl) {
			break
		}
	}
	if rl == nil || !rl.Quota.Spent() {
		t.Fatalf("no 429 for a spent window in 20 calls at 2 a second (last %+v)", rl)
	}
	r.emu.SetRateLimit(0) // answers from now on carry no window

	var now, most atomic.Int64
	run(16, 96, func() {
		res := r.ctrl.Do(flow.Call{Wait: t.Context(), Ctx: t.Context()}, func(ctx context.Context) error {
			n := now.Add(1)
			defer now.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			return r.client.PutActivity(ctx, []byte(activity))
		})
		if res.Err != nil {
			t.Error(res.Err)
		}
	})
	if m := most.Load(); m < 4 {
		t.Errorf("at most %d calls at once after the API stopped sending a window, want 4 or more of 16 callers (the limit is 8 once the 429 halved it)", m)
	}
}

// BenchmarkDo is what the flow controller adds to every API call of a
// healthy endpoint: admission, the breaker's two steps, the budget and the
// adaptive limit, around a call that returns at once.
func BenchmarkDo(b *testing.B) {
	set, err := flow.NewSet(flow.Config{Concurrency: 64})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(set.Close)
	ctrl := set.Endpoint(flow.Activities)
	ctx := context.Background()
	call := func(context.Context) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		if res := ctrl.Do(flow.Call{Wait: ctx, Ctx: ctx}, call); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
}
