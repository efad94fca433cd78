// Package embedded runs a real nats-server with JetStream inside the
// process, for `cgworker dev` and for tests.
package embedded

// Options configure an embedded server.
type Options struct {
	StoreDir   string // JetStream store directory (required)
	Host       string // default 127.0.0.1
	Port       int    // 0 or -1 picks a free port
	MaxPayload int32  // bytes; 0 means 8 MiB
}

// Server is a running embedded nats-server.
type Server struct{}

// Start starts a server and waits until it accepts connections.
func Start(opts Options) (*Server, error) { panic("TODO") }

// URL is the nats:// URL clients connect to.
func (s *Server) URL() string { panic("TODO") }

// Shutdown stops the server and waits until it has stopped.
func (s *Server) Shutdown() { panic("TODO") }
