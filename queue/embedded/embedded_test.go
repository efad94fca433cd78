package embedded_test

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/cgworker/cgworker/queue/embedded"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestStart(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	srv, err := embedded.Start(embedded.Options{StoreDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	if srv.Port() <= 0 || srv.URL() != "nats://127.0.0.1:"+strconv.Itoa(srv.Port()) {
		t.Errorf("port %d url %s", srv.Port(), srv.URL())
	}
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if got := nc.MaxPayload(); got != embedded.DefaultMaxPayload {
		t.Errorf("max payload %d, want 8 MiB", got)
	}
	if !strings.Contains(logs.String(), "Server is ready") {
		t.Errorf("logger got nothing useful: %q", logs.String())
	}
}

func TestStartNeedsStoreDir(t *testing.T) {
	t.Parallel()
	if _, err := embedded.Start(embedded.Options{}); err == nil {
		t.Error("started without a store")
	}
}

func TestStartOnTakenPortFails(t *testing.T) {
	t.Parallel()
	srv, err := embedded.Start(embedded.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	other, err := embedded.Start(embedded.Options{StoreDir: t.TempDir(), Port: srv.Port()})
	if err == nil {
		other.Shutdown()
		t.Fatal("second server on the same port started")
	}
	if !strings.Contains(err.Error(), "cannot listen") || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("err = %v", err)
	}
}
