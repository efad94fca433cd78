package responses

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrLeaseHeld is returned by Once when another replica is polling. It is
// not a failure: that replica does the work.
var ErrLeaseHeld = errors.New("responses: another replica holds the sync lease")

// ErrLeaseLost is returned by Once when the lease could not be renewed and
// the pass stopped without storing a cursor.
var ErrLeaseLost = errors.New("responses: sync lease lost")

// leaseValue is the value of the lease key. A lease whose expiry is past has
// lapsed and may be taken over; releasing one writes the zero expiry.
type leaseValue struct {
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

func (l leaseValue) live(now time.Time) bool { return l.Holder != "" && now.Before(l.Expires) }

// readLease returns the lease and its revision (0 when the key is absent).
// An undecodable value reads as a lapsed lease so it cannot wedge the sync.
func readLease(ctx context.Context, kv jetstream.KeyValue) (leaseValue, uint64, error) {
	e, err := kv.Get(ctx, leaseKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return leaseValue{}, 0, nil
	}
	if err != nil {
		return leaseValue{}, 0, fmt.Errorf("responses: read sync lease: %w", err)
	}
	var l leaseValue
	_ = json.Unmarshal(e.Value(), &l)
	return l, e.Revision(), nil
}

// lease is a held lease. Every write is a compare-and-set on the revision
// this holder wrote last, so of two contenders exactly one wins, and a
// holder whose lease was taken over finds out at its next renewal.
type lease struct {
	kv     jetstream.KeyValue
	holder string
	ttl    time.Duration
	log    *slog.Logger

	mu      sync.Mutex
	rev     uint64
	expires time.Time
}

// acquireLease takes the lease when it is absent or lapsed, else returns
// ErrLeaseHeld. Clocks of the replicas are assumed to agree to well within
// the TTL; the lease only keeps pollers from wasting work, since publishes
// with an expected last sequence keep the stream right even if two overlap.
func acquireLease(ctx context.Context, kv jetstream.KeyValue, holder string, ttl time.Duration, log *slog.Logger) (*lease, error) {
	cur, rev, err := readLease(ctx, kv)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if cur.live(now) {
		return nil, fmt.Errorf("%w (%s, until %s)", ErrLeaseHeld, cur.Holder, cur.Expires.UTC().Format(time.RFC3339))
	}
	l := &lease{kv: kv, holder: holder, ttl: ttl, log: log}
	val := leaseValue{Holder: holder, Expires: now.Add(ttl)}
	b, _ := json.Marshal(val)
	if rev == 0 {
		rev, err = kv.Create(ctx, leaseKey, b)
	} else {
		rev, err = kv.Update(ctx, leaseKey, b, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return nil, fmt.Errorf("%w (taken a moment ago)", ErrLeaseHeld)
	}
	if err != nil {
		return nil, fmt.Errorf("responses: take sync lease: %w", err)
	}
	if cur.Holder != "" && cur.Holder != holder && !cur.Expires.IsZero() {
		log.Info("took over a lapsed sync lease", "previous_holder", cur.Holder, "lapsed_at", cur.Expires)
	}
	l.rev, l.expires = rev, val.Expires
	return l, nil
}

// renew extends the lease by its TTL from now.
func (l *lease) renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	val := leaseValue{Holder: l.holder, Expires: time.Now().Add(l.ttl)}
	rev, err := l.write(ctx, val)
	if err != nil {
		return err
	}
	l.rev, l.expires = rev, val.Expires
	return nil
}

// write stores val over the revision this holder wrote last. When that
// revision is stale but the lease still names this holder, an earlier write
// went through and only its reply was lost: the stored revision is adopted.
// The caller holds l.mu.
func (l *lease) write(ctx context.Context, val leaseValue) (uint64, error) {
	b, _ := json.Marshal(val)
	rev, err := l.kv.Update(ctx, leaseKey, b, l.rev)
	if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return rev, err
	}
	cur, curRev, rerr := readLease(ctx, l.kv)
	if rerr != nil || cur.Holder != l.holder || curRev == 0 {
		return 0, err
	}
	l.rev = curRev
	return l.kv.Update(ctx, leaseKey, b, l.rev)
}

// keep renews the lease every third of its TTL until ctx is done. When the
// lease is taken over, or cannot be renewed before the next renewal would
// come too late, it calls lost so the pass stops before another replica
// can start.
func (l *lease) keep(ctx context.Context, lost func(error)) {
	every := l.ttl / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, every)
		err := l.renew(rctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			continue
		}
		l.mu.Lock()
		expires := l.expires
		l.mu.Unlock()
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || time.Now().Add(every).After(expires) {
			lost(fmt.Errorf("%w: %v", ErrLeaseLost, err))
			return
		}
		l.log.Warn("sync lease renewal failed; retrying", "error", err, "expires", expires)
	}
}

// release lets the lease lapse at once so the next poller need not wait for
// the TTL. If it fails the lease lapses by itself.
func (l *lease) release(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.write(ctx, leaseValue{Holder: l.holder}); err != nil {
		l.log.Debug("sync lease not released; it lapses by itself", "error", err)
	}
}
