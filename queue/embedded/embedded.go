// Package embedded runs a real nats-server with JetStream inside the
// process, for `cgworker dev` and for tests.
package embedded

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultMaxPayload is the max_payload of an embedded server (8 MiB): room
// for the API's 2 MiB bodies plus dead-letter headers (CONTRACT.md section 3).
const DefaultMaxPayload = 8 << 20

// readyTimeout bounds the wait for the listener after Start.
const readyTimeout = 10 * time.Second

// Options configure an embedded server.
type Options struct {
	StoreDir   string // JetStream store directory (required)
	Host       string // default 127.0.0.1
	Port       int    // 0 or -1 picks a free port
	MaxPayload int32  // bytes; 0 means 8 MiB
	// Logger, when set, receives the server's own log lines (notices at
	// info, warnings, errors). Nil keeps the server silent.
	Logger *slog.Logger
}

// Server is a running embedded nats-server.
type Server struct {
	ns   *server.Server
	host string
	port int
}

// Start starts a server and waits until it accepts connections.
func Start(opts Options) (*Server, error) {
	if opts.StoreDir == "" {
		return nil, errors.New("embedded nats: StoreDir is required")
	}
	host := opts.Host
	if host == "" {
		host = "127.0.0.1"
	}
	port := opts.Port
	if port == 0 {
		// 0 means 4222 to nats-server; we promise a free port instead.
		port = server.RANDOM_PORT
	}
	maxPayload := opts.MaxPayload
	if maxPayload == 0 {
		maxPayload = DefaultMaxPayload
	}
	sopts := &server.Options{
		Host:                   host,
		Port:                   port,
		MaxPayload:             maxPayload,
		JetStream:              true,
		StoreDir:               opts.StoreDir,
		NoSigs:                 true, // the embedding process owns signals
		NoLog:                  opts.Logger == nil,
		DisableJetStreamBanner: true,
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if opts.Logger != nil {
		ns.SetLoggerV2(slogAdapter{opts.Logger}, false, false, false)
	}
	ns.Start()
	if !ns.ReadyForConnections(readyTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats: not ready for connections on %s after %s",
			net.JoinHostPort(host, strconv.Itoa(opts.Port)), readyTimeout)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New("embedded nats: JetStream failed to start (see the server log)")
	}
	s := &Server{ns: ns, host: host}
	if addr, ok := ns.Addr().(*net.TCPAddr); ok {
		s.port = addr.Port
	}
	return s, nil
}

// URL is the nats:// URL clients connect to.
func (s *Server) URL() string {
	return "nats://" + net.JoinHostPort(s.host, strconv.Itoa(s.port))
}

// Port is the bound client port, so a restart can reuse it.
func (s *Server) Port() int { return s.port }

// Shutdown stops the server and waits until it has stopped.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// slogAdapter forwards nats-server's printf-style logger to slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Noticef(format string, v ...any) { a.l.Info(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.l.Warn(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.l.Error(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
func (a slogAdapter) Tracef(format string, v ...any)  { a.l.Debug(fmt.Sprintf(format, v...)) }
