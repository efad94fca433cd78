package status_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cgworker/cgworker/worker/status"
)

func TestReadyURL(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		":8080":          "http://127.0.0.1:8080/readyz",
		"0.0.0.0:9090":   "http://127.0.0.1:9090/readyz",
		"[::]:8080":      "http://127.0.0.1:8080/readyz",
		"10.1.2.3:8080":  "http://10.1.2.3:8080/readyz",
		"localhost:8080": "http://localhost:8080/readyz",
	} {
		if got, err := status.ReadyURL(addr); err != nil || got != want {
			t.Errorf("ReadyURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	for _, bad := range []string{"", ":0", "8080"} {
		if got, err := status.ReadyURL(bad); err == nil {
			t.Errorf("ReadyURL(%q) = %q, want an error", bad, got)
		}
	}
}

// CheckReady passes on 200 only: a 503 (with the replica's reason) and a
// closed port both fail.
func TestCheckReady(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready: draining", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 3 * time.Second}

	if err := status.CheckReady(ctx, client, srv.URL+"/readyz"); err == nil || !strings.Contains(err.Error(), "draining") {
		t.Errorf("unready replica: %v, want an error naming the reason", err)
	}
	ready.Store(true)
	if err := status.CheckReady(ctx, client, srv.URL+"/readyz"); err != nil {
		t.Errorf("ready replica: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/readyz"
	ln.Close()
	if err := status.CheckReady(ctx, client, closed); err == nil {
		t.Error("nothing listening: no error")
	}
}
