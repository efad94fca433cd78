package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/cgapi/flow"
	"github.com/cgworker/cgworker/queue/deadletter"
	"github.com/cgworker/cgworker/schemas"
)

// put makes one API call for req through its endpoint's flow controller,
// which may first make it wait (README, "When the API is in trouble").
// The call's duration is the flow controller's own measure of it.
func (w *Worker) put(ctx context.Context, h *held, req request) flow.Result {
	res := w.endpoint(req.kind).Do(flow.Call{Wait: w.stopping, Ctx: ctx, OnWait: h}, func(ctx context.Context) error {
		if req.kind == schemas.Activity {
			return w.client.PutActivity(ctx, req.body)
		}
		return w.client.PutRecord(ctx, req.configuration, req.body)
	})
	if !errors.Is(res.Err, flow.ErrStopped) { // a call was made
		w.metrics.recordPut(ctx, req.kind, res.Err, res.Took)
	}
	return res
}

// deliver calls the API for req until it succeeds, the API rejects the
// data, the in-process retry budget is spent, or the worker shuts down, and
// returns what is to become of the message. This is the outcome table of
// README, "Outcomes", row by row. While the endpoint's breaker is open the
// message waits at it, not on a backoff of its own, and that wait does not
// spend its retry budget.
func (w *Worker) deliver(ctx, putCtx context.Context, h *held, req request) Outcome {
	var retry *flow.Retry // made at the first failure: most PUTs need none
	// PUTs follow putCtx (abandoned only when shutdown runs out of time)
	// but carry the message's span, so traceparent reaches the API; a
	// message without a trace has nothing to carry.
	if span := trace.SpanFromContext(ctx); span.SpanContext().IsValid() {
		putCtx = trace.ContextWithSpan(putCtx, span)
	}
	for attempt := 1; ; attempt++ {
		res := w.put(putCtx, h, req)
		if retry != nil {
			retry.Excuse(res.Waited)
		}
		err := res.Err
		if err == nil {
			w.contacts.forget(h.seq)
			return Outcome{Action: Ack}
		}
		if errors.Is(err, flow.ErrStopped) || w.putCtx.Err() != nil {
			// Shutdown began while it waited for the API, or ran out of
			// time with this PUT in flight.
			return shutdownHandBack
		}
		if retry == nil {
			retry = w.newRetry()
		}

		var de *cgapi.DataError
		if errors.As(err, &de) {
			if req.kind == schemas.Activity && de.Status == 422 && de.OnlyField("contact") &&
				time.Since(w.contacts.firstSeen(h.seq, w.cfg.ContactWait+w.cfg.RetryMaxElapsed)) < w.cfg.ContactWait {
				// The contact may still be on its way: retry until
				// CG_CONTACT_WAIT has passed since the first attempt.
				if o, done := w.wait(ctx, h, retry, err, 0, flow.ReasonContact); done {
					return o
				}
				continue
			}
			w.contacts.forget(h.seq)
			return deadLetterFromAPI(de)
		}
		if res.Open {
			// The endpoint is down: wait at its breaker with the others.
			continue
		}
		w.cfg.Logger.DebugContext(ctx, "retrying API call", "kind", req.kind, "seq", h.seq, "attempt", attempt, "error", err)
		if o, done := w.wait(ctx, h, retry, err, cgapi.RetryAfterOf(err), flow.ReasonOf(err)); done {
			return o
		}
	}
}

// wait sleeps until the next attempt after err: the next backoff
// interval, or retryAfter when that is longer. done is true when the
// message must instead leave the process: the retry budget would be
// overrun (hand it back to JetStream with that delay) or the worker is
// shutting down. Either outcome carries err, for the log line and
// OnSettled.
func (w *Worker) wait(ctx context.Context, h *held, retry *flow.Retry, err error, retryAfter time.Duration, reason flow.Reason) (Outcome, bool) {
	delay, ok := retry.Next(retryAfter)
	if !ok {
		nak := max(min(delay, maxNakDelay), retryAfter)
		return Outcome{Action: Retry, Delay: nak, Reason: string(reason), Err: err}, true
	}
	w.metrics.retries.Add(ctx, 1, kindReason(h.kind, reason))
	_, span := w.tracer.Start(ctx, "backoff", trace.WithAttributes(
		attribute.String("cgworker.retry.reason", string(reason)),
		attribute.Int64("cgworker.retry.delay_ms", delay.Milliseconds()),
	))
	defer span.End()
	if flow.Sleep(w.stopping, delay) != nil {
		span.SetStatus(codes.Error, "shutdown")
		o := shutdownHandBack
		o.Err = err
		return o, true
	}
	return Outcome{}, false
}

func (w *Worker) newRetry() *flow.Retry {
	return flow.NewRetry(w.cfg.RetryInitialInterval, w.cfg.RetryMaxInterval, w.cfg.RetryMaxElapsed)
}

// contactWait remembers when each message first failed only on its
// contact, in this process (a redelivery to another replica starts again),
// for the CG_CONTACT_WAIT row of the outcome table.
type contactWait struct {
	mu    sync.Mutex
	first map[uint64]time.Time // stream seq -> first contact-only 422
	// n is len(first), so that forgetting, done for every event
	// delivered, takes no lock while nothing is remembered.
	n atomic.Int64
}

// firstSeen is when message seq first failed on its contact. Entries older
// than horizon belong to messages that moved to another replica.
func (c *contactWait) firstSeen(seq uint64, horizon time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.first[seq]
	if !ok {
		if len(c.first) > 10000 {
			stale := time.Now().Add(-2*horizon - maxNakDelay)
			for s, first := range c.first {
				if first.Before(stale) {
					delete(c.first, s)
				}
			}
		}
		t = time.Now()
		c.first[seq] = t
	}
	c.n.Store(int64(len(c.first)))
	return t
}

func (c *contactWait) forget(seq uint64) {
	if c.n.Load() == 0 {
		return
	}
	c.mu.Lock()
	delete(c.first, seq)
	c.n.Store(int64(len(c.first)))
	c.mu.Unlock()
}

// deadLetterFromAPI is the outcome of the API rejecting the data.
func deadLetterFromAPI(de *cgapi.DataError) Outcome {
	kind := deadletter.ErrorKindAPI4xx
	if de.Status == 422 {
		kind = deadletter.ErrorKindAPI422
	}
	return Outcome{
		Action:     DeadLetter,
		ErrorKind:  kind,
		Errors:     de.Errors,
		HTTPStatus: de.Status,
		Err:        de,
	}
}
