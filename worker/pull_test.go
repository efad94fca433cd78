package worker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/schemas"
	"github.com/cgworker/cgworker/worker"
)

// Pulls of flowing consumers wait for several free slots before fetching,
// holding the ones they have meanwhile. With every kind flowing and a
// look-ahead much larger than the handlers, they must still never hold all
// the slots between them: every event is delivered.
func TestEveryKindFlowingWithLargeLookahead(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{Latency: 2 * time.Millisecond})
	const perKind = 150
	for i := range perKind {
		w.publish(schemas.Activity, fmt.Sprintf(`{"account":"A","type":"T","source":"S","reference":"r-%d"}`, i), nil)
		w.publish(schemas.Account, fmt.Sprintf(`{"Account Name":"Acme %d"}`, i), nil)
		w.publish(schemas.Contact, fmt.Sprintf(`{"Email":"c%d@example.com"}`, i), nil)
	}
	cfg := testConfig()
	cfg.Concurrency, cfg.Lookahead, cfg.Batch = 2, 40, 64
	r := w.start(w.connect(), cfg)
	waitFor(t, 30*time.Second, "every event settled", func() bool {
		return w.consumerSettled(schemas.Activity) && w.consumerSettled(schemas.Account) && w.consumerSettled(schemas.Contact)
	})
	// The server counts an acknowledgement before the worker has reported
	// the settling: wait for the reports too.
	waitFor(t, 10*time.Second, "every settling reported", func() bool { return len(r.outcomes()) >= 3*perKind })
	outcomes := r.outcomes()
	if len(outcomes) != 3*perKind {
		t.Errorf("%d events settled, want %d", len(outcomes), 3*perKind)
	}
	for _, s := range outcomes {
		if s.Action != worker.Ack {
			t.Fatalf("event %d of %s: %v, want acknowledged", s.Seq, s.Kind, s.Action)
		}
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}
