package chaos

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/cgworker/cgworker/worker/proctest"
)

// binaryEnv names a cgworker binary built elsewhere (a release candidate,
// say) to test instead of building one.
const binaryEnv = "CGWORKER_CHAOS_BINARY"

func TestMain(m *testing.M) {
	flag.Parse()
	// Built before any test starts, so that no test's deadlines include the
	// build; with -short every test skips itself and nothing is built.
	if !testing.Short() && os.Getenv(binaryEnv) == "" {
		if _, err := proctest.Build("cgworker", proctest.CgworkerPackage); err != nil {
			fmt.Fprintln(os.Stderr, "chaos: building cgworker:", err)
			os.Exit(1)
		}
	}
	os.Exit(proctest.Run(m))
}

// binary is the cgworker executable under test.
func binary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv(binaryEnv); bin != "" {
		return bin
	}
	return proctest.Cgworker(t)
}

// chaosTest marks a test parallel and skips it under -short.
func chaosTest(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("chaos suite: runs the real binary; skipped with -short")
	}
	t.Parallel()
}
