// Package proctest runs programs as child processes of a test, for the
// suites that test the real cgworker binary (worker/chaos, worker/perf),
// in the spirit of net/http/httptest.
//
// Build compiles a program once per test binary into a temporary
// directory, which Run removes after the tests (call it from TestMain).
// Start runs a program with an isolated environment, its stderr and stdout
// in files under the test's temp dir, and prints the tail of both when the
// test fails; the Process it returns is killed when the test ends. WaitFor
// polls a condition with a deadline. Buffer collects the output of what
// runs inside the test process.
package proctest
