package responses

import (
	"errors"
	"testing"
	"time"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/cgapi/emulator"
)

// TestRetryAfterIsTheFloor: a 429's Retry-After is waited out in full even
// though the backoff's own interval is a few milliseconds.
func TestRetryAfterIsTheFloor(t *testing.T) {
	t.Parallel()
	w := setupWith(t, emulator.Options{Responses: 200}, 0)
	ctx := testContext(t)
	const retryAfter = 300 * time.Millisecond
	w.emu.SetRetryAfter(retryAfter)
	w.emu.FailNext(emulator.SyncPath, 429, 1)
	res, err := w.newSync(Config{PerPage: 100}).Once(ctx)
	if err != nil || res.Published != 200 {
		t.Fatalf("Once: %+v, %v", res, err)
	}
	var calls []emulator.Request
	for _, r := range w.emu.Requests() {
		if r.Path == emulator.SyncPath {
			calls = append(calls, r)
		}
	}
	if len(calls) < 2 || calls[0].Status != 429 || calls[1].Status != 200 {
		t.Fatalf("sync calls %+v, want a 429 then a 200", calls)
	}
	if gap := calls[1].Time.Sub(calls[0].Time); gap < retryAfter {
		t.Fatalf("retried %s after the 429, before its Retry-After of %s", gap, retryAfter)
	}
	w.checkExactlyOnce(w.messages(), 0)
}

// TestDataErrorNotRetried: a 422 will not get better by asking again; the
// pass fails at once, keeps its cursor and records the error.
func TestDataErrorNotRetried(t *testing.T) {
	t.Parallel()
	w := setup(t, 200, 0)
	ctx := testContext(t)
	s := w.newSync(Config{})
	if _, err := s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	w.emu.AddResponses(50)
	before := w.emu.Calls(emulator.SyncPath)
	w.emu.FailNext(emulator.SyncPath, 422, 1)
	res, err := s.Once(ctx)
	var de *cgapi.DataError
	if !errors.As(err, &de) || res.Published != 0 || res.Cursor != "200" {
		t.Fatalf("Once: %+v, %v; want a DataError", res, err)
	}
	if calls := w.emu.Calls(emulator.SyncPath) - before; calls != 1 {
		t.Fatalf("%d sync calls, want 1", calls)
	}
	st, err := Status(ctx, w.kv)
	if err != nil || st.Cursor != "200" || st.LastNumber != 1200 || st.LastError == "" || st.LastErrorAt.IsZero() {
		t.Fatalf("status %+v, %v", st, err)
	}
	if res, err := s.Once(ctx); err != nil || res.Published != 50 {
		t.Fatalf("next pass: %+v, %v", res, err)
	}
	w.checkExactlyOnce(w.messages(), 0)
}
