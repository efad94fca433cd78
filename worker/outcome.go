package worker

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/deadletter"
	"github.com/cgworker/cgworker/schemas"
)

// Action is what becomes of a message.
type Action int

const (
	// Ack: the API took the event.
	Ack Action = iota
	// DeadLetter: the event is invalid or the API rejected it; it is
	// published to the dead-letter stream, then acknowledged.
	DeadLetter
	// Retry: the in-process retry budget is spent; the message goes back
	// to JetStream with NakWithDelay(Delay).
	Retry
	// HandBack: the worker is shutting down; the message goes back to
	// JetStream at once (Nak) for another replica.
	HandBack

	numActions = iota
)

func (a Action) String() string {
	switch a {
	case Ack:
		return "delivered"
	case DeadLetter:
		return "dead-lettered"
	case Retry:
		return "retry-later"
	default:
		return "handed-back"
	}
}

// Outcome is the verdict on one delivery of a message.
type Outcome struct {
	Action Action
	Delay  time.Duration // Retry
	Reason string        // Retry, HandBack: why

	// DeadLetter
	ErrorKind  string
	Errors     map[string][]string
	HTTPStatus int
	Err        error // the failure, for logs and the CG-Error summary
}

func invalidOutcome(se *schemas.Error) Outcome {
	return Outcome{Action: DeadLetter, ErrorKind: string(se.Kind), Errors: se.Fields, Err: se}
}

// settle acts on an outcome. It is the only place that acknowledges,
// dead-letters or hands back a held message (DESIGN.md, "The outcome
// table").
func (w *Worker) settle(ctx context.Context, h *held, req request, o Outcome) {
	m, log := h.msg, w.cfg.Logger
	var err error
	switch o.Action {
	case Ack:
		err = m.Ack()
	case DeadLetter:
		if err = w.publishDeadLetter(ctx, h, req, o); err != nil {
			// Not stored (the store is down or refuses it): keep the
			// message and try again later, waiting longer each delivery
			// so that a store that stays down is not hammered.
			w.metrics.deadLetterFailures.Add(ctx, 1, kindErrorKind(h.kind, o.ErrorKind))
			o = Outcome{Action: Retry, Delay: deadLetterRetryDelay(w.cfg.RetryInitialInterval, h.delivered), Reason: "dead-letter-publish", Err: err}
			log.WarnContext(ctx, "dead letter not stored; message handed back", "kind", h.kind, "seq", h.seq, "delivered", h.delivered, "delay", o.Delay, "error", err)
			err = m.NakWithDelay(o.Delay)
			break
		}
		log.InfoContext(ctx, "dead-lettered", "kind", h.kind, "seq", h.seq, "error_kind", o.ErrorKind, "error", errText(o.Err), "attempts", h.delivered)
		err = m.Ack()
	case Retry:
		log.WarnContext(ctx, "retry budget spent; message handed back to JetStream", "kind", h.kind, "seq", h.seq, "delay", o.Delay, "reason", o.Reason, "error", errText(o.Err))
		err = m.NakWithDelay(o.Delay)
	case HandBack:
		err = m.Nak()
	}
	if err != nil {
		// The server redelivers after the ack wait: nothing is lost.
		log.WarnContext(ctx, "settling message failed", "kind", h.kind, "seq", h.seq, "action", o.Action.String(), "error", err)
	}
	w.metrics.settled(h.kind, o.Action)
	if w.cfg.OnSettled != nil {
		w.cfg.OnSettled(Settled{Kind: h.kind, Seq: h.seq, Action: o.Action, ErrorKind: o.ErrorKind, Error: errText(o.Err), Delay: o.Delay})
	}
}

// publishDeadLetter stores the dead letter once, whatever came before
// (deadletter.Store: its own subject, which must be empty; the body in the
// object store when the letter is too large), and waits for the publish
// acknowledgement.
func (w *Worker) publishDeadLetter(ctx context.Context, h *held, req request, o Outcome) error {
	ctx, span := w.tracer.Start(ctx, "deadletter publish", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.name", "send"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.template", w.cfg.Names.DLQKindWildcard(h.kind)),
			attribute.String("cgworker.error_kind", o.ErrorKind),
		))
	defer span.End()
	info := deadletter.Info{
		Kind:       string(h.kind),
		ErrorKind:  o.ErrorKind,
		Error:      errText(o.Err),
		Errors:     o.Errors,
		HTTPStatus: o.HTTPStatus,
		Reference:  req.reference,
		HappenedAt: req.happenedAt,
		Attempts:   h.delivered,
		FailedAt:   time.Now(),
	}
	msg, id := deadletter.Build(w.cfg.Names, h.msg.Subject(), h.msg.Headers(), h.msg.Data(), h.meta, info)
	span.SetAttributes(attribute.String("messaging.destination.name", msg.Subject))
	propagation.TraceContext{}.Inject(ctx, queue.HeaderCarrier(msg.Header))
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deadLetterTimeout)
	defer cancel()
	stored, err := deadletter.Store(pctx, w.js, w.cfg.Names, msg, id)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return err
	}
	if stored.Existing {
		w.cfg.Logger.InfoContext(ctx, "dead letter already stored by an earlier delivery", "kind", h.kind, "seq", h.seq, "subject", msg.Subject)
		return nil
	}
	if stored.BodyRef != "" {
		w.cfg.Logger.InfoContext(ctx, "dead letter too large to store whole; body kept in the object store", "kind", h.kind, "seq", h.seq,
			"bucket", w.cfg.Names.DLQBodiesBucket(), "object", stored.BodyRef, "body_bytes", len(msg.Data))
	}
	w.metrics.deadLetters.Add(ctx, 1, kindErrorKind(h.kind, o.ErrorKind))
	return nil
}

// deadLetterTimeout bounds the storing of one dead letter, an 8 MiB body
// in the object store included.
const deadLetterTimeout = 30 * time.Second

// deadLetterRetryDelay is how long a message whose dead letter could not
// be stored waits before its next delivery: four initial retry intervals,
// doubled with each delivery, at most maxNakDelay. The delivery count
// comes from the server, so the delay grows across replicas and restarts.
func deadLetterRetryDelay(initial time.Duration, delivered uint64) time.Duration {
	d := 4 * initial
	for i := uint64(1); i < delivered && d < maxNakDelay; i++ {
		d *= 2
	}
	return min(d, maxNakDelay)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Settled describes a message whose delivery ended, for Config.OnSettled.
type Settled struct {
	Kind      schemas.Kind
	Seq       uint64 // stream sequence
	Action    Action
	ErrorKind string
	Error     string
	Delay     time.Duration // Retry: how long before the next delivery
}
