package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/natstest"
	"github.com/cgworker/cgworker/worker/proctest"
)

// TestPublishIsSafeToRerun: every line carries a message id derived from
// the file, its line and its content, so publishing the same file again
// stores nothing twice and says so; --id-prefix gives PREFIX-LINE ids.
func TestPublishIsSafeToRerun(t *testing.T) {
	t.Parallel()
	ns := natstest.NewServer(t)
	vars := map[string]string{"NATS_URL": ns.URL}
	file := filepath.Join(t.TempDir(), "events.ndjson")
	lines := []string{`{"account":"A","type":"T","source":"S"}`, `{"account":"B","type":"T","source":"S"}`, `{"account":"A","type":"T","source":"S"}`}
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	first := runCLI(context.Background(), vars, "", "publish", "activity", file)
	if first.code != exitOK || first.stdout.String() != "published 3\n" || strings.Contains(first.stderr.String(), "duplicates") {
		t.Fatalf("first run: exit %d, stdout %q, stderr %q", first.code, first.stdout, first.stderr)
	}
	again := runCLI(context.Background(), vars, "", "publish", "--timeout", "5s", "activity", file)
	if again.code != exitOK || again.stdout.String() != "published 0\n" || !strings.Contains(again.stderr.String(), "3 duplicates") {
		t.Fatalf("second run: exit %d, stdout %q, stderr %q", again.code, again.stdout, again.stderr)
	}
	// The same lines from standard input are another input.
	piped := runCLI(context.Background(), vars, strings.Join(lines, "\n"), "publish", "activity", "--id-prefix", "batch7")
	if piped.code != exitOK || piped.stdout.String() != "published 3\n" {
		t.Fatalf("stdin with --id-prefix: exit %d, stdout %q, stderr %q", piped.code, piped.stdout, piped.stderr)
	}
	msgs := natstest.Messages(t, ns.JetStream(t), "CG_EVENTS")
	if len(msgs) != 6 {
		t.Fatalf("the stream holds %d messages, want 6", len(msgs))
	}
	abs, _ := filepath.Abs(file)
	in := queue.StreamInput{Subject: "cg.events.activity", Source: abs}
	for i, m := range msgs {
		want := fmt.Sprintf("batch7-%d", i-2)
		if i < 3 {
			want = in.MsgID(i+1, []byte(lines[i]))
		}
		if got := m.Header.Get(jetstream.MsgIDHeader); got != want {
			t.Errorf("message %d: Nats-Msg-Id %q, want %q", i, got, want)
		}
	}
	if msgs[0].Header.Get(jetstream.MsgIDHeader) == msgs[2].Header.Get(jetstream.MsgIDHeader) {
		t.Error("two lines with the same content got the same message id")
	}
}

// TestPublishEndsWhenTheServerGoesAway: a publish whose acknowledgement
// never comes ends the command within --timeout, exit 1, naming the line;
// so does a server that is not there at all.
func TestPublishEndsWhenTheServerGoesAway(t *testing.T) {
	t.Parallel()
	ns := natstest.NewServer(t)
	js := ns.JetStream(t)
	pr, pw := io.Pipe()
	t.Cleanup(func() { _ = pw.Close() })
	inv := invocation{stdout: &proctest.Buffer{}, stderr: &proctest.Buffer{}}
	e := env{stdin: pr, stdout: inv.stdout, stderr: inv.stderr,
		lookupEnv: func(k string) (string, bool) { v, ok := map[string]string{"NATS_URL": ns.URL}[k]; return v, ok }}
	done := make(chan int, 1)
	go func() { done <- cli(context.Background(), []string{"publish", "activity", "--timeout", "1s"}, e) }()

	fmt.Fprintln(pw, `{"n":1}`)
	proctest.WaitFor(t, 10*time.Second, 20*time.Millisecond, "the first line stored", func() (bool, string) {
		s, err := js.Stream(context.Background(), "CG_EVENTS")
		if err != nil {
			return false, err.Error()
		}
		info, err := s.Info(context.Background())
		if err != nil {
			return false, err.Error()
		}
		return info.State.Msgs == 1, fmt.Sprint(info.State.Msgs, " messages")
	})
	ns.Stop()
	start := time.Now()
	fmt.Fprintln(pw, `{"n":2}`)
	select {
	case code := <-done:
		if code != exitFailure {
			t.Errorf("exit %d, want %d", code, exitFailure)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("publish still waiting 15s after the server went away, with --timeout 1s")
	}
	t.Logf("ended %s after the server went away: %s", time.Since(start), inv.stderr)
	// Line 1 was stored; its acknowledgement is almost always read before
	// the server goes.
	switch stdout, stderr := inv.stdout.String(), inv.stderr.String(); {
	case stdout == "published 1\n":
		if !strings.Contains(stderr, "line 2") || !strings.Contains(stderr, "1 failed") {
			t.Errorf("stderr %q; want line 2 named and counted as failed", stderr)
		}
	case stdout == "published 0\n":
		if !strings.Contains(stderr, "line 1") || !strings.Contains(stderr, " failed") {
			t.Errorf("stderr %q; want line 1 named and counted as failed", stderr)
		}
	default:
		t.Errorf("stdout %q, stderr %q", stdout, stderr)
	}

	// Nobody listening at all.
	start = time.Now()
	gone := runCLI(context.Background(), map[string]string{"NATS_URL": ns.URL}, `{"n":3}`, "publish", "activity", "--timeout", "1s")
	if gone.code != exitFailure || time.Since(start) > 10*time.Second {
		t.Errorf("stopped server: exit %d after %s, stderr %q", gone.code, time.Since(start), gone.stderr)
	}
}
