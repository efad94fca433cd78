package queue

import (
	"strings"

	"github.com/cgworker/cgworker/schemas"
)

// Names derives every subject, stream, consumer and bucket name from the
// subject prefix (CG_SUBJECT_PREFIX), as in the README, "Subjects, streams, consumers".
type Names struct {
	Prefix string // first subject token, e.g. "cg"
}

// NewNames returns the names for prefix ("" means "cg").
func NewNames(prefix string) Names {
	if prefix == "" {
		prefix = "cg"
	}
	return Names{Prefix: prefix}
}

func (n Names) upper() string { return strings.ToUpper(n.Prefix) }

// EventsStream is the stream of inbound events, e.g. CG_EVENTS.
func (n Names) EventsStream() string { return n.upper() + "_EVENTS" }

// DLQStream is the dead-letter stream, e.g. CG_DLQ.
func (n Names) DLQStream() string { return n.upper() + "_DLQ" }

// ResponsesStream is the stream of synced responses, e.g. CG_RESPONSES.
func (n Names) ResponsesStream() string { return n.upper() + "_RESPONSES" }

// SyncBucket is the key-value bucket of the sync state, e.g. CG_SYNC.
func (n Names) SyncBucket() string { return n.upper() + "_SYNC" }

// EventSubject is where producers publish events of kind, e.g. cg.events.activity.
func (n Names) EventSubject(k schemas.Kind) string { return n.Prefix + ".events." + string(k) }

// EventsWildcard covers every event subject, e.g. cg.events.>.
func (n Names) EventsWildcard() string { return n.Prefix + ".events.>" }

// DLQSubject is where dead letters of kind go, e.g. cg.dlq.activity.
func (n Names) DLQSubject(k schemas.Kind) string { return n.Prefix + ".dlq." + string(k) }

// DLQWildcard covers every dead-letter subject, e.g. cg.dlq.>.
func (n Names) DLQWildcard() string { return n.Prefix + ".dlq.>" }

// ResponsesSubject is where synced responses go, e.g. cg.responses.
func (n Names) ResponsesSubject() string { return n.Prefix + ".responses" }

// Consumer is the durable consumer of kind, e.g. cgworker-activity.
func (n Names) Consumer(k schemas.Kind) string { return "cgworker-" + string(k) }
