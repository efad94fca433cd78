package proctest_test

import (
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgworker/cgworker/worker/proctest"
)

func TestMain(m *testing.M) { os.Exit(proctest.Run(m)) }

func child(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a program")
	}
	return proctest.Binary(t, "child", "./testdata/child")
}

func TestBuildOnce(t *testing.T) {
	t.Parallel()
	bin := child(t)
	again, err := proctest.Build("other-name", "./testdata/child")
	if err != nil || again != bin {
		t.Errorf("second build = %q, %v; want %q, the first build", again, err, bin)
	}
	if _, err := proctest.Build("missing", "./testdata/missing"); err == nil {
		t.Error("building a missing package succeeded")
	}
}

func TestStartIsolatesEnvironment(t *testing.T) {
	t.Parallel()
	p := proctest.Start(t, "env", child(t), map[string]string{"B": "2", "A": "1"}, "exit", "7")
	if code := p.Wait(30 * time.Second); code != 7 {
		t.Fatalf("exit code %d, want 7", code)
	}
	want := []string{"A=1", "B=2"}
	for _, k := range []string{"HOME", "PATH", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			want = append(want, k+"="+v)
		}
	}
	slices.Sort(want)
	if got := strings.Split(strings.TrimSpace(p.Stdout()), "\n"); !slices.Equal(got, want) {
		t.Errorf("child environment = %q, want %q", got, want)
	}
	if p.Running() || p.Err() == nil {
		t.Errorf("after exit 7: running %v, err %v", p.Running(), p.Err())
	}
	if got := p.Tail(1); got != "child: started" {
		t.Errorf("stderr tail = %q", got)
	}
}

func TestSignalAndWait(t *testing.T) {
	t.Parallel()
	p := proctest.Start(t, "serve", child(t), nil, "serve")
	proctest.WaitFor(t, 30*time.Second, 10*time.Millisecond, "ready", func() (bool, string) {
		return p.Stdout() == "ready\n", p.Stdout()
	})
	if !p.Running() || p.Err() != nil {
		t.Fatalf("before the signal: running %v, err %v", p.Running(), p.Err())
	}
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(30 * time.Second); code != 3 {
		t.Fatalf("exit code %d, want 3; stderr:\n%s", code, p.Log())
	}
	if got := p.Tail(1); got != "child: terminated" {
		t.Errorf("stderr tail = %q", got)
	}
}

func TestKill(t *testing.T) {
	t.Parallel()
	p := proctest.Start(t, "killed", child(t), nil, "serve")
	p.Kill()
	if p.Running() {
		t.Fatal("running after Kill")
	}
	if code := p.Wait(time.Second); code != -1 {
		t.Errorf("exit code %d, want -1 (killed by a signal)", code)
	}
}

func TestSelfCPU(t *testing.T) {
	t.Parallel()
	before := proctest.SelfCPU()
	if before <= 0 {
		t.Fatalf("SelfCPU = %v", before)
	}
	proctest.WaitFor(t, 30*time.Second, time.Millisecond, "CPU time to grow", func() (bool, string) {
		for range 1000 { // burn a little CPU
			_ = strings.Repeat("x", 1000)
		}
		return proctest.SelfCPU() > before, ""
	})
}
