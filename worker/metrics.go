package worker

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/cgapi/flow"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/deadletter"
	"github.com/cgworker/cgworker/schemas"
)

// metrics are the pipeline's OpenTelemetry instruments. Attribute sets are
// built once: recording on the hot path allocates nothing.
//
// The two recorded for every event, events settled and messages held, are
// atomic counters read by asynchronous instruments when metrics are
// collected: a synchronous instrument costs an attribute-set lookup and a
// lock per call, four calls per event (DESIGN.md, "Per-event cost"). The
// series and their values are the same either way.
type metrics struct {
	events      [len(kindIndex)][numActions]atomic.Int64 // settled, by kind and outcome
	held        func() int64                             // messages held: taken and not yet settled
	retries     metric.Int64Counter
	deadLetters metric.Int64Counter
	putDuration metric.Float64Histogram

	// deadLetterFailures counts dead letters that could not be stored.
	deadLetterFailures metric.Int64Counter

	pending    sync.Map // schemas.Kind -> *consumerCounts
	stopPoll   context.CancelFunc
	pollDone   chan struct{}
	registered metric.Registration
	meter      metric.Meter
}

// kindIndex numbers the kinds for the events table: schemas.Kinds and the
// dead letters of unknown subjects.
var kindIndex = [...]schemas.Kind{schemas.Activity, schemas.Account, schemas.Contact, queue.UnknownKind}

// settled counts one settled event.
func (m *metrics) settled(kind schemas.Kind, a Action) {
	if i := slices.Index(kindIndex[:], kind); i >= 0 && a >= 0 && a < numActions {
		m.events[i][a].Add(1)
	}
}

type consumerCounts struct {
	pending, ackPending atomic.Int64
}

// newMetrics registers the worker's instruments; held counts the messages
// the replica holds (the in-progress registry), read when metrics are
// collected.
func newMetrics(mp metric.MeterProvider, held func() int64) (*metrics, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := &metrics{meter: mp.Meter("github.com/cgworker/cgworker/worker"), held: held}
	var errs [6]error
	var events metric.Int64ObservableCounter
	var inFlight metric.Int64ObservableUpDownCounter
	events, errs[0] = m.meter.Int64ObservableCounter("cgworker.events",
		metric.WithDescription("Events settled, by kind and outcome (delivered, dead-lettered, retry-later, handed-back)."))
	m.retries, errs[1] = m.meter.Int64Counter("cgworker.retries",
		metric.WithDescription("In-process retries of API calls, by kind and reason."))
	m.deadLetters, errs[2] = m.meter.Int64Counter("cgworker.dead_letters",
		metric.WithDescription("Dead letters stored, by kind and error kind."))
	inFlight, errs[3] = m.meter.Int64ObservableUpDownCounter("cgworker.in_flight",
		metric.WithDescription("Messages held by this replica."))
	m.putDuration, errs[4] = m.meter.Float64Histogram("cgworker.api.request.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Duration of CustomerGauge API calls, by endpoint and status class."),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	m.deadLetterFailures, errs[5] = m.meter.Int64Counter("cgworker.dead_letter_failures",
		metric.WithDescription("Dead letters that could not be stored (the message is handed back with a growing delay), by kind and error kind."))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	// Never unregistered: the counts stay readable after Run returns, as a
	// synchronous counter's would.
	if _, err := m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		// in_flight is present from the start, for dashboards; an outcome
		// once it has happened, as a synchronous counter would show it.
		o.ObserveInt64(inFlight, m.held())
		for i, kind := range kindIndex {
			for a := range numActions {
				if n := m.events[i][a].Load(); n > 0 {
					o.ObserveInt64(events, n, kindOutcome(kind, Action(a)))
				}
			}
		}
		return nil
	}, events, inFlight); err != nil {
		return nil, err
	}
	return m, nil
}

// observeConsumers publishes the consumers' pending and ack-pending counts
// (the autoscaling signal), refreshed in the background so that a scrape
// never waits on NATS.
func (m *metrics) observeConsumers(consumers map[schemas.Kind]jetstream.Consumer) {
	for k := range consumers {
		m.pending.Store(k, &consumerCounts{})
	}
	pending, _ := m.meter.Int64ObservableGauge("cgworker.consumer.pending",
		metric.WithDescription("Messages in the stream not yet delivered to the consumer."))
	ackPending, _ := m.meter.Int64ObservableGauge("cgworker.consumer.ack_pending",
		metric.WithDescription("Messages delivered but not yet acknowledged."))
	m.registered, _ = m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m.pending.Range(func(k, v any) bool {
			c := v.(*consumerCounts)
			set := metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", string(k.(schemas.Kind)))))
			o.ObserveInt64(pending, c.pending.Load(), set)
			o.ObserveInt64(ackPending, c.ackPending.Load(), set)
			return true
		})
		return nil
	}, pending, ackPending)

	ctx, cancel := context.WithCancel(context.Background())
	m.stopPoll, m.pollDone = cancel, make(chan struct{})
	go func() {
		defer close(m.pollDone)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			for k, c := range consumers {
				ictx, icancel := context.WithTimeout(ctx, 2*time.Second)
				info, err := c.Info(ictx)
				icancel()
				if err == nil {
					v, _ := m.pending.Load(k)
					v.(*consumerCounts).pending.Store(int64(info.NumPending))
					v.(*consumerCounts).ackPending.Store(int64(info.NumAckPending))
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (m *metrics) stopObserving() {
	if m.stopPoll != nil {
		m.stopPoll()
		<-m.pollDone
	}
	if m.registered != nil {
		_ = m.registered.Unregister()
	}
}

func (m *metrics) recordPut(ctx context.Context, kind schemas.Kind, err error, d time.Duration) {
	m.putDuration.Record(ctx, d.Seconds(), putAttrs(kind, err)...)
}

// Precomputed attribute options.
var (
	outcomeSets = attrTable2("kind", "outcome", []string{Ack.String(), DeadLetter.String(), Retry.String(), HandBack.String()})
	reasonSets  = attrTable2("kind", "reason", reasonNames())
	ekindSets   = attrTable2("kind", "error_kind", []string{deadletter.ErrorKindMalformed, deadletter.ErrorKindSchema, deadletter.ErrorKindAPI422, deadletter.ErrorKindAPI4xx, deadletter.ErrorKindUnknownSubject})
	// putSets are whole option lists: Record's variadic argument is then
	// passed as it is, not built per call.
	putSets = func() map[schemas.Kind]map[string][]metric.RecordOption {
		out := map[schemas.Kind]map[string][]metric.RecordOption{}
		for _, k := range schemas.Kinds {
			endpoint := "/activities/"
			if k != schemas.Activity {
				endpoint = "/records/"
			}
			out[k] = map[string][]metric.RecordOption{}
			for _, c := range []string{"2xx", "4xx", "429", "5xx", "error"} {
				out[k][c] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("endpoint", endpoint), attribute.String("status_class", c)))}
			}
		}
		return out
	}()
)

func attrTable2(k1, k2 string, values []string) map[schemas.Kind]map[string]metric.MeasurementOption {
	out := map[schemas.Kind]map[string]metric.MeasurementOption{}
	for _, k := range kindIndex {
		out[k] = map[string]metric.MeasurementOption{}
		for _, v := range values {
			out[k][v] = metric.WithAttributeSet(attribute.NewSet(attribute.String(k1, string(k)), attribute.String(k2, v)))
		}
	}
	return out
}

func lookup(t map[schemas.Kind]map[string]metric.MeasurementOption, kind schemas.Kind, v, k2 string) metric.MeasurementOption {
	if o, ok := t[kind][v]; ok {
		return o
	}
	return metric.WithAttributes(attribute.String("kind", string(kind)), attribute.String(k2, v))
}

func kindOutcome(kind schemas.Kind, a Action) metric.MeasurementOption {
	return lookup(outcomeSets, kind, a.String(), "outcome")
}

func kindReason(kind schemas.Kind, reason flow.Reason) metric.AddOption {
	return lookup(reasonSets, kind, string(reason), "reason")
}

// reasonNames are the retry reasons of flow.Reasons, which spans and logs
// use too.
func reasonNames() []string {
	out := make([]string, len(flow.Reasons))
	for i, r := range flow.Reasons {
		out[i] = string(r)
	}
	return out
}

func kindErrorKind(kind schemas.Kind, ek string) metric.AddOption {
	return lookup(ekindSets, kind, ek, "error_kind")
}

func putAttrs(kind schemas.Kind, err error) []metric.RecordOption {
	class := "error"
	switch status := cgapi.StatusOf(err); cgapi.ClassOf(err) {
	case cgapi.ClassNone:
		class = "2xx"
	case cgapi.ClassRateLimit:
		class = "429"
	case cgapi.ClassData, cgapi.ClassConfig:
		class = "4xx"
	case cgapi.ClassAuth:
		// A token endpoint that failed with a 5xx or not at all is no 4xx.
		if status >= 400 && status < 500 {
			class = "4xx"
		}
	case cgapi.ClassTransient:
		if status >= 500 {
			class = "5xx"
		}
	}
	return putSets[kind][class]
}
