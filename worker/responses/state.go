package responses

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Keys of the CG_SYNC bucket.
const (
	stateKey = "state"
	leaseKey = "lease"
)

// ErrStateChanged is returned by Once when the state key moved on since the
// pass read it: an operator reset the sync, or another poller stored a
// cursor. The pass stopped without storing anything; the next one starts
// from the new state.
var ErrStateChanged = errors.New("responses: sync state changed under this pass (reset or another poller)")

// storedState is the value of the state key, written only with
// compare-and-set.
type storedState struct {
	Cursor      string    `json:"cursor"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Resets counts deliberate resyncs; it is the generation of the
	// messages published since the last one.
	Resets int `json:"resets"`
	// LastNumber is the highest number_customergauge published in this
	// generation whose page's cursor is stored.
	LastNumber int64 `json:"last_number"`
}

// errStateUndecodable marks a state key whose value is not a state.
var errStateUndecodable = errors.New("responses: sync state is not valid JSON (reset the sync to recover)")

// loadState returns the state and its revision; a missing state is the zero
// state at revision 0. An undecodable state is an error wrapping
// errStateUndecodable, returned with the zero state at the key's revision
// so Reset can overwrite it.
func loadState(ctx context.Context, kv jetstream.KeyValue) (storedState, uint64, error) {
	e, err := kv.Get(ctx, stateKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return storedState{}, 0, nil
	}
	if err != nil {
		return storedState{}, 0, fmt.Errorf("responses: read sync state: %w", err)
	}
	var st storedState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return storedState{}, e.Revision(), fmt.Errorf("%w: key %q: %v", errStateUndecodable, stateKey, err)
	}
	return st, e.Revision(), nil
}

// putState stores st if the key is still at rev (0: still absent) and
// returns the new revision. A conflict is ErrStateChanged.
func putState(ctx context.Context, kv jetstream.KeyValue, st storedState, rev uint64) (uint64, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		rev, err = kv.Create(ctx, stateKey, b)
	} else {
		rev, err = kv.Update(ctx, stateKey, b, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, ErrStateChanged
	}
	if err != nil {
		return 0, fmt.Errorf("responses: store sync state: %w", err)
	}
	return rev, nil
}

// State is the sync's state as Status reports it, for `cgworker sync --status`.
type State struct {
	Cursor      string    `json:"cursor"`                 // stored cursor; "" means from the beginning
	LastSuccess time.Time `json:"last_success,omitzero"`  // end of the last complete pass
	LastError   string    `json:"last_error,omitempty"`   // last failed pass, kept after later successes
	LastErrorAt time.Time `json:"last_error_at,omitzero"` // when it failed
	Resets      int       `json:"resets"`                 // resets so far; message ids carry it
	LastNumber  int64     `json:"last_number"`            // last number_customergauge published since the last reset
	LeaseHolder string    `json:"lease_holder,omitempty"` // replica polling right now, if any
	LeaseUntil  time.Time `json:"lease_until,omitzero"`   // when its lease lapses unless renewed
}

// Status reads the sync state from the CG_SYNC bucket.
func Status(ctx context.Context, kv jetstream.KeyValue) (State, error) {
	st, _, err := loadState(ctx, kv)
	if err != nil {
		return State{}, err
	}
	s := State{
		Cursor:      st.Cursor,
		LastSuccess: st.LastSuccess,
		LastError:   st.LastError,
		LastErrorAt: st.LastErrorAt,
		Resets:      st.Resets,
		LastNumber:  st.LastNumber,
	}
	if l, _, err := readLease(ctx, kv); err == nil && l.live(time.Now()) {
		s.LeaseHolder, s.LeaseUntil = l.Holder, l.Expires
	}
	return s, nil
}

// Reset makes the next pass start from the beginning: it clears the cursor
// and the last number and increments the reset count, so the resync's
// message ids (cg-response-<n>-r<k>) differ from the earlier ones and no
// duplicate window swallows them. A pass running meanwhile stops at its next
// cursor store. An undecodable state is replaced by a reset zero state, so
// a reset is the way out of it. Its reset count is lost with it: when the
// stream's last message is of generation 1 or later, the next pass carries
// on from that message instead of resyncing, and a second reset resyncs.
func Reset(ctx context.Context, kv jetstream.KeyValue) error {
	for {
		st, rev, err := loadState(ctx, kv)
		if errors.Is(err, errStateUndecodable) {
			err = nil
		}
		if err != nil {
			return err
		}
		st.Cursor, st.LastNumber = "", 0
		st.Resets++
		_, err = putState(ctx, kv, st, rev)
		if !errors.Is(err, ErrStateChanged) {
			return err
		}
		// A poller stored its cursor in between: read again.
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}
