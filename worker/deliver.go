package worker

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/queue/deadletter"
	"github.com/cgworker/cgworker/schemas"
)

// put makes one API call for req.
func (w *Worker) put(ctx context.Context, req request) error {
	start := time.Now()
	var err error
	if req.kind == schemas.Activity {
		err = w.client.PutActivity(ctx, req.body)
	} else {
		err = w.client.PutRecord(ctx, req.configuration, req.body)
	}
	w.metrics.recordPut(ctx, req.kind, err, time.Since(start))
	return err
}

// deliver calls the API for req until it succeeds, the API rejects the
// data, the in-process retry budget is spent, or the worker shuts down, and
// returns what is to become of the message. This is the outcome table of
// README, "Outcomes", row by row.
func (w *Worker) deliver(ctx context.Context, h *held, req request) Outcome {
	var bo *backoff.ExponentialBackOff
	start := time.Now()
	// PUTs follow putCtx (abandoned only when shutdown runs out of time)
	// but carry the message's span, so traceparent reaches the API.
	putCtx := trace.ContextWithSpan(w.putCtx, trace.SpanFromContext(ctx))
	for attempt := 1; ; attempt++ {
		err := w.put(putCtx, req)
		if err == nil {
			w.health.setAPI(nil)
			return Outcome{Action: Ack}
		}
		if w.putCtx.Err() != nil {
			// Shutdown ran out of time with this PUT in flight.
			return Outcome{Action: HandBack, Reason: "shutdown"}
		}

		var de *cgapi.DataError
		if errors.As(err, &de) {
			w.health.setAPI(nil) // the API answered: no outage
			if req.kind == schemas.Activity && de.Status == 422 && de.OnlyField("contact") {
				// The contact may still be on its way: retry until
				// CG_CONTACT_WAIT has passed since the first attempt.
				if time.Since(w.contactFirstSeen(h)) < w.cfg.ContactWait {
					if bo == nil {
						bo = w.newBackoff()
					}
					if o, done := w.wait(ctx, h, bo, start, 0, "contact"); done {
						return o
					}
					continue
				}
			}
			return deadLetterFromAPI(de)
		}

		if cgapi.IsOutage(err) {
			w.health.setAPI(err)
		}
		retryAfter := cgapi.RetryAfterOf(err)
		if bo == nil {
			bo = w.newBackoff()
		}
		w.cfg.Logger.DebugContext(ctx, "retrying API call", "kind", req.kind, "seq", h.seq, "attempt", attempt, "error", err)
		if o, done := w.wait(ctx, h, bo, start, retryAfter, reasonOf(err)); done {
			o.Err = err
			return o
		}
	}
}

// wait sleeps until the next attempt: the next backoff interval, or
// retryAfter when that is longer. done is true when the message must
// instead leave the process: the retry budget would be overrun (hand it
// back to JetStream with that delay) or the worker is shutting down.
func (w *Worker) wait(ctx context.Context, h *held, bo *backoff.ExponentialBackOff, start time.Time, retryAfter time.Duration, reason string) (Outcome, bool) {
	delay := max(bo.NextBackOff(), retryAfter)
	if time.Since(start)+delay > w.cfg.RetryMaxElapsed {
		nak := min(delay, maxNakDelay)
		if retryAfter > nak {
			nak = retryAfter
		}
		return Outcome{Action: Retry, Delay: nak, Reason: reason}, true
	}
	w.metrics.retries.Add(ctx, 1, kindReason(h.kind, reason))
	_, span := w.tracer.Start(ctx, "backoff", trace.WithAttributes(
		attribute.String("cgworker.retry.reason", reason),
		attribute.Int64("cgworker.retry.delay_ms", delay.Milliseconds()),
	))
	defer span.End()
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return Outcome{}, false
	case <-w.stopping.Done():
		span.SetStatus(codes.Error, "shutdown")
		return Outcome{Action: HandBack, Reason: "shutdown"}, true
	}
}

func (w *Worker) newBackoff() *backoff.ExponentialBackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(w.cfg.RetryInitialInterval),
		backoff.WithMaxInterval(w.cfg.RetryMaxInterval),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxElapsedTime(0), // the budget is ours: see wait
	)
}

// reasonOf names the kind of retryable failure, for metrics and spans.
func reasonOf(err error) string {
	switch cgapi.ClassOf(err) {
	case cgapi.ClassRateLimit:
		return "rate-limit"
	case cgapi.ClassAuth:
		return "auth"
	case cgapi.ClassConfig:
		return "misconfigured"
	default:
		return "transient"
	}
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
