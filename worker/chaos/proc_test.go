package chaos

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgworker/cgworker/cgapi/cgapitest"
)

// proc is one cgworker process started by a test. Its stderr (the JSON log)
// goes to a file under the test's temp dir; its tail is printed when the
// test fails.
type proc struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	logPath string
	outPath string

	done    chan struct{} // closed when the process has exited
	exitErr error         // valid after done
}

// workerEnv is the environment of a worker talking to natsURL and api:
// short ack wait and retry budget, no sync, an HTTP port picked by the OS.
// Tests override entries as they need.
func workerEnv(natsURL string, api *cgapitest.Server) map[string]string {
	return map[string]string{
		"NATS_URL":                 natsURL,
		"CG_AUTH_URL":              api.URL + cgapitest.TokenPath,
		"CG_IMPORTS_URL":           api.URL,
		"CG_API_URL":               api.URL,
		"CG_CLIENT_ID":             "dev",
		"CG_CLIENT_SECRET":         "dev",
		"CG_ACCOUNT_CONFIGURATION": "account",
		"CG_CONTACT_CONFIGURATION": "contact",
		"CG_ACK_WAIT":              "2s",
		"CG_HTTP_TIMEOUT":          "10s",
		"CG_RETRY_MAX_ELAPSED":     "10s",
		"CG_CONTACT_WAIT":          "1ms",
		"CG_SHUTDOWN_TIMEOUT":      "5s",
		"CG_SYNC_INTERVAL":         "0",
		"CG_HTTP_ADDR":             "127.0.0.1:0",
		"LOG_FORMAT":               "json",
		"LOG_LEVEL":                "info",
	}
}

// start runs `cgworker args...` with exactly env (plus PATH, HOME and
// TMPDIR), so nothing of the developer's environment (OTEL_*, NATS_*)
// leaks in. The process is killed when the test ends if still running.
func start(t *testing.T, name string, env map[string]string, args ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	p := &proc{
		t:       t,
		name:    name,
		logPath: filepath.Join(dir, name+".log"),
		outPath: filepath.Join(dir, name+".out"),
		done:    make(chan struct{}),
	}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	outf, err := os.Create(p.outPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Stderr, p.cmd.Stdout = logf, outf
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			p.cmd.Env = append(p.cmd.Env, k+"="+v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		p.cmd.Env = append(p.cmd.Env, k+"="+env[k])
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		_ = logf.Close()
		_ = outf.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.running() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- last lines of %s's log (%s) ---\n%s", name, p.logPath, p.tail(40))
		}
	})
	return p
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.t.Helper()
	_ = p.cmd.Process.Kill()
	<-p.done
}

// signal sends sig (SIGTERM, SIGINT) without waiting.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
}

// wait waits up to timeout for the process to exit and returns its exit
// code; it fails the test when the process is still running by then.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%s still running after %s", p.name, timeout)
	}
	var ee *exec.ExitError
	switch {
	case p.exitErr == nil:
		return 0
	case errors.As(p.exitErr, &ee):
		return ee.ExitCode() // -1 when killed by a signal
	default:
		p.t.Fatalf("%s: %v", p.name, p.exitErr)
		return -1
	}
}

// log returns the process's log so far.
func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// stdout returns what the process printed on stdout so far.
func (p *proc) stdout() string {
	b, _ := os.ReadFile(p.outPath)
	return string(b)
}

// tail is the last n lines of the log.
func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.log(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// logLines returns the log records whose msg is msg, decoded.
func (p *proc) logLines(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader([]byte(p.log())))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// httpAddr waits for the "serving /healthz" log line and returns the bound
// address of /healthz, /readyz and /metrics.
func (p *proc) httpAddr() string {
	p.t.Helper()
	var addr string
	eventually(p.t, 20*time.Second, p.name+" serving /healthz", func() (bool, string) {
		if !p.running() {
			p.t.Fatalf("%s exited early: %v", p.name, p.exitErr)
		}
		for _, rec := range p.logLines("serving /healthz, /readyz, /metrics") {
			addr, _ = rec["addr"].(string)
		}
		return addr != "", "no serving line yet"
	})
	return addr
}

// waitReady waits until /readyz answers 200.
func (p *proc) waitReady() {
	p.t.Helper()
	url := "http://" + p.httpAddr() + "/readyz"
	client := &http.Client{Timeout: time.Second}
	eventually(p.t, 30*time.Second, p.name+" ready", func() (bool, string) {
		if !p.running() {
			p.t.Fatalf("%s exited early: %v", p.name, p.exitErr)
		}
		resp, err := client.Get(url)
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

// eventually polls cond until it holds or timeout passes; status says what
// was seen last, for the failure message.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (ok bool, status string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, status := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, status)
		}
		<-tick.C
	}
}
