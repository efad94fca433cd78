package worker

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

func (s *slotPool) waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiters)
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		runtime.Gosched()
	}
}

// TestSlotPool: a pull waits until its minimum is free, then takes what is
// free up to its maximum; it is woken once, not per slot given back; a
// cancelled wait takes nothing; and slots are never over- or under-counted
// under concurrent use.
func TestSlotPool(t *testing.T) {
	t.Parallel()
	p := newSlotPool(10)
	if k := p.acquire(context.Background(), 1, 4); k != 4 {
		t.Fatalf("took %d, want 4 (the maximum)", k)
	}
	if k := p.acquire(context.Background(), 1, 64); k != 6 {
		t.Fatalf("took %d, want the 6 free", k)
	}

	got := make(chan int)
	go func() { got <- p.acquire(context.Background(), 3, 64) }()
	waitUntil(t, func() bool { return p.waiting() == 1 })
	for range 2 {
		p.release(1)
	}
	if p.waiting() != 1 {
		t.Fatal("woken with 2 free, want a wait for 3")
	}
	p.release(1)
	select {
	case k := <-got:
		if k != 3 {
			t.Fatalf("took %d, want 3", k)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not woken with its minimum free")
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() { got <- p.acquire(ctx, 5, 5) }()
	cancel()
	if k := <-got; k != 0 {
		t.Fatalf("cancelled wait took %d", k)
	}
	p.release(10)
	if k := p.acquire(context.Background(), 1, 100); k != 10 {
		t.Fatalf("free after all given back: %d, want 10", k)
	}
	p.release(10)

	// Concurrent pulls and handlers: the count ends where it began.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				k := p.acquire(context.Background(), 2, 3)
				p.release(k)
			}
		}()
	}
	wg.Wait()
	if k := p.acquire(context.Background(), 10, 100); k != 10 {
		t.Fatalf("free after concurrent use: %d, want 10", k)
	}
}
