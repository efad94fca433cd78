// Package cgapitest holds thin testing helpers around the API emulator, in
// the spirit of net/http/httptest: NewServer starts an emulator on loopback
// in one line and closes it when the test ends, and Config gives a client
// configuration that talks to it. The emulator itself is a product of its
// own, package cgapi/emulator, which never imports testing.
package cgapitest

import (
	"testing"
	"time"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/cgapi/emulator"
)

// NewServer starts an emulator on loopback; it is closed when the test ends.
func NewServer(tb testing.TB, opts emulator.Options) *emulator.Server {
	tb.Helper()
	s, err := emulator.Listen("127.0.0.1:0", opts)
	if err != nil {
		tb.Fatalf("cgapitest: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// Config is a client configuration for the emulator s: its token, imports
// and sync URLs, the emulator's default credentials (or opts' when set), a
// 10 s timeout and a test user agent. Callers change what they need.
func Config(s *emulator.Server, opts emulator.Options) cgapi.Config {
	id, secret := opts.ClientID, opts.ClientSecret
	if id == "" {
		id = emulator.DefaultClientID
	}
	if secret == "" {
		secret = emulator.DefaultClientSecret
	}
	return cgapi.Config{
		AuthURL:      s.URL + emulator.TokenPath,
		ImportsURL:   s.URL,
		APIURL:       s.URL,
		ClientID:     id,
		ClientSecret: secret,
		Timeout:      10 * time.Second,
		UserAgent:    "cgworker/test",
	}
}

// NewClient is a client for the emulator s built from Config(s, opts).
func NewClient(tb testing.TB, s *emulator.Server, opts emulator.Options) *cgapi.Client {
	tb.Helper()
	c, err := cgapi.New(Config(s, opts))
	if err != nil {
		tb.Fatalf("cgapitest: %v", err)
	}
	return c
}
