package chaos

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue/natstest"
	"github.com/cgworker/cgworker/worker/responses"
)

const (
	syncResponses = 5000
	syncPerPage   = 200
)

// syncWorld is a world whose emulator is seeded with survey responses;
// each page takes a while, so a pass can be interrupted half-way.
func syncWorld(t *testing.T) (*world, map[string]string) {
	t.Helper()
	w := setup(t, emulator.Options{Responses: syncResponses, Latency: 100 * time.Millisecond})
	env := w.env()
	env["CG_SYNC_PER_PAGE"] = strconv.Itoa(syncPerPage)
	env["CG_SYNC_INTERVAL"] = "1s"
	env["CG_RETRY_MAX_ELAPSED"] = "5s"
	return w, env
}

// waitResponses waits until the responses stream holds at least n messages.
func waitResponses(t *testing.T, w *world, n int, timeout time.Duration) uint64 {
	t.Helper()
	var got uint64
	eventually(t, timeout, fmt.Sprintf("%d responses on %s", n, names.ResponsesSubject()), func() (bool, string) {
		var err error
		got, err = streamMsgs(w.js, names.ResponsesStream())
		return err == nil && got >= uint64(n), fmt.Sprintf("%d messages (%v)", got, err)
	})
	return got
}

// verifyResponses proves every seeded response is on the responses subject
// exactly once, and that one more pass finds nothing left to publish.
func verifyResponses(t *testing.T, w *world, env map[string]string) {
	t.Helper()
	final := start(t, "sync-final", env, "sync", "--once")
	if code := final.Wait(60 * time.Second); code != 0 {
		t.Fatalf("final sync --once exited %d: %s", code, final.Tail(5))
	}
	if out := final.Stdout(); !strings.Contains(out, "published 0,") {
		t.Errorf("a pass after the sync completed published something: %s", out)
	}

	want := make(map[string]bool, syncResponses)
	for _, raw := range w.api.Responses() {
		var r struct {
			Number json.Number `json:"number_customergauge"`
		}
		if err := json.Unmarshal(raw, &r); err != nil || r.Number == "" {
			t.Fatalf("seeded response without number_customergauge: %s", raw)
		}
		want[r.Number.String()] = true
	}
	seen := make(map[string]int, syncResponses)
	msgs := natstest.Messages(t, w.js, names.ResponsesStream())
	for _, m := range msgs {
		seen[m.Header.Get(responses.HeaderNumber)]++
	}
	if len(msgs) != syncResponses {
		t.Errorf("%d messages on %s, want %d", len(msgs), names.ResponsesSubject(), syncResponses)
	}
	dups, missing := 0, 0
	for n, c := range seen {
		if c > 1 {
			dups++
			if dups <= 5 {
				t.Errorf("response %s published %d times", n, c)
			}
		}
		if !want[n] {
			t.Errorf("message with CG-Response-Number %q that the API never served", n)
		}
	}
	for n := range want {
		if seen[n] == 0 {
			missing++
			if missing <= 5 {
				t.Errorf("response %s never published", n)
			}
		}
	}
	if dups+missing > 0 {
		t.Errorf("%d responses duplicated, %d missing", dups, missing)
	}
}

const passDone = "responses sync pass done"

// waitPasses waits until procs have completed n sync passes between them.
func waitPasses(t *testing.T, n int, procs ...*proc) {
	t.Helper()
	eventually(t, 60*time.Second, fmt.Sprintf("%d completed sync passes", n), func() (bool, string) {
		got := 0
		for _, p := range procs {
			got += len(p.logLines(passDone))
		}
		return got >= n, fmt.Sprintf("%d passes", got)
	})
}

// A syncing replica SIGKILLed half-way through (between a publish and its
// cursor store, or in a fetch) holds the lease until it lapses; the next
// replica then resumes and publishes every response exactly once.
func TestSyncReplicaKilled(t *testing.T) {
	chaosTest(t)
	w, env := syncWorld(t)

	first := start(t, "sync-once", env, "sync", "--once")
	// Kill it half-way through a page if it can be caught there: some of
	// the page's responses published, its cursor not stored. Publishing a
	// page is quick, so this polls without pause for a moment.
	waitResponses(t, w, syncResponses/5, 60*time.Second)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		n, err := streamMsgs(w.js, names.ResponsesStream())
		if err == nil && n%syncPerPage != 0 {
			break
		}
	}
	first.Kill()
	atKill, _ := streamMsgs(w.js, names.ResponsesStream())
	if atKill >= syncResponses {
		t.Fatalf("the first pass finished (%d responses) before it could be killed", atKill)
	}
	status := start(t, "sync-status", env, "sync", "--status", "--json")
	if code := status.Wait(20 * time.Second); code != 0 {
		t.Fatalf("sync --status exited %d", code)
	}
	t.Logf("killed the syncing replica after %d of %d responses; stored state: %s",
		atKill, syncResponses, strings.TrimSpace(status.Stdout()))

	// The lease (30 s) must lapse before the next replica can poll.
	next := start(t, "sync-run", env, "run", "--consume=false")
	waitResponses(t, w, syncResponses, 120*time.Second)
	waitPasses(t, 2, next)
	next.Signal(syscall.SIGTERM)
	if code := next.Wait(15 * time.Second); code != 0 {
		t.Fatalf("sync replica exited %d after SIGTERM", code)
	}
	verifyResponses(t, w, env)
}

// Several replicas syncing at once (three running replicas and a one-off
// `sync --once`) publish every response exactly once between them.
func TestSyncConcurrentReplicas(t *testing.T) {
	chaosTest(t)
	w, env := syncWorld(t)

	var replicas []*proc
	for i := range 3 {
		replicas = append(replicas, start(t, fmt.Sprintf("sync-run-%d", i), env, "run", "--consume=false"))
	}
	once := start(t, "sync-once", env, "sync", "--once")
	waitResponses(t, w, syncResponses, 90*time.Second)
	// Passes after the last response keep contending for the lease.
	waitPasses(t, 3, replicas...)

	switch code := once.Wait(60 * time.Second); {
	case code == 0:
	case code == 1 && strings.Contains(once.Log(), responses.ErrLeaseHeld.Error()):
		// Another replica held the lease: not a failure.
	default:
		t.Errorf("sync --once exited %d: %s", code, once.Tail(5))
	}
	for _, p := range replicas {
		p.Signal(syscall.SIGTERM)
	}
	for _, p := range replicas {
		if code := p.Wait(15 * time.Second); code != 0 {
			t.Errorf("%s exited %d after SIGTERM", p.Name, code)
		}
		t.Logf("%s completed %d passes", p.Name, len(p.logLines(passDone)))
	}
	verifyResponses(t, w, env)
}
