package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/natstest"
	"github.com/cgworker/cgworker/schemas"
)

// statusCLI runs one command in process (main_test.go's runCLI) and
// returns its exit code and output.
func statusCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inv := runCLI(ctx, nil, "", args...)
	return inv.code, inv.stdout.String() + inv.stderr.String()
}

// `cgworker status` exits 0 on a healthy system and 1, with a line saying
// why, once a dead letter arrives; --json prints the same counts.
func TestStatusCommandExitCodes(t *testing.T) {
	t.Parallel()
	srv := natstest.NewServer(t)
	js := srv.JetStream(t)
	ctx := context.Background()
	qcfg := queue.StreamConfig{Names: queue.NewNames("cg")}
	if err := queue.EnsureStreams(ctx, js, qcfg); err != nil {
		t.Fatal(err)
	}
	if _, err := queue.EnsureConsumer(ctx, js, qcfg, schemas.Activity); err != nil {
		t.Fatal(err)
	}
	natstest.Publish(t, js, "cg.events.activity", []byte(`{}`), 4)

	// The sync is off here (--sync-interval 0): only the consumers and the
	// dead letters count.
	code, out := statusCLI(t, "status", "--nats-url", srv.URL, "--sync-interval", "0")
	if code != exitOK || !strings.Contains(out, "healthy") {
		t.Fatalf("healthy system: exit %d, want 0:\n%s", code, out)
	}
	if !strings.Contains(out, "cgworker-activity") || !strings.Contains(out, "  4  ") {
		t.Errorf("report lacks the activity consumer's 4 pending:\n%s", out)
	}

	msg := nats.NewMsg("cg.dlq.activity")
	msg.Header.Set("CG-Error-Kind", "api-422")
	msg.Header.Set("CG-Failed-At", time.Now().UTC().Format(time.RFC3339))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	code, out = statusCLI(t, "status", "--nats-url", srv.URL, "--sync-interval", "0")
	if code != exitFailure || !strings.Contains(out, "ATTENTION: 1 activity dead letters of error kind api-422") {
		t.Fatalf("a recent dead letter: exit %d, want 1 with a line naming it:\n%s", code, out)
	}
	code, out = statusCLI(t, "status", "--json", "--nats-url", srv.URL, "--sync-interval", "0")
	if code != exitFailure || !strings.Contains(out, `"pending":4`) || !strings.Contains(out, `"error_kind":"api-422"`) {
		t.Errorf("--json: exit %d, want 1 with the counts:\n%s", code, out)
	}
}

// `cgworker healthcheck` exits 0 while /readyz answers 200 and 1 otherwise.
func TestHealthcheckCommand(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("up") == "" {
			http.Error(w, "not ready: NATS disconnected", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	}))
	t.Cleanup(srv.Close)
	if code, out := statusCLI(t, "healthcheck", "--url", srv.URL+"/readyz?up=1"); code != exitOK {
		t.Errorf("ready: exit %d, want 0:\n%s", code, out)
	}
	if code, out := statusCLI(t, "healthcheck", "--url", srv.URL+"/readyz"); code != exitFailure || !strings.Contains(out, "NATS disconnected") {
		t.Errorf("not ready: exit %d, want 1 with the reason:\n%s", code, out)
	}
	if code, out := statusCLI(t, "healthcheck", "--http-addr", ":0"); code != exitUsage {
		t.Errorf("no fixed port: exit %d, want 2:\n%s", code, out)
	}
}
