package main

import (
	"flag"
	"io"
	"testing"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/worker"
	"github.com/cgworker/cgworker/worker/responses"
)

// TestSettingsTable: every setting is in one group, once, and its default
// passes its own parser; with nothing set, the readers give the packages'
// own defaults, so the table cannot drift from them.
func TestSettingsTable(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, s := range settings {
		if seen[s.env] {
			t.Errorf("%s is in the table twice", s.env)
		}
		seen[s.env] = true
		if s.group == 0 || s.parse == nil || s.usage == "" {
			t.Errorf("%s lacks a group, a parser or help", s.env)
		}
		if s.def != "" {
			if _, err := s.parse(s.def); err != nil {
				t.Errorf("%s: default %q does not parse: %v", s.env, s.def, err)
			}
		}
	}

	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := newConfig(fs, func(string) (string, bool) { return "", false }, runSettings...)
	if err := parse(fs, nil); err != nil {
		t.Fatal(err)
	}
	log := c.logger(io.Discard)
	w := c.worker(log)
	sync := c.sync(log, w.Names)
	if c.err != nil {
		t.Fatal(c.err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"CG_CONCURRENCY", w.Concurrency, worker.DefaultConcurrency},
		{"CG_RATE_LIMIT", w.RateLimit, 0.0},
		{"CG_ACK_WAIT", w.AckWait, queue.DefaultAckWait},
		{"CG_RETRY_MAX_ELAPSED", w.RetryMaxElapsed, worker.DefaultRetryMaxElapsed},
		{"CG_RETRY_MAX_ELAPSED (sync)", sync.MaxElapsed, responses.DefaultMaxElapsed},
		{"CG_CONTACT_WAIT", w.ContactWait, worker.DefaultContactWait},
		{"CG_SHUTDOWN_TIMEOUT", w.ShutdownTimeout, worker.DefaultShutdownTimeout},
		{"CG_SYNC_INTERVAL", sync.Interval, responses.DefaultInterval},
		{"CG_SYNC_PER_PAGE", sync.PerPage, responses.DefaultPerPage},
		{"CG_SUBJECT_PREFIX", w.Names, queue.NewNames("")},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s: read %v with nothing set, want the package default %v", ck.name, ck.got, ck.want)
		}
	}
	if got := formatDuration(responses.DefaultInterval) + " " + formatDuration(worker.DefaultRetryMaxElapsed) + " " + formatDuration(queue.DefaultAckWait); got != "1h 5m 30s" {
		t.Errorf("defaults shown as %q, want them as the README writes them", got)
	}
}
