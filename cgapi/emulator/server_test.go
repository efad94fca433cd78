package emulator

import "testing"

// newTestServer starts an emulator on loopback for this package's own
// tests (cgapitest.NewServer cannot be used here: it imports this package).
func newTestServer(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := Listen("127.0.0.1:0", opts)
	if err != nil {
		tb.Fatalf("emulator: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}
