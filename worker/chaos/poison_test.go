package chaos

import (
	"testing"
	"time"

	"github.com/cgworker/cgworker/cgapi/emulator"
)

// A poison flood: thousands of malformed, schema-breaking, over-size and
// API-rejected events mixed with valid ones. The valid ones are all
// delivered; each bad one is dead-lettered exactly once, body intact, with
// its error kind and origin.
func TestPoisonFlood(t *testing.T) {
	chaosTest(t)
	w := setup(t, emulator.Options{})
	events := newBatch("poison").activities(600).accounts(100).contacts(100).
		malformed(800).schemaInvalid(1200).oversize(3).rejected(200).shuffled()
	seqs := publish(t, w.js, events)

	a := start(t, "replica-a", w.env(), "run")
	b := start(t, "replica-b", w.env(), "run")

	waitSettled(t, 90*time.Second, w.js, w.api, events)
	verify(t, w.js, w.api, events, seqs)
	for _, p := range []*proc{a, b} {
		if !p.Running() {
			t.Errorf("%s exited: %v", p.Name, p.Err())
		}
	}
}
