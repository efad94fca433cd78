package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/schemas"
)

// held is a message this replica is working on.
type held struct {
	msg       jetstream.Msg
	meta      *jetstream.MsgMetadata
	kind      schemas.Kind
	seq       uint64 // stream sequence
	delivered uint64 // delivery count

	since time.Time // when it was taken, or last reported in progress

	// putCtx is what its PUTs follow: its handler's child of the worker's
	// putCtx.
	putCtx context.Context

	// w and detached: see Wait.
	w        *Worker
	detached bool
}

// Wait is called (as a flow.Waiter) when the message is about to wait for
// its API endpoint: breaker open, rate limit, concurrency limit. It gives
// its handler and slot to the others first, so an activities outage never
// stalls records (README, "When the API is in trouble"): a new handler
// takes this one's place, and this goroutine ends with the message.
func (h *held) Wait() {
	if h.detached {
		return
	}
	h.detached = true
	h.w.handlers.Add(1)
	go h.w.handler()
	h.w.slots.release(1)
}

// inProgress tells the server, every third of the ack wait, that each held
// message is still being worked on, so a message waiting out a backoff or a
// slow PUT is not redelivered to another replica. One ticker serves every
// held message: no goroutine or timer per message on the hot path.
type inProgress struct {
	ackWait time.Duration
	log     *slog.Logger

	// held is the set of held messages (*held -> struct{}). A sync.Map,
	// not a map under a mutex: every handler adds and removes one entry
	// per event, each its own, and one lock for all of them was contended
	// at full load.
	held sync.Map
}

func newInProgress(ackWait time.Duration, log *slog.Logger) *inProgress {
	return &inProgress{ackWait: ackWait, log: log}
}

func (p *inProgress) add(h *held) {
	h.since = time.Now()
	p.held.Store(h, struct{}{})
}

func (p *inProgress) remove(h *held) { p.held.Delete(h) }

// run ticks until ctx is done. A message is reported once it has been held
// a third of the ack wait since it was taken or last reported; the ticker
// runs at a sixth, so no message goes longer than half the ack wait
// unreported.
func (p *inProgress) run(ctx context.Context) {
	every := p.ackWait / 3
	t := time.NewTicker(max(p.ackWait/6, 10*time.Millisecond))
	defer t.Stop()
	var due []*held
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due = due[:0]
			p.held.Range(func(k, _ any) bool {
				// since is the ticker's alone once the message is added.
				if h := k.(*held); now.Sub(h.since) >= every {
					h.since = now
					due = append(due, h)
				}
				return true
			})
			for _, h := range due {
				if err := h.msg.InProgress(); err != nil {
					p.log.Debug("in-progress not sent", "seq", h.seq, "error", err)
				}
			}
		}
	}
}
