package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/schemas"
)

// Worker consumes events and delivers them to the API.
type Worker struct {
	cfg       Config
	js        jetstream.JetStream
	client    *cgapi.Client
	validator *schemas.Validator
	tracer    trace.Tracer
	metrics   *metrics
	health    *Health

	// stopping is cancelled when shutdown begins: no more pulls, no more
	// backoff waits. putCtx is cancelled ShutdownTimeout later: PUTs still
	// in flight are abandoned and their messages handed back.
	stopping context.Context
	putCtx   context.Context

	sem      chan struct{} // one slot per PUT in flight
	inflight *inProgress

	contactMu    sync.Mutex
	contactFirst map[uint64]time.Time // stream seq -> first contact-only 422
}

// New returns a worker. Nothing happens until Run.
func New(js jetstream.JetStream, client *cgapi.Client, validator *schemas.Validator, cfg Config) (*Worker, error) {
	cfg = cfg.withDefaults()
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	m, err := newMetrics(cfg.MeterProvider)
	if err != nil {
		return nil, err
	}
	return &Worker{
		cfg:          cfg,
		js:           js,
		client:       client,
		validator:    validator,
		tracer:       tp.Tracer("github.com/cgworker/cgworker/worker"),
		metrics:      m,
		health:       cfg.Health,
		sem:          make(chan struct{}, cfg.Concurrency),
		contactFirst: make(map[uint64]time.Time),
	}, nil
}

// Run binds the consumers and processes events until ctx is cancelled,
// then shuts down gracefully: it stops pulling, stops backoff waits, lets
// PUTs in flight finish within ShutdownTimeout, and hands every other held
// message back to JetStream at once. It returns nil after a clean shutdown.
func (w *Worker) Run(ctx context.Context) error {
	stopping, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	putCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	w.stopping, w.putCtx = stopping, putCtx

	sc := queue.StreamConfig{Names: w.cfg.Names, AckWait: w.cfg.AckWait}
	consumers := make(map[schemas.Kind]jetstream.Consumer, len(w.cfg.Kinds))
	for _, k := range w.cfg.Kinds {
		c, err := queue.EnsureConsumer(ctx, w.js, sc, k)
		if err != nil {
			return err
		}
		consumers[k] = c
	}
	w.health.setConsumers(true)
	w.metrics.observeConsumers(consumers)

	// In-progress reports go on until every handler is done: PUTs still
	// finishing during shutdown keep their messages.
	w.inflight = newInProgress(w.cfg.AckWait, w.cfg.Logger)
	hbCtx, hbStop := context.WithCancel(context.Background())
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); w.inflight.run(hbCtx) }()

	var handlers sync.WaitGroup
	var pullers sync.WaitGroup
	for k, c := range consumers {
		pullers.Add(1)
		go func() {
			defer pullers.Done()
			w.pull(k, c, &handlers)
		}()
	}
	w.cfg.Logger.Info("consuming", "kinds", w.cfg.Kinds, "concurrency", w.cfg.Concurrency, "prefetch", w.cfg.Prefetch)

	<-ctx.Done()
	w.cfg.Logger.Info("shutting down", "timeout", w.cfg.ShutdownTimeout)
	w.health.setDraining()
	stop()
	pullers.Wait()

	done := make(chan struct{})
	go func() { handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.cfg.ShutdownTimeout):
		w.cfg.Logger.Warn("shutdown timeout: abandoning PUTs in flight")
		abandon()
		<-done
	}
	hbStop()
	<-hbDone
	w.metrics.stopObserving()
	w.cfg.Logger.Info("shut down")
	return nil
}

// pull feeds one consumer's messages to handlers, at most Concurrency in
// flight across all kinds. A slot is taken before a message is, so nothing
// is taken that cannot be worked on at once.
func (w *Worker) pull(kind schemas.Kind, c jetstream.Consumer, handlers *sync.WaitGroup) {
	log := w.cfg.Logger.With("kind", kind)
	for w.stopping.Err() == nil {
		it, err := c.Messages(jetstream.PullMaxMessages(w.cfg.Prefetch))
		if err != nil {
			log.Warn("cannot pull messages; retrying", "error", err)
			w.health.setConsumers(false)
			if !sleepCtx(w.stopping, time.Second) {
				return
			}
			continue
		}
		w.health.setConsumers(true)
		w.drive(kind, it, handlers, log)
	}
}

func (w *Worker) drive(kind schemas.Kind, it jetstream.MessagesContext, handlers *sync.WaitGroup, log *slog.Logger) {
	stopWatch := context.AfterFunc(w.stopping, it.Drain)
	defer stopWatch()
	for {
		select {
		case w.sem <- struct{}{}:
		case <-w.stopping.Done():
			w.handBack(it, nil)
			return
		}
		m, err := it.Next()
		if err != nil {
			<-w.sem
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				if w.stopping.Err() == nil {
					log.Warn("message iterator closed; pulling again", "error", err)
					it.Stop()
					sleepCtx(w.stopping, time.Second)
				}
				return
			}
			// Missed heartbeats while NATS restarts: the iterator
			// recovers by itself.
			log.Warn("pulling messages", "error", err)
			continue
		}
		if w.stopping.Err() != nil {
			<-w.sem
			w.handBack(it, m)
			return
		}
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			defer func() { <-w.sem }()
			w.handle(kind, m)
		}()
	}
}

// handBack drains the iterator and naks every message it still holds, and
// first when not nil. The naks wait until the iterator is closed: a nak
// sent while its pull request is still open on the server would have the
// message redelivered straight into this closing iterator, where it would
// sit out a whole ack wait.
func (w *Worker) handBack(it jetstream.MessagesContext, first jetstream.Msg) {
	it.Drain()
	var held []jetstream.Msg
	if first != nil {
		held = append(held, first)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		wait := time.Until(deadline)
		if wait <= 0 {
			break
		}
		m, err := it.Next(jetstream.NextMaxWait(wait))
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || time.Now().After(deadline) {
				break
			}
			continue
		}
		held = append(held, m)
	}
	for _, m := range held {
		if err := m.Nak(); err != nil {
			w.cfg.Logger.Warn("handing back a message failed; it is redelivered after the ack wait", "error", err)
		}
	}
	if len(held) > 0 {
		w.cfg.Logger.Info("handed back prefetched messages", "count", len(held))
	}
}

// handle processes one delivery of a message: prepare, deliver, settle.
func (w *Worker) handle(kind schemas.Kind, m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		// Not a JetStream message: cannot happen on a pull consumer.
		w.cfg.Logger.Error("message without metadata", "subject", m.Subject(), "error", err)
		_ = m.Term()
		return
	}
	h := &held{msg: m, meta: meta, kind: kind, seq: meta.Sequence.Stream, delivered: meta.NumDelivered}
	ctx := propagation.TraceContext{}.Extract(context.Background(), queue.HeaderCarrier(m.Headers()))
	ctx, span := w.tracer.Start(ctx, "process "+m.Subject(),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.name", "process"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", m.Subject()),
			attribute.String("messaging.consumer.group.name", meta.Consumer),
			attribute.String("messaging.message.id", header(m.Headers(), nats.MsgIdHdr)),
			attribute.Int64("messaging.nats.message.delivery_count", int64(meta.NumDelivered)),
			attribute.Int64("messaging.nats.stream.sequence", int64(meta.Sequence.Stream)),
			attribute.String("messaging.nats.stream.name", meta.Stream),
			attribute.Int("messaging.message.body.size", len(m.Data())),
		))
	defer span.End()
	w.inflight.add(h)
	defer w.inflight.remove(h)
	w.metrics.inFlight.Add(ctx, 1)
	defer w.metrics.inFlight.Add(ctx, -1)

	_, vspan := w.tracer.Start(ctx, "validate")
	req, invalid := w.prepare(kind, m, meta)
	if invalid != nil {
		vspan.SetStatus(codes.Error, string(invalid.Kind))
	}
	vspan.End()

	var o Outcome
	if invalid != nil {
		o = invalidOutcome(invalid)
	} else {
		if req.reference != "" {
			span.SetAttributes(attribute.String("cgworker.activity.reference", req.reference))
		}
		o = w.deliver(ctx, h, req)
	}
	span.SetAttributes(attribute.String("cgworker.outcome", o.Action.String()))
	if o.Action == DeadLetter {
		span.SetAttributes(attribute.String("cgworker.error_kind", o.ErrorKind))
		span.SetStatus(codes.Error, o.ErrorKind)
	}
	w.settle(ctx, h, req, o)
}

// contactFirstSeen is when this message first failed only on its contact,
// in this process (a redelivery to another replica starts again).
func (w *Worker) contactFirstSeen(h *held) time.Time {
	w.contactMu.Lock()
	defer w.contactMu.Unlock()
	t, ok := w.contactFirst[h.seq]
	if !ok {
		if len(w.contactFirst) > 10000 {
			// Messages that moved to another replica: forget the stale.
			horizon := time.Now().Add(-2*w.cfg.ContactWait - maxNakDelay - w.cfg.RetryMaxElapsed)
			for seq, first := range w.contactFirst {
				if first.Before(horizon) {
					delete(w.contactFirst, seq)
				}
			}
		}
		t = time.Now()
		w.contactFirst[h.seq] = t
	}
	return t
}

func (w *Worker) forgetContact(h *held) {
	w.contactMu.Lock()
	delete(w.contactFirst, h.seq)
	w.contactMu.Unlock()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
