package responses

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// metricHooks returns hooks that record the sync's progress as
// OpenTelemetry metrics: responses published and skipped, failed passes,
// the stored cursor and the time of the last successful pass. Hooks already
// set in next are called too.
func metricHooks(mp metric.MeterProvider, next Hooks) (Hooks, error) {
	m := mp.Meter("github.com/cgworker/cgworker/worker/responses")
	published, err := m.Int64Counter("cgworker.sync.responses.published",
		metric.WithDescription("Survey responses published to the responses subject."))
	if err != nil {
		return next, err
	}
	skipped, err := m.Int64Counter("cgworker.sync.responses.skipped",
		metric.WithDescription("Responses fetched again but already published (resume after a crash)."))
	if err != nil {
		return next, err
	}
	failures, err := m.Int64Counter("cgworker.sync.failures",
		metric.WithDescription("Sync passes that failed."))
	if err != nil {
		return next, err
	}
	// Present from the start at 0, so that rates and alerts on them have a
	// series before the first skip or failure (README, "Operating it").
	for _, c := range []metric.Int64Counter{published, skipped, failures} {
		c.Add(context.Background(), 0)
	}
	var cursor, lastSuccess atomic.Int64
	_, err = m.Int64ObservableGauge("cgworker.sync.cursor",
		metric.WithDescription("The stored sync cursor (when numeric)."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			if v := cursor.Load(); v > 0 {
				o.Observe(v)
			}
			return nil
		}))
	if err != nil {
		return next, err
	}
	_, err = m.Int64ObservableGauge("cgworker.sync.last_success",
		metric.WithUnit("s"),
		metric.WithDescription("Unix time of the last successful sync pass."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			if v := lastSuccess.Load(); v > 0 {
				o.Observe(v)
			}
			return nil
		}))
	if err != nil {
		return next, err
	}
	ctx := context.Background()
	return Hooks{
		OnPublished: func(n int) {
			published.Add(ctx, int64(n))
			if next.OnPublished != nil {
				next.OnPublished(n)
			}
		},
		OnSkipped: func(n int) {
			skipped.Add(ctx, int64(n))
			if next.OnSkipped != nil {
				next.OnSkipped(n)
			}
		},
		OnCursor: func(c string) {
			if v, err := strconv.ParseInt(c, 10, 64); err == nil {
				cursor.Store(v)
			}
			if next.OnCursor != nil {
				next.OnCursor(c)
			}
		},
		OnSuccess: func(at time.Time) {
			lastSuccess.Store(at.Unix())
			if next.OnSuccess != nil {
				next.OnSuccess(at)
			}
		},
		OnFailure: func(err error) {
			failures.Add(ctx, 1)
			if next.OnFailure != nil {
				next.OnFailure(err)
			}
		},
		OnPass: next.OnPass,
	}, nil
}
