package deadletter

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/schemas"
)

// Filter selects dead letters for List, Replay and Purge; the zero Filter
// selects them all. Conditions combine with AND.
type Filter struct {
	Kind      string    // event kind ("activity", or "unknown"); "" for every kind
	ErrorKind string    // CG-Error-Kind; "" for every error kind
	Since     time.Time // stored in the dead-letter stream at or after; zero for no bound
	SeqFrom   uint64    // first dead-letter stream sequence; 0 for no bound
	SeqTo     uint64    // last dead-letter stream sequence, inclusive; 0 for no bound
}

// ParseFilter reads the `cgworker dlq` filter flags: --kind, --error-kind,
// --since (a Go duration back from now such as 24h, or an RFC 3339 time)
// and --seq (N, or N-M inclusive). Empty strings leave a condition out.
// Errors name the flag.
func ParseFilter(kind, errorKind, since, seq string, now time.Time) (Filter, error) {
	var f Filter
	if kind != "" {
		if kind == string(queue.UnknownKind) {
			f.Kind = kind
		} else {
			k, err := schemas.ParseKind(kind)
			if err != nil {
				return Filter{}, fmt.Errorf("--kind: %w (or %s, for events on an unknown subject)", err, queue.UnknownKind)
			}
			f.Kind = string(k)
		}
	}
	if errorKind != "" {
		if !slices.Contains(ErrorKinds, errorKind) {
			return Filter{}, fmt.Errorf("--error-kind: unknown error kind %q: want one of %s", errorKind, strings.Join(ErrorKinds, ", "))
		}
		f.ErrorKind = errorKind
	}
	if since != "" {
		if d, err := time.ParseDuration(since); err == nil {
			if d <= 0 {
				return Filter{}, fmt.Errorf("--since: duration %q must be positive", since)
			}
			f.Since = now.Add(-d)
		} else if t, err := time.Parse(time.RFC3339, since); err == nil {
			f.Since = t
		} else {
			return Filter{}, fmt.Errorf("--since: want a duration such as 24h or an RFC 3339 time such as 2024-05-01T00:00:00Z, got %q", since)
		}
	}
	if seq != "" {
		from, to, isRange := strings.Cut(seq, "-")
		a, err := strconv.ParseUint(strings.TrimSpace(from), 10, 64)
		if err != nil || a == 0 {
			return Filter{}, fmt.Errorf("--seq: want a sequence N or a range N-M of positive numbers, got %q", seq)
		}
		b := a
		if isRange {
			b, err = strconv.ParseUint(strings.TrimSpace(to), 10, 64)
			if err != nil || b == 0 {
				return Filter{}, fmt.Errorf("--seq: want a sequence N or a range N-M of positive numbers, got %q", seq)
			}
			if b < a {
				return Filter{}, fmt.Errorf("--seq: range %q ends before it starts", seq)
			}
		}
		f.SeqFrom, f.SeqTo = a, b
	}
	return f, nil
}
