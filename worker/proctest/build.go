package proctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// CgworkerPackage is the import path of the cgworker command.
const CgworkerPackage = "github.com/cgworker/cgworker/cmd/cgworker"

var (
	// binDir is the directory of the binaries built, created on first use.
	binDir = sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "cgworker-proctest-") })

	mu     sync.Mutex
	builds = map[string]func() (string, error){} // package -> its build, run once
)

// Build compiles pkg (an import path, or a directory relative to the test's
// package) into a file called name and returns its path. Each package is
// built once per test binary; later calls wait for that build and return
// its result. The build has no -race: the race detector belongs to the
// test process, and the children are the system under test.
func Build(name, pkg string) (string, error) {
	mu.Lock()
	build, ok := builds[pkg]
	if !ok {
		build = sync.OnceValues(func() (string, error) {
			dir, err := binDir()
			if err != nil {
				return "", err
			}
			out := filepath.Join(dir, name)
			if msg, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
				return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
			}
			return out, nil
		})
		builds[pkg] = build
	}
	mu.Unlock()
	return build()
}

// Binary is Build that fails the test when the build fails.
func Binary(tb testing.TB, name, pkg string) string {
	tb.Helper()
	path, err := Build(name, pkg)
	if err != nil {
		tb.Fatal(err)
	}
	return path
}

// Cgworker returns the cgworker binary, built on first use.
func Cgworker(tb testing.TB) string {
	tb.Helper()
	return Binary(tb, "cgworker", CgworkerPackage)
}

// Run runs the tests and then removes the binaries built; call it from
// TestMain as os.Exit(proctest.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	built := len(builds) > 0
	mu.Unlock()
	if built {
		if dir, err := binDir(); err == nil {
			_ = os.RemoveAll(dir)
		}
	}
	return code
}
