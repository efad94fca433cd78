package flow

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Retry is the schedule of one call's or one publish's attempts:
// exponential backoff with jitter (cenkalti/backoff), the wait never
// shorter than a floor such as a 429's Retry-After, within a budget
// (CG_RETRY_MAX_ELAPSED). Time spent waiting at an open breaker is
// excused: it does not spend the budget. The worker's PUTs, the sync's
// page fetches and the sync's publishes all retry with it.
type Retry struct {
	bo      *backoff.ExponentialBackOff
	budget  time.Duration
	start   time.Time
	excused time.Duration
}

// NewRetry returns a schedule starting now.
func NewRetry(initial, maxInterval, budget time.Duration) *Retry {
	return &Retry{
		bo: backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(initial),
			backoff.WithMaxInterval(maxInterval),
			backoff.WithMultiplier(2),
			backoff.WithRandomizationFactor(0.5),
			backoff.WithMaxElapsedTime(0), // the budget is checked by Next
		),
		budget: budget,
		start:  time.Now(),
	}
}

// Excuse takes d, time spent waiting at a breaker, off the budget's clock.
func (r *Retry) Excuse(d time.Duration) { r.excused += d }

// Spent is the budget spent so far.
func (r *Retry) Spent() time.Duration { return time.Since(r.start) - r.excused }

// Next returns the wait before the next attempt, at least floor, and false
// when the attempt would start after the budget.
func (r *Retry) Next(floor time.Duration) (time.Duration, bool) {
	d := max(r.bo.NextBackOff(), floor)
	return d, r.Spent()+d <= r.budget
}

// Sleep waits d or until ctx ends, and returns ctx's cause if it ended
// first.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
