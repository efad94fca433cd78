package responses

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cgworker/cgworker/worker/proctest"
)

// TestLeaseRunsOutDuringOutage: NATS goes away in the middle of a page and
// stays away past the lease's expiry, so every renewal fails. The pass
// stops with ErrLeaseLost before storing the page's cursor; once NATS is
// back the next pass publishes the rest, exactly once.
func TestLeaseRunsOutDuringOutage(t *testing.T) {
	t.Parallel()
	w := setup(t, 300, 0)
	ctx := testContext(t)
	outage := false
	s := w.newSync(Config{PerPage: 100, LeaseTTL: 600 * time.Millisecond, afterPublish: func(pctx context.Context, n int64) {
		if n != firstNumber+150 {
			return
		}
		outage = true
		w.nats.Stop()
		// Down until the lease keeper gives up on renewing.
		select {
		case <-pctx.Done():
		case <-ctx.Done():
		}
		w.nats.Start(t)
	}})
	res, err := s.Once(ctx)
	if !outage || !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Once: %+v, %v; want ErrLeaseLost", res, err)
	}
	if res.Cursor != "100" {
		t.Fatalf("result %+v: page 2's cursor must not be stored", res)
	}
	st, err := Status(ctx, w.kv)
	if err != nil || st.Cursor != "100" || st.LastNumber != 1100 {
		t.Fatalf("status %+v, %v", st, err)
	}
	checkNumbers(t, w.messages(), 151)

	// The lease was released, or lapses within its TTL.
	proctest.WaitFor(t, 10*time.Second, 10*time.Millisecond, "the lease to be free", func() (bool, string) {
		res, err = s.Once(ctx)
		return !errors.Is(err, ErrLeaseHeld), fmt.Sprint(err)
	})
	if err != nil || res.Published != 149 || res.Skipped != 51 || res.Duplicates != 0 {
		t.Fatalf("pass after the outage: %+v, %v", res, err)
	}
	w.checkExactlyOnce(w.messages(), 0)
}
