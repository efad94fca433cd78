package main

import (
	"context"
	"strings"
	"testing"
)

// --to names a kind and belongs to replay; both mistakes are usage errors
// found before NATS is dialled.
func TestDLQReplayToIsChecked(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"dlq", "replay", "--to", "order"},
		{"dlq", "list", "--to", "activity"},
		{"dlq", "list", "--kind", "order"},
	} {
		inv := runCLI(context.Background(), nil, "", args...)
		if inv.code != exitUsage || !strings.Contains(inv.stderr.String(), "--") {
			t.Errorf("%v: exit %d, stderr %q; want a usage error", args, inv.code, inv.stderr)
		}
	}
	if inv := runCLI(context.Background(), nil, "", "dlq", "--help"); !strings.Contains(inv.stderr.String(), "--to KIND") ||
		!strings.Contains(inv.stderr.String(), "unknown-subject") {
		t.Errorf("dlq --help lacks --to or unknown-subject:\n%s", inv.stderr)
	}
}
