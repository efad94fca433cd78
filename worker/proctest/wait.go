package proctest

import (
	"syscall"
	"testing"
	"time"
)

// WaitFor polls cond every interval until it holds, and fails the test when
// it still does not after within. cond's status says what it saw, for the
// failure message.
func WaitFor(tb testing.TB, within, every time.Duration, what string, cond func() (ok bool, status string)) {
	tb.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		ok, status := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			if status != "" {
				tb.Fatalf("timed out after %s waiting for %s; last seen: %s", within, what, status)
			}
			tb.Fatalf("timed out after %s waiting for %s", within, what)
		}
		<-tick.C
	}
}

// SelfCPU is the CPU time (user and system) the test process has used so
// far; 0 when the system cannot say.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
