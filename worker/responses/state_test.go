package responses

import (
	"errors"
	"testing"
)

// TestOldStateRestoredAfterReset: a resync crashes part-way and the state
// key is then put back from a backup taken before the reset. The state is
// a generation behind the stream and its cursor is the old generation's
// end: the pass must carry on the stream's generation from the beginning,
// publishing the rest of the resync once, not resume from that cursor.
func TestOldStateRestoredAfterReset(t *testing.T) {
	t.Parallel()
	w := setup(t, 500, 0)
	ctx := testContext(t)
	backup := w.syncResetAndCrash(ctx, 150)
	if _, err := w.kv.Put(ctx, stateKey, backup); err != nil {
		t.Fatal(err)
	}
	if st, _ := Status(ctx, w.kv); st.Resets != 0 || st.Cursor != "500" {
		t.Fatalf("restored state %+v", st)
	}

	res, err := w.newSync(Config{}).Once(ctx)
	if err != nil || res.Published != 350 || res.Skipped != 150 || res.Duplicates != 0 {
		t.Fatalf("pass on the restored state: %+v, %v", res, err)
	}
	if st, _ := Status(ctx, w.kv); st.Resets != 1 || st.Cursor != "500" || st.LastNumber != 1500 {
		t.Fatalf("status %+v", st)
	}
	w.checkExactlyOnce(w.messages()[500:], 1)
}

// TestUndecodableStateReset: a state key that is not JSON fails every pass
// until an operator resets the sync, which must work on it.
func TestUndecodableStateReset(t *testing.T) {
	t.Parallel()
	w := setup(t, 300, 0)
	ctx := testContext(t)
	if _, err := w.kv.Put(ctx, stateKey, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	s := w.newSync(Config{})
	if res, err := s.Once(ctx); !errors.Is(err, errStateUndecodable) || res.Published != 0 {
		t.Fatalf("pass on an undecodable state: %+v, %v", res, err)
	}
	if _, err := Status(ctx, w.kv); !errors.Is(err, errStateUndecodable) {
		t.Fatalf("status of an undecodable state: %v", err)
	}
	if err := Reset(ctx, w.kv); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	st, err := Status(ctx, w.kv)
	if err != nil || st.Resets != 1 || st.Cursor != "" || st.LastNumber != 0 {
		t.Fatalf("status after reset: %+v, %v", st, err)
	}
	res, err := s.Once(ctx)
	if err != nil || res.Published != 300 || res.Skipped != 0 {
		t.Fatalf("pass after reset: %+v, %v", res, err)
	}
	w.checkExactlyOnce(w.messages(), 1)
}
