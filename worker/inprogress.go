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

	// shards hold the set of held messages, by stream sequence. Every
	// handler adds and removes one entry per event, each its own: one map
	// under one lock was contended at full load, and a sync.Map allocates
	// per entry and locks its shallow trie's nodes just as often.
	shards [heldShards]heldShard
}

// heldShards spreads the handlers over as many locks; consecutive stream
// sequences land on different ones.
const heldShards = 32

type heldShard struct {
	mu   sync.Mutex
	held map[*held]struct{}
	_    [48]byte // 64 bytes a shard: no two shards' locks share a cache line
}

func newInProgress(ackWait time.Duration, log *slog.Logger) *inProgress {
	p := &inProgress{ackWait: ackWait, log: log}
	for i := range p.shards {
		p.shards[i].held = make(map[*held]struct{})
	}
	return p
}

func (p *inProgress) shard(h *held) *heldShard { return &p.shards[h.seq%heldShards] }

func (p *inProgress) add(h *held) {
	h.since = time.Now()
	s := p.shard(h)
	s.mu.Lock()
	s.held[h] = struct{}{}
	s.mu.Unlock()
}

func (p *inProgress) remove(h *held) {
	s := p.shard(h)
	s.mu.Lock()
	delete(s.held, h)
	s.mu.Unlock()
}

// len is how many messages are held.
func (p *inProgress) len() int64 {
	var n int
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		n += len(s.held)
		s.mu.Unlock()
	}
	return int64(n)
}

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
			for i := range p.shards {
				s := &p.shards[i]
				s.mu.Lock()
				for h := range s.held {
					// since is the ticker's alone once the message is added.
					if now.Sub(h.since) >= every {
						h.since = now
						due = append(due, h)
					}
				}
				s.mu.Unlock()
			}
			for _, h := range due {
				if err := h.msg.InProgress(); err != nil {
					p.log.Debug("in-progress not sent", "seq", h.seq, "error", err)
				}
			}
		}
	}
}
