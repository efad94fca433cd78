package chaos

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/cgapi/cgapitest"
	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue/natstest"
)

// world is one test's NATS server, API emulator and NATS connection.
type world struct {
	nats *natstest.Server
	api  *emulator.Server
	js   jetstream.JetStream
}

func setup(t testing.TB, opts emulator.Options) *world {
	t.Helper()
	w := &world{nats: natstest.NewServer(t)}
	opts.NoRequestLog = true
	w.api = cgapitest.NewServer(t, opts)
	w.js = connect(t, w.nats.URL)
	ensureStreams(t, w.js, 1)
	return w
}

func (w *world) env() map[string]string { return workerEnv(w.nats.URL, w.api) }

// progress waits until the emulator holds at least n activities.
func progress(t testing.TB, api *emulator.Server, n int, procs ...*proc) {
	t.Helper()
	eventually(t, 60*time.Second, fmt.Sprintf("%d activities stored", n), func() (bool, string) {
		for _, p := range procs {
			if !p.Running() {
				t.Fatalf("%s exited: %v", p.Name, p.Err())
			}
		}
		got := api.ActivityCount()
		return got >= n, fmt.Sprintf("%d activities", got)
	})
}

// A replica SIGKILLed while PUTs are in flight loses nothing: its
// unacknowledged messages are redelivered once the ack wait runs out, and
// since references are deterministic a redelivered event updates the
// activity it may already have created instead of creating a second one.
func TestReplicaKilledMidFlight(t *testing.T) {
	chaosTest(t)
	w := setup(t, emulator.Options{Latency: 50 * time.Millisecond})
	events := newBatch("kill").activities(1200).accounts(150).contacts(150).
		schemaInvalid(100).malformed(50).shuffled()
	seqs := publish(t, w.js, events)

	a := start(t, "replica-a", w.env(), "run")
	b := start(t, "replica-b", w.env(), "run")
	progress(t, w.api, 300, a, b)

	// Messages are in flight at A when it dies.
	ctx := t.Context()
	cons, err := w.js.Consumer(ctx, names.EventsStream(), names.Consumer("activity"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.Kill()
	t.Logf("killed replica-a with %d activity messages awaiting acknowledgement, %d stored so far",
		info.NumAckPending, w.api.ActivityCount())

	c := start(t, "replica-c", w.env(), "run")
	waitSettled(t, 90*time.Second, w.js, w.api, events)
	verify(t, w.js, w.api, events, seqs)
	if !b.Running() || !c.Running() {
		t.Errorf("a surviving replica exited: b %v, c %v", b.Err(), c.Err())
	}
	redelivered := 0
	for _, a := range w.api.Activities() {
		if a.Puts > 1 {
			redelivered++
		}
	}
	t.Logf("%d activities were PUT more than once (redeliveries after the kill)", redelivered)
}

// SIGTERM during load: the replica stops pulling, gives its PUTs in flight
// CG_SHUTDOWN_TIMEOUT to finish (the API has just become slower than
// that, so it abandons them), hands back everything it holds, and exits 0;
// the other replica finishes the rest.
func TestSIGTERMDuringLoad(t *testing.T) {
	chaosTest(t)
	w := setup(t, emulator.Options{Latency: 100 * time.Millisecond})
	events := newBatch("term").activities(1200).accounts(100).contacts(100).
		schemaInvalid(100).rejected(30).shuffled()
	seqs := publish(t, w.js, events)

	const shutdownTimeout = 3 * time.Second
	env := w.env()
	env["CG_SHUTDOWN_TIMEOUT"] = shutdownTimeout.String()
	a := start(t, "replica-a", env, "run")
	b := start(t, "replica-b", env, "run")
	progress(t, w.api, 300, a, b)

	// PUTs that arrive from now on outlast the shutdown timeout.
	w.api.SetLatency(shutdownTimeout + 3*time.Second)
	calls := w.api.Calls(emulator.ActivitiesPath)
	eventually(t, 10*time.Second, "slow PUTs in flight", func() (bool, string) {
		n := w.api.Calls(emulator.ActivitiesPath) - calls
		return n >= 32, fmt.Sprintf("%d PUTs", n)
	})
	sent := time.Now()
	a.Signal(syscall.SIGTERM)
	if code := a.Wait(shutdownTimeout + 5*time.Second); code != 0 {
		t.Fatalf("replica-a exited %d after SIGTERM, want 0", code)
	}
	t.Logf("replica-a exited 0 %s after SIGTERM", time.Since(sent).Round(time.Millisecond))
	w.api.SetLatency(100 * time.Millisecond)
	if len(a.logLines("shutdown timeout: abandoning PUTs in flight")) != 1 {
		t.Errorf("replica-a did not abandon its slow PUTs at the shutdown timeout")
	}
	if len(a.logLines("stopped cleanly")) != 1 {
		t.Errorf("replica-a did not log a clean stop")
	}

	waitSettled(t, 90*time.Second, w.js, w.api, events)
	verify(t, w.js, w.api, events, seqs)

	// A restarted replica finds nothing left to do.
	c := start(t, "replica-a-restarted", env, "run")
	c.waitReady()
	b.Signal(syscall.SIGTERM)
	c.Signal(syscall.SIGTERM)
	for _, p := range []*proc{b, c} {
		if code := p.Wait(shutdownTimeout + 5*time.Second); code != 0 {
			t.Errorf("%s exited %d after SIGTERM, want 0", p.Name, code)
		}
	}
	verify(t, w.js, w.api, events, seqs)
}
