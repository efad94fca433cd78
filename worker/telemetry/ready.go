package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/metric"
)

// ObserveReadiness exports cgworker_ready: 1 while ready() returns nil, 0
// otherwise, read at each collection. /readyz answers one prober; the gauge
// lets a dashboard count ready replicas and an alert fire on one that stays
// unready (README, "Operating it").
func (t *Telemetry) ObserveReadiness(ready func() error) error {
	_, err := t.MeterProvider.Meter("github.com/cgworker/cgworker/worker/telemetry").Int64ObservableGauge("cgworker.ready",
		metric.WithDescription("1 while the replica is ready (/readyz answers 200), else 0."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			v := int64(0)
			if ready() == nil {
				v = 1
			}
			o.Observe(v)
			return nil
		}))
	return err
}
