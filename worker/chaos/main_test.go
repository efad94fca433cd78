package chaos

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// binary is the cgworker executable built once for the whole run.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Every test skips itself; building would only cost time.
		os.Exit(m.Run())
	}
	if bin := os.Getenv("CGWORKER_CHAOS_BINARY"); bin != "" {
		// A binary built elsewhere, e.g. a release candidate.
		binary = bin
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "cgworker-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	binary, err = build(dir)
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos: building cgworker:", err)
	} else {
		code = m.Run()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles ./cmd/cgworker of this module into dir, without -race:
// the children are the system under test, not the test.
func build(dir string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	bin := filepath.Join(dir, "cgworker")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/cgworker")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", err
	}
	return bin, nil
}

// chaosTest marks a test parallel and skips it under -short.
func chaosTest(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("chaos suite: runs the real binary; skipped with -short")
	}
	t.Parallel()
}
