// Package embedded runs a real nats-server with JetStream inside the
// process, for `cgworker dev` and for tests.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultMaxPayload is the max_payload of an embedded server (8 MiB): room
// for the API's 2 MiB bodies plus dead-letter headers (README, "Subjects, streams, consumers").
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
		NoLog:                  true, // logging goes through serverLog only
		DisableJetStreamBanner: true,
	}
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	// Always installed: it keeps the server's fatal errors for our own
	// error, and forwards everything to opts.Logger when there is one.
	logs := &serverLog{l: opts.Logger}
	ns.SetLoggerV2(logs, false, false, false)
	fail := func(what string) (*Server, error) {
		ns.Shutdown()
		ns.WaitForShutdown()
		if f := logs.fatal(); f != "" {
			what += ": " + f
		}
		return nil, errors.New("embedded nats: " + what)
	}
	ns.Start()
	// Start opens the client listener before it returns, so a taken port
	// shows at once rather than after readyTimeout.
	if ns.Addr() == nil {
		return fail("cannot listen on " + net.JoinHostPort(host, strconv.Itoa(opts.Port)))
	}
	if !ns.ReadyForConnections(readyTimeout) {
		return fail(fmt.Sprintf("not ready for connections after %s", readyTimeout))
	}
	if !ns.JetStreamEnabled() {
		return fail("JetStream failed to start")
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

// serverLog forwards nats-server's printf-style logger to slog (when set)
// and remembers the last fatal error.
type serverLog struct {
	l *slog.Logger

	mu        sync.Mutex
	lastFatal string
}

func (a *serverLog) fatal() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastFatal
}

func (a *serverLog) log(level slog.Level, format string, v []any) {
	if a.l != nil {
		a.l.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

func (a *serverLog) Noticef(format string, v ...any) { a.log(slog.LevelInfo, format, v) }
func (a *serverLog) Warnf(format string, v ...any)   { a.log(slog.LevelWarn, format, v) }
func (a *serverLog) Errorf(format string, v ...any)  { a.log(slog.LevelError, format, v) }
func (a *serverLog) Debugf(format string, v ...any)  { a.log(slog.LevelDebug, format, v) }
func (a *serverLog) Tracef(format string, v ...any)  { a.log(slog.LevelDebug, format, v) }

// Fatalf logs at error level; the embedding process decides what is fatal.
func (a *serverLog) Fatalf(format string, v ...any) {
	a.mu.Lock()
	a.lastFatal = fmt.Sprintf(format, v...)
	a.mu.Unlock()
	a.log(slog.LevelError, format, v)
}
