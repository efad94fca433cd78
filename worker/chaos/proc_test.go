package chaos

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/worker/proctest"
)

// proc is one cgworker process started by a test; its log is its stderr.
type proc struct {
	*proctest.Process
	t testing.TB
}

// workerEnv is the environment of a worker talking to natsURL and api:
// short ack wait and retry budget, no sync, an HTTP port picked by the OS.
// Tests override entries as they need.
func workerEnv(natsURL string, api *emulator.Server) map[string]string {
	return map[string]string{
		"NATS_URL":                 natsURL,
		"CG_AUTH_URL":              api.URL + emulator.TokenPath,
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

// start runs `cgworker args...` with exactly env (see proctest.Start).
// The process is killed when the test ends if still running.
func start(t testing.TB, name string, env map[string]string, args ...string) *proc {
	t.Helper()
	return &proc{Process: proctest.Start(t, name, binary(t), env, args...), t: t}
}

// logLines returns the log records whose msg is msg, decoded.
func (p *proc) logLines(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader([]byte(p.Log())))
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
	eventually(p.t, 20*time.Second, p.Name+" serving /healthz", func() (bool, string) {
		if !p.Running() {
			p.t.Fatalf("%s exited early: %v", p.Name, p.Err())
		}
		addr = proctest.ServingAddr(p.Log())
		return addr != "", "no serving line yet"
	})
	return addr
}

// waitReady waits until /readyz answers 200.
func (p *proc) waitReady() {
	p.t.Helper()
	url := "http://" + p.httpAddr() + "/readyz"
	client := &http.Client{Timeout: time.Second}
	eventually(p.t, 30*time.Second, p.Name+" ready", func() (bool, string) {
		if !p.Running() {
			p.t.Fatalf("%s exited early: %v", p.Name, p.Err())
		}
		resp, err := client.Get(url)
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

// eventually polls cond every 50 ms until it holds or timeout passes;
// status says what was seen last, for the failure message.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() (ok bool, status string)) {
	t.Helper()
	proctest.WaitFor(t, timeout, 50*time.Millisecond, what, cond)
}
