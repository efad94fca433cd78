// Package health is the readiness of a replica, in one place that the
// worker, the sync and the flow controllers report to without reaching
// into each other (README, "Operating it").
package health

import (
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Health is the readiness of a replica (README, "Operating it"): ready while
// NATS is connected, the consumers (or the sync) are bound, no API breaker
// is open, and the process is not draining. A nil *Health ignores every
// report, so components need not check.
type Health struct {
	wantConsumers bool
	wantSync      bool

	natsDown  atomic.Bool
	consumers atomic.Bool
	// unbound are the consumers found gone and not bound again, by name.
	mu       sync.Mutex
	unbound  map[string]bool
	sync     atomic.Bool
	draining atomic.Bool
	api      atomic.Pointer[func() error]
}

// New returns the health of a replica that consumes events, runs the
// sync, or both.
func New(consume, sync bool) *Health {
	return &Health{wantConsumers: consume, wantSync: sync && !consume}
}

// SetNATS records whether the NATS connection is up.
func (h *Health) SetNATS(connected bool) {
	if h != nil {
		h.natsDown.Store(!connected)
	}
}

// SetSyncBound records that the sync has its bucket and stream.
func (h *Health) SetSyncBound(bound bool) {
	if h != nil {
		h.sync.Store(bound)
	}
}

// SetConsumers records whether the worker's consumers are bound, all of
// them at start-up.
func (h *Health) SetConsumers(bound bool) {
	if h != nil {
		h.consumers.Store(bound)
	}
}

// SetConsumer records whether one consumer, found gone, is bound again. The
// replica is not ready while any is not: one kind's pulls succeeding do
// not hide another kind's consumer that cannot be bound.
func (h *Health) SetConsumer(name string, bound bool) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if bound {
		delete(h.unbound, name)
	} else {
		if h.unbound == nil {
			h.unbound = map[string]bool{}
		}
		h.unbound[name] = true
	}
}

// unboundConsumers names the consumers SetConsumer reported unbound, ""
// when there are none.
func (h *Health) unboundConsumers() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(slices.Sorted(maps.Keys(h.unbound)), ", ")
}

// SetDraining marks the process as shutting down.
func (h *Health) SetDraining() {
	if h != nil {
		h.draining.Store(true)
	}
}

// WatchAPI makes readiness ask unavailable, the replica's flow
// controllers (flow.Set.Unavailable): not ready while an API breaker is
// open, naming the endpoint and since when.
func (h *Health) WatchAPI(unavailable func() error) {
	if h != nil {
		h.api.Store(&unavailable)
	}
}

// Ready returns nil when the replica is ready, else the reason it is not.
func (h *Health) Ready() error {
	if h == nil {
		return nil
	}
	switch {
	case h.draining.Load():
		return errors.New("draining")
	case h.natsDown.Load():
		return errors.New("NATS disconnected")
	case h.wantConsumers && !h.consumers.Load():
		return errors.New("consumers not bound")
	case h.wantSync && !h.sync.Load():
		return errors.New("sync not bound")
	}
	if names := h.unboundConsumers(); h.wantConsumers && names != "" {
		return errors.New("consumer gone and not bound again: " + names)
	}
	if p := h.api.Load(); p != nil {
		return (*p)()
	}
	return nil
}

// Handler serves /healthz, /readyz and, when metrics is not nil, /metrics.
func (h *Health) Handler(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := h.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	return mux
}
