package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cgworker/cgworker/cgapi/cgapitest"
	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue/natstest"
	"github.com/cgworker/cgworker/worker/proctest"
)

// invocation runs the CLI in-process with the given environment only.
type invocation struct {
	code           int
	stdout, stderr *proctest.Buffer
}

func runCLI(ctx context.Context, vars map[string]string, stdin string, args ...string) invocation {
	inv := invocation{stdout: &proctest.Buffer{}, stderr: &proctest.Buffer{}}
	e := env{
		stdin:  strings.NewReader(stdin),
		stdout: inv.stdout,
		stderr: inv.stderr,
		lookupEnv: func(k string) (string, bool) {
			v, ok := vars[k]
			return v, ok
		},
	}
	inv.code = cli(ctx, args, e)
	return inv
}

// apiEnv points the API settings at an emulator.
func apiEnv(emu *emulator.Server, secret string) map[string]string {
	return map[string]string{
		"CG_AUTH_URL": emu.URL + emulator.TokenPath, "CG_IMPORTS_URL": emu.URL, "CG_API_URL": emu.URL,
		"CG_CLIENT_ID": "dev", "CG_CLIENT_SECRET": secret,
	}
}

func TestBadSettingsStopStartUpNamingTheSetting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "contact.json"), []byte(`{"type": "object", "required": 5}`), 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"CG_REGION": "eu", "CG_CLIENT_ID": "id", "CG_CLIENT_SECRET": "very-secret-value", "CG_HTTP_ADDR": ""}
	cases := []struct {
		name  string
		vars  map[string]string
		args  []string
		wants string
	}{
		{"bad duration", map[string]string{"CG_ACK_WAIT": "soon"}, nil, "CG_ACK_WAIT"},
		{"flag wins and is named", nil, []string{"--ack-wait", "-3s"}, "CG_ACK_WAIT (--ack-wait)"},
		{"missing client id", map[string]string{"CG_CLIENT_ID": ""}, nil, "CG_CLIENT_ID"},
		{"unknown region", map[string]string{"CG_REGION": "mars"}, nil, "CG_REGION"},
		{"no region nor URLs", map[string]string{"CG_REGION": ""}, nil, "CG_REGION"},
		{"bad URL", map[string]string{"CG_API_URL": "ftp//nope"}, nil, "CG_API_URL"},
		{"concurrency", map[string]string{"CG_CONCURRENCY": "many"}, nil, "CG_CONCURRENCY"},
		{"rate limit", map[string]string{"CG_RATE_LIMIT": "-1"}, nil, "CG_RATE_LIMIT (--rate-limit): want a whole number from 0"},
		{"rate limit flag after a bad one", nil, []string{"--rate-limit", "fast"}, "CG_RATE_LIMIT"},
		{"page size", map[string]string{"CG_SYNC_PER_PAGE": "5000"}, nil, "CG_SYNC_PER_PAGE"},
		{"log level", map[string]string{"LOG_LEVEL": "loud"}, nil, "LOG_LEVEL"},
		{"broken schema", map[string]string{"CG_SCHEMAS_DIR": dir}, nil, "contact.json"},
		{"missing secret file", map[string]string{"CG_CLIENT_SECRET_FILE": filepath.Join(dir, "nope")}, nil, "CG_CLIENT_SECRET_FILE"},
		{"http addr", map[string]string{"CG_HTTP_ADDR": "eighty"}, nil, "CG_HTTP_ADDR"},
		{"unknown flag", nil, []string{"--no-such-flag"}, "no-such-flag"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{}
			for k, v := range base {
				vars[k] = v
			}
			for k, v := range c.vars {
				vars[k] = v
			}
			inv := runCLI(context.Background(), vars, "", append([]string{"run"}, c.args...)...)
			if inv.code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr: %s", inv.code, exitUsage, inv.stderr)
			}
			if !strings.Contains(inv.stderr.String(), c.wants) {
				t.Errorf("stderr %q does not name %q", inv.stderr, c.wants)
			}
			if strings.Contains(inv.stderr.String(), "very-secret-value") {
				t.Error("the secret was printed")
			}
		})
	}
}

func TestUsageAndVersion(t *testing.T) {
	t.Parallel()
	if inv := runCLI(context.Background(), nil, "", "frobnicate"); inv.code != exitUsage || !strings.Contains(inv.stderr.String(), "unknown command") {
		t.Errorf("unknown command: exit %d, %s", inv.code, inv.stderr)
	}
	if inv := runCLI(context.Background(), nil, ""); inv.code != exitUsage {
		t.Errorf("no command: exit %d", inv.code)
	}
	inv := runCLI(context.Background(), nil, "", "version")
	if inv.code != exitOK || !strings.Contains(inv.stdout.String(), "cgworker dev") || !strings.Contains(inv.stdout.String(), "go1.") {
		t.Errorf("version: exit %d, %q", inv.code, inv.stdout)
	}
	if inv := runCLI(context.Background(), nil, "", "validate", "nonsense"); inv.code != exitUsage {
		t.Errorf("validate with a bad kind: exit %d", inv.code)
	}
	if inv := runCLI(context.Background(), nil, "", "sync"); inv.code != exitUsage {
		t.Errorf("sync without a mode: exit %d", inv.code)
	}
	if inv := runCLI(context.Background(), nil, "", "sync", "--reset-cursor"); inv.code != exitUsage || !strings.Contains(inv.stderr.String(), "--yes") {
		t.Errorf("reset without --yes: exit %d %s", inv.code, inv.stderr)
	}
	if inv := runCLI(context.Background(), nil, "", "dlq", "purge"); inv.code != exitUsage || !strings.Contains(inv.stderr.String(), "--yes") {
		t.Errorf("purge without --yes: exit %d %s", inv.code, inv.stderr)
	}
}

func TestValidateCommand(t *testing.T) {
	t.Parallel()
	input := `{"account":"ACME","type":"T","source":"S"}
{"account":"ACME","source":"S"}

not json
`
	inv := runCLI(context.Background(), nil, input, "validate", "activity", "-")
	if inv.code != exitFailure {
		t.Fatalf("exit %d, want 1; stderr %s", inv.code, inv.stderr)
	}
	lines := strings.Split(strings.TrimSpace(inv.stdout.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want one per invalid document: %q", len(lines), inv.stdout)
	}
	var first struct {
		Line      int                 `json:"line"`
		ErrorKind string              `json:"error_kind"`
		Errors    map[string][]string `json:"errors"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.Line != 2 || first.ErrorKind != "schema" || len(first.Errors["type"]) == 0 {
		t.Errorf("first report %+v", first)
	}
	if !strings.Contains(lines[1], `"line":4`) || !strings.Contains(lines[1], `"malformed"`) {
		t.Errorf("second report %s", lines[1])
	}
	valid := runCLI(context.Background(), nil, `{"Email":"a@example.com"}`, "validate", "contact")
	if valid.code != exitOK || valid.stdout.String() != "" {
		t.Errorf("valid contact: exit %d, %q", valid.code, valid.stdout)
	}
}

// TestRunEndToEnd runs `cgworker run` in-process against an embedded NATS
// and the emulator: it delivers, serves health and metrics, keeps the
// secret out of its logs, and exits 0 on shutdown.
func TestRunEndToEnd(t *testing.T) {
	t.Parallel()
	ns := natstest.NewServer(t)
	emu := cgapitest.NewServer(t, emulator.Options{ClientSecret: "s3cr3t-value", Responses: 30})
	vars := apiEnv(emu, "s3cr3t-value")
	vars["NATS_URL"] = ns.URL
	vars["CG_HTTP_ADDR"] = "127.0.0.1:0"
	vars["CG_ACCOUNT_CONFIGURATION"] = "account"
	vars["LOG_LEVEL"] = "debug"

	pub := runCLI(context.Background(), map[string]string{"NATS_URL": ns.URL}, strings.Repeat(`{"account":"ACME","type":"T","source":"S"}`+"\n", 5)+`{"Account Name":"ACME"}`, "publish", "activity")
	if pub.code != exitOK || strings.TrimSpace(pub.stdout.String()) != "published 6" {
		t.Fatalf("publish: exit %d, %q %s", pub.code, pub.stdout, pub.stderr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan invocation, 1)
	var out invocation
	go func() { done <- runCLI(ctx, vars, "", "run") }()

	// Five activities, each its own message and so its own derived
	// reference; the account body on the activity subject is a dead letter.
	proctest.WaitFor(t, 20*time.Second, 20*time.Millisecond, "5 activities delivered", func() (bool, string) {
		select {
		case out = <-done:
			t.Fatalf("run ended early: exit %d\n%s", out.code, out.stderr)
		default:
		}
		n := emu.ActivityCount()
		return n >= 5, fmt.Sprintf("%d delivered", n)
	})
	cancel()
	select {
	case out = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
	if out.code != exitOK {
		t.Fatalf("exit %d after shutdown\n%s", out.code, out.stderr)
	}
	if strings.Contains(out.stderr.String(), "s3cr3t-value") {
		t.Error("the client secret appears in the logs")
	}
	logs := out.stderr.String()
	for _, want := range []string{`"msg":"dead-lettered"`, `"error_kind":"schema"`, "stopped cleanly"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if emu.ActivityCount() != 5 {
		t.Errorf("%d activities, want 5", emu.ActivityCount())
	}

	// The dead letter, seen through the dlq command.
	natsOnly := map[string]string{"NATS_URL": ns.URL}
	list := runCLI(context.Background(), natsOnly, "", "dlq", "list", "--json", "--kind", "activity")
	if list.code != exitOK {
		t.Fatalf("dlq list: exit %d %s", list.code, list.stderr)
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(list.stdout.String())), &entry); err != nil {
		t.Fatalf("dlq list --json: %v: %q", err, list.stdout)
	}
	for _, k := range []string{"seq", "kind", "error_kind", "error", "attempts", "failed_at", "original_subject"} {
		if _, ok := entry[k]; !ok {
			t.Errorf("dlq list --json lacks %q: %v", k, entry)
		}
	}
	if entry["error_kind"] != "schema" || entry["original_subject"] != "cg.events.activity" {
		t.Errorf("dlq entry %v", entry)
	}
	if none := runCLI(context.Background(), natsOnly, "", "dlq", "list", "--json", "--error-kind", "api-422"); none.code != exitOK || none.stdout.String() != "" {
		t.Errorf("filtered list: exit %d %q", none.code, none.stdout)
	}
	dry := runCLI(context.Background(), natsOnly, "", "dlq", "replay", "--dry-run")
	if dry.code != exitOK || !strings.Contains(dry.stdout.String(), "1") {
		t.Errorf("replay --dry-run: exit %d %q %s", dry.code, dry.stdout, dry.stderr)
	}
	if again := runCLI(context.Background(), natsOnly, "", "dlq", "list", "--json"); strings.Count(again.stdout.String(), "\n") != 1 {
		t.Errorf("a dry run changed the dead letters: %q", again.stdout)
	}
	status := runCLI(context.Background(), natsOnly, "", "sync", "--status", "--json")
	if status.code != exitOK || !strings.Contains(status.stdout.String(), `"last_number":`) {
		t.Errorf("sync --status: exit %d %q %s", status.code, status.stdout, status.stderr)
	}
}

func TestRunServesHealthAndMetrics(t *testing.T) {
	t.Parallel()
	ns := natstest.NewServer(t)
	emu := cgapitest.NewServer(t, emulator.Options{})
	vars := apiEnv(emu, "dev")
	vars["NATS_URL"] = ns.URL
	vars["CG_HTTP_ADDR"] = "127.0.0.1:0"
	vars["CG_SYNC"] = "false"

	ctx, cancel := context.WithCancel(context.Background())
	inv := invocation{stdout: &proctest.Buffer{}, stderr: &proctest.Buffer{}}
	done := make(chan int, 1)
	go func() {
		done <- cli(ctx, []string{"run"}, env{stdin: strings.NewReader(""), stdout: inv.stdout, stderr: inv.stderr,
			lookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }})
	}()
	defer func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("exit %d\n%s", code, inv.stderr)
		}
	}()

	var addr string
	proctest.WaitFor(t, 15*time.Second, 10*time.Millisecond, "the bound address logged", func() (bool, string) {
		if addr = proctest.ServingAddr(inv.stderr.String()); addr == "" {
			return false, inv.stderr.String()
		}
		return true, ""
	})
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	proctest.WaitFor(t, 15*time.Second, 20*time.Millisecond, "/readyz 200", func() (bool, string) {
		code, body := get("/readyz")
		return code == 200, fmt.Sprintf("%d %s", code, body)
	})
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "cgworker_in_flight") || !strings.Contains(body, "cgworker_consumer_pending") {
		t.Errorf("/metrics %d, missing the worker metrics:\n%.2000s", code, body)
	}
}

// TestDevDemo runs what a newcomer runs first: every sample event settles
// as the demo's own table says, the commands the banner prints run as
// printed, and Ctrl-C stops it cleanly.
func TestDevDemo(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inv := invocation{stdout: &proctest.Buffer{}, stderr: &proctest.Buffer{}}
	done := make(chan int, 1)
	go func() {
		done <- cli(ctx, []string{"dev", "--demo", "--store", t.TempDir()}, env{stdin: strings.NewReader(""), stdout: inv.stdout, stderr: inv.stderr,
			lookupEnv: func(string) (string, bool) { return "", false }})
	}()
	proctest.WaitFor(t, 60*time.Second, 20*time.Millisecond, "the demo to settle", func() (bool, string) {
		select {
		case code := <-done:
			t.Fatalf("dev ended early: exit %d\n%s\n%s", code, inv.stdout, inv.stderr)
		default:
		}
		return strings.Contains(inv.stdout.String(), "sample events settled"), inv.stdout.String()
	})
	out := inv.stdout.String()
	delivered, deadLettered := 0, 0
	byErrorKind := map[string]int{}
	for _, ev := range demoEvents {
		if ev.want == "" {
			delivered++
		} else {
			deadLettered++
			byErrorKind[ev.want]++
		}
	}
	if got := strings.Count(out, "  delivered "); got != delivered {
		t.Errorf("%d delivered, want %d:\n%s", got, delivered, out)
	}
	if got := strings.Count(out, "  dead-lettered "); got != deadLettered {
		t.Errorf("%d dead-lettered, want %d:\n%s", got, deadLettered, out)
	}
	for kind, n := range byErrorKind {
		if got := strings.Count(out, "["+kind+"]"); got != n {
			t.Errorf("%d dead-lettered as %s, want %d:\n%s", got, kind, n, out)
		}
	}
	for _, want := range []string{"nats://127.0.0.1:", "emulator: http://127.0.0.1:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	runBannerCommands(t, out, deadLettered)

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d after Ctrl-C\n%s", code, inv.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop")
	}
}

// runBannerCommands runs each command line the dev banner printed in out,
// as printed (a "< FILE" redirection reads two sample activities), then
// the README's dlq commands with their flags after the arguments.
func runBannerCommands(t *testing.T, out string, deadLetters int) {
	t.Helper()
	events := `{"account":"ACME","type":"T","source":"S"}` + "\n" + `{"account":"Globex","type":"T","source":"S"}` + "\n"
	var natsURL string
	ran := 0
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), bannerCommand+" ")
		if !ok {
			continue
		}
		args := strings.Fields(rest)
		stdin := ""
		if i := slices.Index(args, "<"); i >= 0 {
			args, stdin = args[:i], events
		}
		if i := slices.Index(args, "--nats-url"); i >= 0 && i+1 < len(args) {
			natsURL = args[i+1]
		}
		inv := runCLI(context.Background(), nil, stdin, args...)
		if inv.code != exitOK {
			t.Errorf("%q: exit %d\n%s", line, inv.code, inv.stderr)
		}
		switch args[0] {
		case "publish":
			if inv.stdout.String() != "published 2\n" {
				t.Errorf("%q printed %q, want published 2", line, inv.stdout)
			}
		case "dlq":
			if inv.stdout.String() == "" {
				t.Errorf("%q printed nothing; the demo left %d dead letters", line, deadLetters)
			}
		}
		ran++
	}
	if ran < 2 || natsURL == "" {
		t.Fatalf("found %d banner commands (NATS URL %q) in:\n%s", ran, natsURL, out)
	}

	list := runCLI(context.Background(), nil, "", "dlq", "list", "--kind", "activity", "--json", "--nats-url", natsURL)
	if list.code != exitOK {
		t.Fatalf("dlq list --kind activity --json: exit %d\n%s", list.code, list.stderr)
	}
	var first struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal([]byte(strings.SplitN(list.stdout.String(), "\n", 2)[0]), &first); err != nil || first.Seq == 0 {
		t.Fatalf("dlq list --json: %v: %q", err, list.stdout)
	}
	show := runCLI(context.Background(), nil, "", "dlq", "show", fmt.Sprint(first.Seq), "--nats-url", natsURL)
	if show.code != exitOK || show.stdout.String() == "" {
		t.Errorf("dlq show %d --nats-url URL: exit %d %q\n%s", first.Seq, show.code, show.stdout, show.stderr)
	}
}
