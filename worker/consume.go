package worker

import (
	"context"
	"errors"
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
	"github.com/cgworker/cgworker/cgapi/flow"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/schemas"
	"github.com/cgworker/cgworker/worker/health"
	"github.com/cgworker/cgworker/worker/telemetry"
)

// Worker consumes events and delivers them to the API.
type Worker struct {
	cfg       Config
	js        jetstream.JetStream
	client    *cgapi.Client
	validator *schemas.Validator
	tracer    trace.Tracer
	tracing   bool // the tracer provider is not the no-op one
	// spanNames are the message spans' names by kind, "process
	// <subject>": a kind's consumer reads its one subject, and a traced
	// replica starts a span for every message, sampled or not.
	spanNames map[schemas.Kind]string
	metrics   *metrics
	health    *health.Health
	flow      *flow.Set
	ownFlow   bool // made by New, closed by Run

	// stopping is cancelled when shutdown begins: no more pulls, no more
	// backoff waits. putCtx is cancelled ShutdownTimeout later: PUTs still
	// in flight are abandoned and their messages handed back.
	stopping context.Context
	putCtx   context.Context

	slots    *slotPool  // one slot per message held: in flight or queued
	jobs     chan *held // fetched messages for the handler goroutines
	handlers sync.WaitGroup
	inflight *inProgress

	contacts contactWait
}

// New returns a worker. Nothing happens until Run.
func New(js jetstream.JetStream, client *cgapi.Client, validator *schemas.Validator, cfg Config) (*Worker, error) {
	cfg = cfg.withDefaults()
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	inflight := newInProgress(cfg.AckWait, cfg.Logger)
	m, err := newMetrics(cfg.MeterProvider, inflight.len)
	if err != nil {
		return nil, err
	}
	fs, own := cfg.Flow, false
	if fs == nil {
		fs, err = flow.NewSet(flow.Config{Concurrency: cfg.Concurrency, RateLimit: cfg.RateLimit, Logger: cfg.Logger, MeterProvider: cfg.MeterProvider})
		if err != nil {
			return nil, err
		}
		own = true
		cfg.Health.WatchAPI(fs.Unavailable)
	}
	return &Worker{
		cfg:       cfg,
		js:        js,
		client:    client,
		validator: validator,
		tracer:    tp.Tracer("github.com/cgworker/cgworker/worker"),
		tracing:   !telemetry.Off(tp),
		spanNames: spanNames(cfg.Names),
		metrics:   m,
		health:    cfg.Health,
		flow:      fs,
		ownFlow:   own,
		slots:     newSlotPool(cfg.Concurrency + cfg.Lookahead),
		inflight:  inflight,
		contacts:  contactWait{first: make(map[uint64]time.Time)},
	}, nil
}

func spanNames(n queue.Names) map[schemas.Kind]string {
	out := make(map[schemas.Kind]string, len(schemas.Kinds))
	for _, k := range schemas.Kinds {
		out[k] = "process " + n.EventSubject(k)
	}
	return out
}

// endpoint is the flow controller of the API endpoint kind's events go to.
func (w *Worker) endpoint(kind schemas.Kind) *flow.Controller {
	if kind == schemas.Activity {
		return w.flow.Endpoint(flow.Activities)
	}
	return w.flow.Endpoint(flow.Records)
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

	sc := w.streamConfig()
	consumers := make(map[schemas.Kind]jetstream.Consumer, len(w.cfg.Kinds))
	for _, k := range w.cfg.Kinds {
		c, err := queue.EnsureConsumer(ctx, w.js, sc, k)
		if err != nil {
			return err
		}
		consumers[k] = c
	}
	w.health.SetConsumers(true)
	w.metrics.observeConsumers(consumers)
	unknownDone := w.watchUnknown(stopping)

	// In-progress reports go on until every handler is done: PUTs still
	// finishing during shutdown keep their messages.
	hbCtx, hbStop := context.WithCancel(context.Background())
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); w.inflight.run(hbCtx) }()

	// Concurrency handler goroutines, living as long as Run: a goroutine
	// per message would grow its stack anew each time (validation and the
	// HTTP client run deep), about 5% of the CPU.
	w.jobs = make(chan *held, w.slots.size)
	for range w.cfg.Concurrency {
		w.handlers.Add(1)
		go w.handler()
	}
	var pullers sync.WaitGroup
	for k, c := range consumers {
		pullers.Add(1)
		go func() {
			defer pullers.Done()
			w.pull(k, c)
		}()
	}
	w.cfg.Logger.Info("consuming", "kinds", w.cfg.Kinds, "concurrency", w.cfg.Concurrency, "batch", w.cfg.Batch)

	<-ctx.Done()
	w.cfg.Logger.Info("shutting down", "timeout", w.cfg.ShutdownTimeout)
	w.health.SetDraining()
	stop()
	pullers.Wait()
	<-unknownDone
	close(w.jobs) // handlers finish what they hold and hand back what is queued

	done := make(chan struct{})
	go func() { w.handlers.Wait(); close(done) }()
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
	if w.ownFlow {
		w.flow.Close()
	}
	w.cfg.Logger.Info("shut down")
	return nil
}

// pullWait is how long an idle pull waits on the server for a message.
// Short, so a lost server or a moved consumer leader is noticed quickly.
const pullWait = 5 * time.Second

// pull feeds one consumer's messages to the handlers. A slot is one message
// held, in a handler or in the short look-ahead queue; messages are fetched
// only into free slots, and every fetched message is reported in progress
// from then on (take). Nothing sits in a client buffer unreported, where
// its ack wait would run out and another replica would process it too. An
// idle consumer waits on the server with one slot; once messages flow, a
// fetch waits for refill free slots and then takes as many as there are
// (at most Batch) without waiting on the server. Fetching as each slot
// frees would cost a pull request, on the worker and on the server, per
// message; the look-ahead queue keeps the handlers busy meanwhile.
//
// Nothing is fetched for a kind whose API endpoint cannot take calls now
// (breaker open, rate-limit pause, calls waiting): its events stay in the
// stream, where any replica can take them once the API is back (README,
// "When the API is in trouble").
func (w *Worker) pull(kind schemas.Kind, c jetstream.Consumer) {
	log := w.cfg.Logger.With("kind", kind)
	api := w.endpoint(kind)
	name := w.cfg.Names.Consumer(kind)
	// Half the look-ahead: the other half is still queued for the handlers
	// while the fetch makes its round trip. And at most half the slots
	// shared among the kinds' pulls, so that each kind gets its turn.
	refill := max(min(w.cfg.Lookahead/2, w.cfg.Batch, w.slots.size/(2*len(w.cfg.Kinds))), 1)
	flowing := false
	for {
		if !api.WaitReady(w.stopping) {
			return
		}
		least, most := 1, 1
		if flowing {
			least, most = refill, w.cfg.Batch
		}
		k := w.slots.acquire(w.stopping, least, most)
		if w.stopping.Err() != nil {
			w.slots.release(k)
			return
		}
		var batch jetstream.MessageBatch
		var err error
		cancel := func() {}
		if flowing {
			batch, err = c.FetchNoWait(k)
		} else {
			var ctx context.Context
			ctx, cancel = context.WithTimeout(w.stopping, pullWait)
			batch, err = c.Fetch(k, jetstream.FetchContext(ctx))
		}
		if err != nil {
			cancel()
			w.slots.release(k)
			if w.stopping.Err() != nil {
				return
			}
			log.Warn("cannot pull messages; retrying", "error", err)
			c = w.rebind(kind, name, c, err)
			_ = flow.Sleep(w.stopping, time.Second)
			continue
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if w.stopping.Err() != nil {
				// Fetched as shutdown began: straight back to the
				// stream, not queued behind the PUTs still in flight.
				w.handBack(kind, m)
				w.slots.release(1)
				continue
			}
			w.take(kind, m)
		}
		cancel()
		w.slots.release(k - n)
		flowing = n > 0
		if err := batch.Error(); err != nil && w.stopping.Err() == nil &&
			!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			// Missed heartbeats while NATS restarts or a leader moves.
			log.Warn("pulling messages", "error", err)
			c = w.rebind(kind, name, c, err)
			_ = flow.Sleep(w.stopping, 100*time.Millisecond)
			continue
		}
		// A pull that succeeds shows the consumer bound, whatever a
		// rebind before it reported (one lock a fetch, not a message).
		w.health.SetConsumer(name, true)
	}
}

// rebind handles a pull error. When the server says the consumer is gone
// (deleted by hand, or its stream recreated), the replica is not ready and
// binds it again as at start-up: created when missing, used as it is when
// an operator put it back. A pull that finds no responder may mean the
// same: once the server has forgotten a deleted consumer, pulls on it are
// answered "no responders", so a rebind that failed at the moment of the
// delete (the server still finishing it) is tried again on those; on a
// consumer that exists, binding again only looks it up. Other pull errors
// come with a lost connection, which readiness already reports as such.
// A consumer not bound again stays unready until one of its pulls
// succeeds.
func (w *Worker) rebind(kind schemas.Kind, name string, c jetstream.Consumer, err error) jetstream.Consumer {
	if !errors.Is(err, jetstream.ErrConsumerNotFound) && !errors.Is(err, jetstream.ErrConsumerDeleted) &&
		!errors.Is(err, nats.ErrNoResponders) {
		return c
	}
	w.health.SetConsumer(name, false)
	ctx, cancel := context.WithTimeout(w.stopping, 10*time.Second)
	defer cancel()
	sc := w.streamConfig()
	nc, err := queue.EnsureConsumer(ctx, w.js, sc, kind)
	if err != nil {
		w.cfg.Logger.Error("consumer gone and cannot be bound again", "kind", kind, "error", err)
		return c
	}
	w.cfg.Logger.Warn("consumer was gone; bound again", "kind", kind, "consumer", name)
	w.health.SetConsumer(name, true) // ready now, not after the next pull's wait
	return nc
}

// streamConfig is the stream and consumer settings the worker binds with.
func (w *Worker) streamConfig() queue.StreamConfig {
	return queue.StreamConfig{Names: w.cfg.Names, AckWait: w.cfg.AckWait}
}

// processSpan are the start options of a message's span, built once.
var processSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}

// take queues a fetched message for the handlers. From here on it is
// reported in progress, queued or not, so it is never redelivered while
// this replica holds it.
func (w *Worker) take(kind schemas.Kind, m jetstream.Msg) {
	h := w.heldOf(kind, m)
	if h == nil {
		w.slots.release(1)
		return
	}
	// Held from here, queued or in a handler, until settled.
	w.inflight.add(h)
	w.jobs <- h // never blocks: the queue has room for every slot
}

// heldOf is m as a message of kind held by this replica; nil, and m
// terminated, when it is not a JetStream message, which cannot happen on a
// pull consumer.
func (w *Worker) heldOf(kind schemas.Kind, m jetstream.Msg) *held {
	meta, err := m.Metadata()
	if err != nil {
		w.cfg.Logger.Error("message without metadata", "subject", m.Subject(), "error", err)
		_ = m.Term()
		return nil
	}
	return &held{msg: m, meta: meta, kind: kind, seq: meta.Sequence.Stream, delivered: meta.NumDelivered, w: w}
}

// handBack settles m, fetched as shutdown began, through settle like any
// other (counted, logged, reported): straight back to the stream.
func (w *Worker) handBack(kind schemas.Kind, m jetstream.Msg) {
	if h := w.heldOf(kind, m); h != nil {
		w.handBackHeld(h)
	}
}

// handBackHeld settles h, which shutdown keeps from being worked on.
func (w *Worker) handBackHeld(h *held) {
	w.settle(context.Background(), h, request{kind: h.kind}, shutdownHandBack)
}

// shutdownHandBack is the outcome of a message shutdown cut short.
var shutdownHandBack = Outcome{Action: HandBack, Reason: "shutdown"}

// handler runs messages until the queue closes, or until one of them waits
// for its endpoint (detached): then a new handler has taken its place.
func (w *Worker) handler() {
	defer w.handlers.Done()
	// The handler's own child of putCtx for its PUTs: each call's timeout
	// registers with it, not with the one context every handler shares,
	// whose lock all of them would take twice per call.
	putCtx, cancel := context.WithCancel(w.putCtx)
	defer cancel()
	for h := range w.jobs {
		if w.handle(h, putCtx) {
			return
		}
		w.slots.release(1)
	}
}

// handle processes one delivery of a message: prepare, deliver, settle.
// detached reports that the message gave up its handler while it waited
// for its endpoint (held.Wait): this goroutine then ends with it. putCtx
// is what its PUTs follow: the handler's child of the worker's putCtx.
func (w *Worker) handle(h *held, putCtx context.Context) (detached bool) {
	defer w.inflight.remove(h)
	if w.stopping.Err() != nil {
		// Queued when shutdown began: straight back to the stream.
		w.handBackHeld(h)
		return false
	}
	kind, m, meta := h.kind, h.msg, h.meta
	ctx := propagation.TraceContext{}.Extract(context.Background(), queue.HeaderCarrier(m.Headers()))
	// With nothing traced the message's span is the producer's context,
	// carried to the API call as it is; starting a no-op span would only
	// cost a context and the span's name, per event.
	span := trace.SpanFromContext(ctx)
	if w.tracing {
		ctx, span = w.tracer.Start(ctx, w.spanNames[kind], processSpan...)
	}
	defer span.End()
	// Attributes are built only for a span that keeps them: with the noop
	// provider (no exporter configured) they would be allocated per message
	// for nothing.
	recording := span.IsRecording()
	if recording {
		span.SetAttributes(
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
		)
	}

	// The validation span only under a recorded span: with one trace in
	// ten sampled, the other nine would start a span nobody keeps.
	var vspan trace.Span
	if recording {
		_, vspan = w.tracer.Start(ctx, "validate")
	}
	req, invalid := w.prepare(kind, m, meta)
	if vspan != nil {
		if invalid != nil {
			vspan.SetStatus(codes.Error, string(invalid.Kind))
		}
		vspan.End()
	}

	var o Outcome
	if invalid != nil {
		o = invalidOutcome(invalid)
	} else if req.unchecked != nil && w.stopping.Err() != nil {
		// The look at the stored copy was cut short by shutdown: back to
		// the stream at once, not after a retry interval.
		o = shutdownHandBack
	} else if req.unchecked != nil {
		o = Outcome{Action: Retry, Delay: w.cfg.RetryMaxInterval, Reason: "headers-unchecked", Err: req.unchecked}
	} else {
		if recording && req.reference != "" {
			span.SetAttributes(attribute.String("cgworker.activity.reference", req.reference))
		}
		o = w.deliver(ctx, putCtx, h, req)
	}
	if recording {
		span.SetAttributes(attribute.String("cgworker.outcome", o.Action.String()))
	}
	if o.Action == DeadLetter {
		if recording {
			span.SetAttributes(attribute.String("cgworker.error_kind", o.ErrorKind))
		}
		span.SetStatus(codes.Error, o.ErrorKind)
	}
	w.settle(ctx, h, req, o)
	return h.detached
}
