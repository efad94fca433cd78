// Package natstest starts an embedded JetStream server for a test in one
// line, like net/http/httptest.
package natstest

import (
	"sync"
	"testing"

	"github.com/cgworker/cgworker/queue/embedded"
)

// Server is an embedded nats-server owned by a test.
type Server struct {
	URL      string // nats://127.0.0.1:PORT, stable across Restart
	StoreDir string

	mu   sync.Mutex
	srv  *embedded.Server // nil while stopped
	port int
}

// NewServer starts a server with JetStream in a temp dir on a random
// loopback port; it is shut down when the test ends.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{StoreDir: tb.TempDir()}
	srv, err := embedded.Start(embedded.Options{StoreDir: s.StoreDir, Port: -1})
	if err != nil {
		tb.Fatalf("natstest: %v", err)
	}
	s.srv, s.port, s.URL = srv, srv.Port(), srv.URL()
	// Registered after TempDir's cleanup, so it runs first: the server lets
	// go of the store before the directory is removed.
	tb.Cleanup(s.Stop)
	return s
}

// Restart shuts the server down and starts it again on the same port with
// the same store, as a NATS restart in production.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	s.Start(tb)
}

// Stop shuts the server down (Start brings it back). Stopping a stopped
// server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv = nil
	}
}

// Start starts a stopped server again on the same port and store. Starting
// a running server does nothing.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return
	}
	srv, err := embedded.Start(embedded.Options{StoreDir: s.StoreDir, Port: s.port})
	if err != nil {
		tb.Fatalf("natstest: restart on port %d: %v", s.port, err)
	}
	s.srv = srv
}
