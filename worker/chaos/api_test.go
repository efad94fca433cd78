package chaos

import (
	"fmt"
	"testing"
	"time"

	"github.com/cgworker/cgworker/cgapi/emulator"
)

// The API failing in every way it can at once: 20% 5xx, 10% 429 with
// Retry-After, tokens living 2 seconds (and revoked once), and a total
// outage of several seconds. Random failures are retried message by
// message and do not open the breakers; the outage opens them, held
// messages wait at them (their retry budget, shorter than the outage, is
// not spent) and everything is stored soon after the outage ends. Every
// valid event is stored exactly once and none is dead-lettered. (The
// emulator answers its faults before it stores anything, so a 5xx never
// hides a stored activity.)
func TestAPIFailures(t *testing.T) {
	chaosTest(t)
	w := setup(t, emulator.Options{
		ErrorRate:     0.2,
		RateLimitRate: 0.1,
		RetryAfter:    time.Second,
		TokenTTL:      2 * time.Second,
	})
	events := newBatch("apifail").activities(800).accounts(100).contacts(100).
		schemaInvalid(60).rejected(30).shuffled()
	seqs := publish(t, w.js, events)

	env := w.env()
	env["CG_RETRY_MAX_ELAPSED"] = "3s"
	a := start(t, "replica-a", env, "run")
	b := start(t, "replica-b", env, "run")
	progress(t, w.api, 200, a, b)

	const opened = "API breaker open: calls wait for the API to recover"
	opens := func() int { return len(a.logLines(opened)) + len(b.logLines(opened)) }
	if n := opens(); n != 0 {
		t.Errorf("the random fault mix opened a breaker %d times", n)
	}
	w.api.SetOutage(true)
	outageStart := time.Now()
	// Once calls that were past the outage check when it began have
	// finished, nothing more is stored.
	stored := -1
	eventually(t, 30*time.Second, "an outage of 4s with the breakers open", func() (bool, string) {
		if stored < 0 && time.Since(outageStart) >= time.Second {
			stored = w.api.ActivityCount()
		}
		n := opens()
		return stored >= 0 && n > 0 && time.Since(outageStart) >= 4*time.Second, fmt.Sprintf("%d breakers opened", n)
	})
	if got := w.api.ActivityCount(); got != stored {
		t.Errorf("activities stored during the outage: %d -> %d", stored, got)
	}
	w.api.SetOutage(false)
	back := time.Now()
	t.Logf("outage of %s with %d activities stored", back.Sub(outageStart).Round(time.Millisecond), stored)
	w.api.ExpireTokens()

	waitSettled(t, 120*time.Second, w.js, w.api, events)
	settled := time.Since(back)
	t.Logf("everything settled %s after the outage", settled.Round(time.Millisecond))
	if settled > 40*time.Second {
		t.Errorf("everything settled %s after the outage; want well within a minute (the target is 20 s)", settled)
	}
	verify(t, w.js, w.api, events, seqs)
	const handBack = "retry budget spent; message handed back to JetStream"
	t.Logf("%d deliveries handed back with NakWithDelay; %d tokens issued; %d activity calls for %d activities",
		len(a.logLines(handBack))+len(b.logLines(handBack)), w.api.TokensIssued(), w.api.Calls(emulator.ActivitiesPath), w.api.ActivityCount())
}

// The API slower than the ack wait (3 s per call against a 2 s ack wait):
// InProgress keeps every held message from being redelivered, so no event
// is PUT twice.
func TestSlowAPI(t *testing.T) {
	chaosTest(t)
	w := setup(t, emulator.Options{Latency: 3 * time.Second})
	events := newBatch("slow").activities(300).shuffled()
	seqs := publish(t, w.js, events)

	env := w.env()
	env["CG_ACK_WAIT"] = "2s"
	env["CG_HTTP_TIMEOUT"] = "10s"
	a := start(t, "replica-a", env, "run")
	b := start(t, "replica-b", env, "run")

	waitSettled(t, 90*time.Second, w.js, w.api, events)
	verify(t, w.js, w.api, events, seqs)
	twice := 0
	for _, act := range w.api.Activities() {
		if act.Puts != 1 {
			twice++
			if twice <= 5 {
				t.Errorf("activity %s was PUT %d times, want once", act.Reference, act.Puts)
			}
		}
	}
	if twice > 0 {
		t.Errorf("%d of %d activities PUT more than once: a held message was redelivered", twice, len(events))
	}
	if calls := w.api.Calls(emulator.ActivitiesPath); calls != len(events) {
		t.Errorf("%d activity calls for %d events", calls, len(events))
	}
	for _, p := range []*proc{a, b} {
		if !p.Running() {
			t.Errorf("%s exited: %v", p.Name, p.Err())
		}
	}
}
