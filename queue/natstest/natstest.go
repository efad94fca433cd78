// Package natstest starts an embedded JetStream server for a test in one
// line, like net/http/httptest.
package natstest

import "testing"

// Server is an embedded nats-server owned by a test.
type Server struct {
	URL      string // nats://127.0.0.1:PORT, stable across Restart
	StoreDir string
}

// NewServer starts a server with JetStream in a temp dir on a random
// loopback port; it is shut down when the test ends.
func NewServer(tb testing.TB) *Server { panic("TODO") }

// Restart shuts the server down and starts it again on the same port with
// the same store, as a NATS restart in production.
func (s *Server) Restart(tb testing.TB) { panic("TODO") }

// Stop shuts the server down (Start brings it back).
func (s *Server) Stop() { panic("TODO") }

// Start starts a stopped server again on the same port and store.
func (s *Server) Start(tb testing.TB) { panic("TODO") }
