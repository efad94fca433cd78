package responses

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/cgapi/flow"
	"github.com/cgworker/cgworker/queue"
)

// Headers of every published response.
const (
	// HeaderNumber carries the response's number_customergauge.
	HeaderNumber = "CG-Response-Number"
	// HeaderGeneration carries the reset count under which the response was
	// published, so the skip rule ignores messages of earlier generations.
	HeaderGeneration = "CG-Sync-Generation"
)

// ErrConcurrentWriter is returned when a publish found that something else
// appended to the responses subject during the pass. Nothing was published
// twice; the pass stops and the next one resumes from the stream's tail.
var ErrConcurrentWriter = errors.New("responses: another writer appended to the responses subject")

// MsgID is the Nats-Msg-Id of response number after resets resets.
func MsgID(number int64, resets int) string {
	id := "cg-response-" + strconv.FormatInt(number, 10)
	if resets > 0 {
		id += "-r" + strconv.Itoa(resets)
	}
	return id
}

// tail is the last message on the responses subject.
type tail struct {
	seq    uint64 // stream sequence, 0 when the subject is empty
	ours   bool   // it carries a response number
	number int64
	gen    int
}

func (p *pass) readTail(ctx context.Context) (tail, error) {
	subject := p.s.cfg.Names.ResponsesSubject()
	ctx, cancel := context.WithTimeout(ctx, p.s.cfg.publishTimeout)
	defer cancel()
	m, err := p.stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return tail{}, nil
	}
	if err != nil {
		return tail{}, fmt.Errorf("responses: read the last message on %s: %w", subject, err)
	}
	t := tail{seq: m.Sequence}
	if n, err := strconv.ParseInt(m.Header.Get(HeaderNumber), 10, 64); err == nil {
		t.ours, t.number = true, n
		// A message without a generation predates resets: generation 0.
		t.gen, _ = strconv.Atoi(m.Header.Get(HeaderGeneration))
	}
	return t, nil
}

// publish appends one response, expecting the subject's last sequence to be
// the one this pass saw last, so two writers can never interleave. dup
// reports that the stream already held the message id.
func (p *pass) publish(ctx context.Context, raw []byte, n int64) (dup bool, err error) {
	s := p.s
	gen := p.st.Resets
	msg := &nats.Msg{Subject: s.cfg.Names.ResponsesSubject(), Data: raw, Header: nats.Header{}}
	msg.Header.Set(HeaderNumber, strconv.FormatInt(n, 10))
	msg.Header.Set(HeaderGeneration, strconv.Itoa(gen))
	// W3C trace context whatever the globals are, as the worker's dead
	// letters and API calls carry it.
	propagation.TraceContext{}.Inject(ctx, queue.HeaderCarrier(msg.Header))
	id := MsgID(n, gen)

	retry := p.retry()
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, s.cfg.publishTimeout)
		ack, err := s.js.PublishMsg(pctx, msg,
			jetstream.WithMsgID(id),
			jetstream.WithExpectStream(s.cfg.Names.ResponsesStream()),
			jetstream.WithExpectLastSequencePerSubject(p.lastSeq))
		cancel()
		if err == nil {
			if ack.Duplicate && attempt > 1 {
				// Our own earlier attempt was stored and its ack lost:
				// the message id caught the retry. It is the tail now.
				p.lastSeq = max(p.lastSeq, ack.Sequence)
				return false, nil
			}
			if ack.Duplicate {
				s.log.Warn("response already in the stream under its message id; not published again",
					"number", n, "msg_id", id, "seq", ack.Sequence)
				return true, nil
			}
			p.lastSeq = ack.Sequence
			return false, nil
		}
		if ctx.Err() != nil {
			return false, context.Cause(ctx)
		}
		if queue.WrongLastSequence(err) && attempt > 1 {
			// An earlier attempt may have been stored after all (sent
			// from the client's reconnect buffer once the server was
			// back): then it is the tail, and only its ack was lost.
			if t, terr := p.readTail(ctx); terr == nil && t.ours && t.gen == gen && t.number == n {
				p.lastSeq = t.seq
				return false, nil
			}
		}
		if queue.WrongLastSequence(err) {
			return false, fmt.Errorf("%w (publishing number %d after sequence %d): %v", ErrConcurrentWriter, n, p.lastSeq, err)
		}
		// The publish may or may not have been stored (a lost ack, a
		// restarting server): the subject's tail tells which.
		wait, ok := retry.Next(0)
		if !ok {
			return false, fmt.Errorf("responses: publish number %d: %w", n, err)
		}
		s.log.Warn("publish failed; retrying", "number", n, "error", err, "retry_in", wait)
		if err := flow.Sleep(ctx, wait); err != nil {
			return false, err
		}
		t, terr := p.readTail(ctx)
		if terr != nil {
			continue
		}
		if t.seq == p.lastSeq {
			continue // not stored: publish again
		}
		if t.ours && t.gen == gen && t.number == n {
			p.lastSeq = t.seq
			return false, nil // it was stored; only the ack was lost
		}
		return false, fmt.Errorf("%w (sequence %d appeared while publishing number %d)", ErrConcurrentWriter, t.seq, n)
	}
}

// fetch gets one page through the sync endpoint's flow controller,
// retrying API errors with the shared schedule (a 429's Retry-After as the
// floor) within MaxElapsed. While the endpoint's breaker is open the fetch
// waits at it, and that wait does not spend the budget.
func (p *pass) fetch(ctx context.Context, cursor string) (cgapi.SyncPage, error) {
	s := p.s
	q := cgapi.SyncQuery{PerPage: s.cfg.PerPage, Cursor: cursor, With: s.cfg.With, Filter: s.cfg.Filter}
	var retry *flow.Retry
	for {
		var pg cgapi.SyncPage
		res := s.cfg.Flow.Do(flow.Call{Wait: ctx, Ctx: ctx}, func(ctx context.Context) error {
			var err error
			pg, err = s.client.SyncResponses(ctx, q)
			return err
		})
		if retry != nil {
			retry.Excuse(res.Waited)
		}
		err := res.Err
		if err == nil {
			return pg, nil
		}
		if ctx.Err() != nil {
			return cgapi.SyncPage{}, context.Cause(ctx)
		}
		if !cgapi.Retryable(err) {
			return cgapi.SyncPage{}, fmt.Errorf("responses: fetch page at cursor %q: %w", cursor, err)
		}
		if retry == nil {
			retry = p.retry()
		}
		if res.Open {
			continue // wait at the breaker
		}
		wait, ok := retry.Next(cgapi.RetryAfterOf(err))
		if !ok {
			return cgapi.SyncPage{}, fmt.Errorf("responses: fetch page at cursor %q: gave up after %s: %w",
				cursor, retry.Spent().Round(time.Millisecond), err)
		}
		s.log.Warn("fetching responses failed; retrying", "cursor", cursor, "reason", flow.ReasonOf(err), "error", err, "retry_in", wait)
		if err := flow.Sleep(ctx, wait); err != nil {
			return cgapi.SyncPage{}, err
		}
	}
}

// retry returns the retry schedule of one page request or one publish.
func (p *pass) retry() *flow.Retry {
	return flow.NewRetry(p.s.cfg.retryInitial, time.Minute, p.s.cfg.MaxElapsed)
}
