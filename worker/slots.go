package worker

import (
	"context"
	"sync"
)

// slotPool counts a replica's slots: one per message held, in a handler or
// in the look-ahead queue (DESIGN.md, "Pulling and settling"). A pull takes
// the slots of a fetch at once, after waiting until enough are free; a
// handler gives its slot back when its message is settled.
//
// It is not a channel used as a semaphore because a pull waiting for
// several slots would then take them one at a time, and be woken once per
// message settled: a goroutine switch per event for nothing. Here a waiting
// pull is woken once, when its minimum is free.
type slotPool struct {
	size int // slots in all

	mu      sync.Mutex
	free    int
	waiters []*slotWaiter
}

// slotWaiter is a pull waiting for at least min free slots.
type slotWaiter struct {
	min   int
	ready chan struct{} // closed when min slots are free
}

func newSlotPool(n int) *slotPool { return &slotPool{size: n, free: n} }

// acquire waits until at least least slots are free, then takes as many as
// are free, at most most, and returns how many. It returns 0 when ctx is
// done first.
func (s *slotPool) acquire(ctx context.Context, least, most int) int {
	var w *slotWaiter
	for {
		s.mu.Lock()
		if s.free >= least {
			k := min(s.free, most)
			s.free -= k
			s.mu.Unlock()
			return k
		}
		if w == nil {
			w = &slotWaiter{min: least}
		}
		w.ready = make(chan struct{})
		s.waiters = append(s.waiters, w)
		s.mu.Unlock()
		select {
		case <-w.ready:
			// Another pull may have taken them since: look again.
		case <-ctx.Done():
			s.mu.Lock()
			s.remove(w)
			s.mu.Unlock()
			return 0
		}
	}
}

// release gives n slots back and wakes the pulls whose minimum is free.
func (s *slotPool) release(n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.free += n
	for i := 0; i < len(s.waiters); {
		if w := s.waiters[i]; s.free >= w.min {
			close(w.ready)
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			continue
		}
		i++
	}
	s.mu.Unlock()
}

// remove drops w from the waiters if it is there; s.mu is held.
func (s *slotPool) remove(w *slotWaiter) {
	for i, x := range s.waiters {
		if x == w {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			return
		}
	}
}
