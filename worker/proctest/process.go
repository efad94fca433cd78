package proctest

import (
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Process is a program started by a test.
type Process struct {
	Name    string
	LogPath string // the process's stderr
	OutPath string // its stdout

	tb   testing.TB
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // valid after done
}

// passedEnv are the only variables of the test's environment a child gets.
var passedEnv = []string{"PATH", "HOME", "TMPDIR"}

// Start runs bin with args and exactly env (plus PATH, HOME and TMPDIR), so
// that nothing of the developer's environment (OTEL_*, NATS_*, CG_*) leaks
// in. The process is killed when the test ends if it is still running;
// when the test has failed, the last lines of its stderr and stdout are
// logged.
func Start(tb testing.TB, name, bin string, env map[string]string, args ...string) *Process {
	tb.Helper()
	dir := tb.TempDir()
	p := &Process{
		Name:    name,
		LogPath: filepath.Join(dir, name+".log"),
		OutPath: filepath.Join(dir, name+".out"),
		tb:      tb,
		done:    make(chan struct{}),
	}
	logf, err := os.Create(p.LogPath)
	if err != nil {
		tb.Fatal(err)
	}
	outf, err := os.Create(p.OutPath)
	if err != nil {
		tb.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stderr, p.cmd.Stdout = logf, outf
	p.cmd.Env = []string{} // not nil, which would mean the test's environment
	for _, k := range passedEnv {
		if v, ok := os.LookupEnv(k); ok {
			p.cmd.Env = append(p.cmd.Env, k+"="+v)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		p.cmd.Env = append(p.cmd.Env, k+"="+env[k])
	}
	if err := p.cmd.Start(); err != nil {
		_ = logf.Close()
		_ = outf.Close()
		tb.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		_ = logf.Close()
		_ = outf.Close()
		close(p.done)
	}()
	tb.Cleanup(func() {
		if p.Running() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if tb.Failed() {
			tb.Logf("--- last lines of %s's stderr (%s) ---\n%s", name, p.LogPath, p.Tail(40))
			if out := tail(p.Stdout(), 10); out != "" {
				tb.Logf("--- last lines of %s's stdout (%s) ---\n%s", name, p.OutPath, out)
			}
		}
	})
	return p
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Err is how the process ended (nil for exit status 0); nil while it runs.
func (p *Process) Err() error {
	if p.Running() {
		return nil
	}
	return p.err
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Signal sends sig (SIGTERM, SIGINT) without waiting; it fails the test
// when the signal cannot be sent, as after the process exited.
func (p *Process) Signal(sig syscall.Signal) {
	p.tb.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.tb.Fatalf("%s: signal %v: %v", p.Name, sig, err)
	}
}

// Wait waits up to timeout for the process to exit and returns its exit
// code, -1 when a signal killed it. When the process is still running by
// then, Wait sends SIGQUIT, so that a Go program dumps its goroutines into
// the stderr shown on failure, and fails the test.
func (p *Process) Wait(timeout time.Duration) int {
	p.tb.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
		p.tb.Fatalf("%s still running after %s", p.Name, timeout)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	default:
		p.tb.Fatalf("%s: %v", p.Name, p.err)
		return -1
	}
}

// Log returns what the process has written to stderr so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Stdout returns what the process has written to stdout so far.
func (p *Process) Stdout() string {
	b, _ := os.ReadFile(p.OutPath)
	return string(b)
}

// Tail is the last n lines of the process's stderr.
func (p *Process) Tail(n int) string { return tail(p.Log(), n) }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
