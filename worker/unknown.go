package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/deadletter"
)

// Events on unknown subjects (README, "Dead letters").
//
// The events stream cgworker creates takes exactly the three kinds'
// subjects, so a producer's typo fails at the producer. A stream an
// operator made with <prefix>.events.> stores any subject under it, and
// nothing would ever read, count or dead-letter an event on
// cg.events.ticket or cg.events.activity.v2. So every replica looks, every
// UnknownSubjectsInterval, at the subjects the stream holds (stream info
// with a subject filter gives per-subject counts) and, when some are no
// kind's, reads them through the consumers queue.EnsureUnknownConsumers
// keeps (its doc says which and why), dead-lettering each event as
// unknown-subject, on <prefix>.dlq.unknown.<stream>-<seq>-<ts>, through
// settle like any other. A catch-all consumer would see the kinds' events
// a second time. A kind left unconsumed because its configuration is
// missing is still a kind: its events wait in the stream, as the README
// says.

// unknownBatch is how many unknown-subject events one fetch takes: each is
// dead-lettered in turn, well within the ack wait.
const unknownBatch = 16

// watchUnknown dead-letters events on unknown subjects until ctx ends;
// the returned channel is closed when it has stopped.
func (w *Worker) watchUnknown(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(w.cfg.UnknownSubjectsInterval)
		defer t.Stop()
		for {
			if err := w.sweepUnknown(ctx); err != nil && ctx.Err() == nil {
				w.cfg.Logger.Warn("cannot dead-letter events on unknown subjects; trying again later",
					"stream", w.cfg.Names.EventsStream(), "error", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return done
}

// sweepUnknown dead-letters every event on an unknown subject stored now.
func (w *Worker) sweepUnknown(ctx context.Context) error {
	s, subjects, err := w.unknownSubjects(ctx)
	if err != nil {
		return err
	}
	// Even with none: the consumers of subjects gone since are deleted.
	// A consumer that cannot be made does not keep the others from being
	// read: its error is reported with theirs.
	consumers, err := queue.EnsureUnknownConsumers(ctx, s, w.streamConfig(), subjects)
	errs := []error{err}
	for _, cons := range consumers {
		errs = append(errs, w.drainUnknown(ctx, cons))
	}
	return errors.Join(errs...)
}

// drainUnknown dead-letters what cons, the consumer of one unknown
// subject, has to deliver now.
func (w *Worker) drainUnknown(ctx context.Context, cons jetstream.Consumer) error {
	for ctx.Err() == nil {
		batch, err := cons.FetchNoWait(unknownBatch)
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if ctx.Err() != nil {
				// Shutdown began: a dead letter is stored whatever the
				// caller's context (up to its own timeout), so the rest
				// of the batch goes back to the stream for the next sweep
				// rather than holding shutdown one letter at a time.
				w.handBack(queue.UnknownKind, m)
				continue
			}
			w.deadLetterUnknown(ctx, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		if n == 0 {
			return nil
		}
	}
	return nil
}

// unknownSubjects returns the events stream and the subjects under
// <prefix>.events.> it holds messages on that are no kind's, sorted.
func (w *Worker) unknownSubjects(ctx context.Context) (jetstream.Stream, []string, error) {
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := w.js.Stream(ictx, w.cfg.Names.EventsStream())
	if err != nil {
		return nil, nil, fmt.Errorf("stream %s: %w", w.cfg.Names.EventsStream(), err)
	}
	info, err := s.Info(ictx, jetstream.WithSubjectFilter(w.cfg.Names.EventsWildcard()))
	if err != nil {
		return nil, nil, fmt.Errorf("subjects of stream %s: %w", w.cfg.Names.EventsStream(), err)
	}
	var out []string
	for subject, n := range info.State.Subjects {
		if _, known := w.cfg.Names.EventKindOf(subject); !known && n > 0 {
			out = append(out, subject)
		}
	}
	slices.Sort(out)
	return s, out, nil
}

// deadLetterUnknown settles one event on an unknown subject.
func (w *Worker) deadLetterUnknown(ctx context.Context, m jetstream.Msg) {
	h := w.heldOf(queue.UnknownKind, m)
	if h == nil {
		return
	}
	o := Outcome{
		Action:    DeadLetter,
		ErrorKind: deadletter.ErrorKindUnknownSubject,
		Err: fmt.Errorf("subject %s is no event kind's (want one of %s)",
			m.Subject(), strings.Join(w.cfg.Names.EventSubjects(), ", ")),
	}
	w.settle(ctx, h, request{kind: queue.UnknownKind}, o)
}
