package worker_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue/deadletter"
	"github.com/cgworker/cgworker/schemas"
	"github.com/cgworker/cgworker/worker"
)

// TestReplayAfterTheCauseIsFixedDelivers: an activity dead-lettered because
// the API did not know its contact is replayed once the contact exists, and
// is delivered under the reference and time it had the first time.
func TestReplayAfterTheCauseIsFixedDelivers(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	cfg := testConfig()
	cfg.ContactWait = 200 * time.Millisecond
	r := w.start(nil, cfg)

	seq := w.publish(schemas.Activity, `{"account":"ACME","type":"T","source":"S","contact":"new@example.com"}`, nil)
	waitFor(t, 10*time.Second, "dead letter", func() bool { _, ok := r.final(seq); return ok })
	dls := w.deadLetters()
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	ref, at := dls[0].Header.Get("CG-Reference"), dls[0].Header.Get("CG-Happened-At")
	if ref == "" || at == "" {
		t.Fatalf("dead letter lacks identity headers: %v", dls[0].Header)
	}

	w.emu.AddContacts("new@example.com") // the cause is fixed
	f, err := deadletter.ParseFilter("activity", "api-422", "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	n, err := deadletter.Replay(context.Background(), w.js, w.names, f, deadletter.ReplayOptions{}, io.Discard)
	if err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v; want 1", n, err)
	}
	waitFor(t, 10*time.Second, "replayed activity delivered", func() bool {
		_, ok := w.emu.ActivityByReference(ref)
		return ok
	})
	act, _ := w.emu.ActivityByReference(ref)
	if !strings.Contains(string(act.Body), `"happened_at":"`+at+`"`) {
		t.Errorf("replayed activity lost its time %s: %s", at, act.Body)
	}
	if got := len(w.deadLetters()); got != 0 {
		t.Errorf("%d dead letters left after the replay", got)
	}
	// The emulator has the activity before the worker has read the answer
	// and acknowledged the message: wait for the acknowledgement.
	delivered := func() int {
		n := 0
		for _, s := range r.outcomes() {
			if s.Action == worker.Ack {
				n++
			}
		}
		return n
	}
	waitFor(t, 10*time.Second, "the replay acknowledged", func() bool { return delivered() > 0 })
	if n := delivered(); n != 1 {
		t.Errorf("%d deliveries, want the one replay", n)
	}
}
