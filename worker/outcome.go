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
// dead-letters or hands back a message.
func (w *Worker) settle(ctx context.Context, h *held, req request, o Outcome) {
	m, log := h.msg, w.cfg.Logger
	var err error
	switch o.Action {
	case Ack:
		err = m.Ack()
	case DeadLetter:
		if err = w.publishDeadLetter(ctx, h, req, o); err != nil {
			// Not stored: keep the message and try again later.
			log.WarnContext(ctx, "dead letter not stored; message handed back", "kind", h.kind, "seq", h.seq, "error", err)
			o = Outcome{Action: Retry, Delay: w.cfg.RetryInitialInterval * 4, Reason: "dead-letter-publish"}
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
	w.metrics.events.Add(ctx, 1, kindOutcome(h.kind, o.Action))
	if w.cfg.OnSettled != nil {
		w.cfg.OnSettled(Settled{Kind: h.kind, Seq: h.seq, Action: o.Action, ErrorKind: o.ErrorKind, Error: errText(o.Err)})
	}
}

// publishDeadLetter stores the dead letter and waits for its publish
// acknowledgement. Its message id makes a redelivered message dead-letter
// once.
func (w *Worker) publishDeadLetter(ctx context.Context, h *held, req request, o Outcome) error {
	ctx, span := w.tracer.Start(ctx, "deadletter publish", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.name", "send"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", w.cfg.Names.DLQSubject(h.kind)),
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
	propagation.TraceContext{}.Inject(ctx, queue.HeaderCarrier(msg.Header))
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := queue.Publish(pctx, w.js, msg, id); err != nil {
		span.SetStatus(codes.Error, err.Error())
		return err
	}
	w.metrics.deadLetters.Add(ctx, 1, kindErrorKind(h.kind, o.ErrorKind))
	return nil
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
}
