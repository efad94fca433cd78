package chaos

import (
	"maps"
	"testing"
	"time"

	"github.com/cgworker/cgworker/cgapi/emulator"
)

// The flow-control targets with two replicas (README, "When the API is in
// trouble"), with loose bounds: the exact figures come from
// BenchmarkFlow's runs of the same scenarios.

// An outage while producers publish into it: the breakers open, the
// replicas only probe, and everything is stored soon after the API is
// back; nothing lost, duplicated or dead-lettered.
func TestAPIOutageTwoReplicas(t *testing.T) {
	chaosTest(t)
	r := outageRun(t, 8*time.Second, 300, 1500)
	t.Logf("%.1f calls/s during the outage (%d probes), every event stored %s after it", r.callsPerSec, r.calls, r.recovery.Round(time.Millisecond))
	if r.callsPerSec > 10 {
		t.Errorf("%.1f calls/s from both replicas while the API was down; want a few probes a second", r.callsPerSec)
	}
	if r.recovery > 20*time.Second {
		t.Errorf("every event stored %s after the API came back; want within seconds", r.recovery)
	}
}

// A 300 calls/s limit the replicas are not told about (CG_RATE_LIMIT
// unset): they pace by X-RateLimit-Remaining and pause on a spent window.
func TestRateLimitedAPITwoReplicas(t *testing.T) {
	chaosTest(t)
	r := rateLimitRun(t, 300, 2400)
	t.Logf("goodput %.0f/s under a 300/s limit, %.1f%% of PUTs answered 429", r.goodput, 100*r.share429)
	if r.goodput < 0.6*300 {
		t.Errorf("goodput %.0f/s under a 300/s limit; want close to the limit", r.goodput)
	}
	if r.share429 > 0.2 {
		t.Errorf("%.1f%% of PUTs answered 429; pacing should keep it low", 100*r.share429)
	}
}

type outageResult struct {
	calls       int
	callsPerSec float64       // from one second into the outage to its end
	recovery    time.Duration // from the API's return to the last event stored
}

// outageRun stores warm activities with two replicas, takes the API down
// for outage while backlog more are published, brings it back and waits
// until everything is stored, then verifies the counts.
func outageRun(t testing.TB, outage time.Duration, warm, backlog int) outageResult {
	w := setup(t, emulator.Options{Latency: 20 * time.Millisecond})
	env := w.env()
	env["CG_CONCURRENCY"] = "64"
	env["CG_RETRY_MAX_ELAPSED"] = "5s" // shorter than the outage: waiting at the breaker must not spend it
	first := newBatch("outage-warm").activities(warm).shuffled()
	seqs := publish(t, w.js, first)
	a := start(t, "replica-a", env, "run")
	b := start(t, "replica-b", env, "run")
	progress(t, w.api, warm/2, a, b)

	w.api.SetOutage(true)
	down := time.Now()
	later := newBatch("outage-backlog").activities(backlog).shuffled()
	waitPublished := publishInBackground(t, w.js, later)
	var callsAt int
	eventually(t, outage+10*time.Second, "the outage", func() (bool, string) {
		if callsAt == 0 && time.Since(down) >= time.Second {
			callsAt = w.api.Calls(emulator.ActivitiesPath)
		}
		return time.Since(down) >= outage, ""
	})
	var r outageResult
	r.calls = w.api.Calls(emulator.ActivitiesPath) - callsAt
	r.callsPerSec = float64(r.calls) / (time.Since(down) - time.Second).Seconds()
	opened := len(a.logLines("API breaker open: calls wait for the API to recover")) + len(b.logLines("API breaker open: calls wait for the API to recover"))
	w.api.SetOutage(false)
	back := time.Now()
	maps.Copy(seqs, waitPublished())
	events := append(first, later...)
	waitSettled(t, 60*time.Second, w.js, w.api, events)
	r.recovery = time.Since(back)
	verify(t, w.js, w.api, events, seqs)
	if opened == 0 {
		t.Error("no breaker opened during the outage")
	}
	return r
}

type rateLimitResult struct {
	goodput  float64 // events stored a second
	share429 float64 // of all PUTs
}

// rateLimitRun publishes n activities, limits the API to limit calls a
// second, and has two replicas store them.
func rateLimitRun(t testing.TB, limit, n int) rateLimitResult {
	w := setup(t, emulator.Options{Latency: 20 * time.Millisecond, RateLimit: limit})
	env := w.env()
	env["CG_CONCURRENCY"] = "64"
	events := newBatch("ratelimit").activities(n).shuffled()
	seqs := publish(t, w.js, events)
	a := start(t, "replica-a", env, "run")
	b := start(t, "replica-b", env, "run")
	progress(t, w.api, 1, a, b)
	began := time.Now()
	calls0 := w.api.Calls(emulator.ActivitiesPath)
	stored0 := w.api.ActivityCount()
	waitSettled(t, 120*time.Second, w.js, w.api, events)
	elapsed := time.Since(began)
	verify(t, w.js, w.api, events, seqs)
	calls := w.api.Calls(emulator.ActivitiesPath) - calls0
	stored := w.api.ActivityCount() - stored0
	return rateLimitResult{
		goodput:  float64(stored) / elapsed.Seconds(),
		share429: 1 - float64(stored)/float64(max(calls, 1)),
	}
}

// BenchmarkFlow measures the flow-control figures of README, "When the API
// is in trouble": two replicas, CG_CONCURRENCY 64, 20 ms of API latency;
// calls a second from both replicas during a 20 s outage while a 1,500-event
// backlog is published into it (from one second in), the time from the
// API's return to the last event stored, and goodput and 429 share under a
// 300 calls/s limit the replicas are not told about. Each scenario takes
// tens of seconds; run with -benchtime=1x:
//
//	go test -run '^$' -bench BenchmarkFlow -benchtime=1x ./worker/chaos/
func BenchmarkFlow(b *testing.B) {
	if testing.Short() {
		b.Skip("chaos suite: runs the real binary; skipped with -short")
	}
	b.Run("outage-20s", func(b *testing.B) {
		for range b.N {
			r := outageRun(b, 20*time.Second, 300, 1500)
			b.ReportMetric(r.callsPerSec, "calls/s-down")
			b.ReportMetric(r.recovery.Seconds(), "s-recovery")
		}
		b.ReportMetric(0, "ns/op")
	})
	b.Run("limit-300", func(b *testing.B) {
		for range b.N {
			r := rateLimitRun(b, 300, 6000)
			b.ReportMetric(r.goodput, "stored/s")
			b.ReportMetric(100*r.share429, "%429")
		}
		b.ReportMetric(0, "ns/op")
	})
}
