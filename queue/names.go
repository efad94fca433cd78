package queue

import (
	"crypto/sha256"
	"encoding/hex"
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

// EventSubjects are the subjects of the three kinds, the only ones of the
// events stream cgworker creates.
func (n Names) EventSubjects() []string {
	out := make([]string, len(schemas.Kinds))
	for i, k := range schemas.Kinds {
		out[i] = n.EventSubject(k)
	}
	return out
}

// EventsWildcard covers every event subject, e.g. cg.events.>.
func (n Names) EventsWildcard() string { return n.Prefix + ".events.>" }

// UnknownKind is the dead-letter kind of an event on a subject that is no
// event kind's (README, "Dead letters").
const UnknownKind schemas.Kind = "unknown"

// DLQKindSubject is the single subject earlier versions published every
// dead letter of kind on, e.g. cg.dlq.activity. Letters there stay
// readable by `cgworker dlq`; nothing new is published there.
func (n Names) DLQKindSubject(k schemas.Kind) string { return n.Prefix + ".dlq." + string(k) }

// DLQKindWildcard covers the dead letters of kind, one subject each, e.g.
// cg.dlq.activity.>.
func (n Names) DLQKindWildcard(k schemas.Kind) string { return n.DLQKindSubject(k) + ".>" }

// DeadLetterSubject is the subject of the one dead letter of a message,
// e.g. cg.dlq.activity.CG_EVENTS-42-1700000000000000000, where letterID is
// deadletter.LetterID's. One subject per letter lets the publish demand
// that the subject be empty, so a letter is stored once, however late the
// message comes back.
func (n Names) DeadLetterSubject(k schemas.Kind, letterID string) string {
	return n.DLQKindSubject(k) + "." + letterID
}

// DLQKindOf returns the kind token of a dead-letter subject (new or
// earlier form) and whether subject is one.
func (n Names) DLQKindOf(subject string) (schemas.Kind, bool) {
	rest, ok := strings.CutPrefix(subject, n.Prefix+".dlq.")
	if !ok || rest == "" {
		return "", false
	}
	tok, _, _ := strings.Cut(rest, ".")
	return schemas.Kind(tok), true
}

// EventKindOf returns the kind whose event subject subject is, and false
// when it is no kind's (an unknown subject).
func (n Names) EventKindOf(subject string) (schemas.Kind, bool) {
	for _, k := range schemas.Kinds {
		if subject == n.EventSubject(k) {
			return k, true
		}
	}
	return "", false
}

// DLQBodiesBucket is the object store of the bodies and headers of dead
// letters too large to store whole, e.g. CG_DLQ_BODIES.
func (n Names) DLQBodiesBucket() string { return n.upper() + "_DLQ_BODIES" }

// UnknownConsumer is the durable consumer that dead-letters the events on
// subject, one unknown subject of the events stream: "cgworker-unknown-"
// and the first 16 hex digits of the subject's SHA-256, e.g.
// cgworker-unknown-8b1f6a4e2c0d9e37 (a subject may hold characters a
// consumer name may not).
func (n Names) UnknownConsumer(subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return unknownConsumerPrefix + hex.EncodeToString(sum[:8])
}

// IsUnknownConsumer reports whether name is an UnknownConsumer's.
func (n Names) IsUnknownConsumer(name string) bool {
	return len(name) == len(unknownConsumerPrefix)+16 && strings.HasPrefix(name, unknownConsumerPrefix)
}

const unknownConsumerPrefix = "cgworker-unknown-"

// SharedUnknownConsumer is the consumer the unknown subjects beyond
// StreamConfig.UnknownConsumers share.
func (n Names) SharedUnknownConsumer() string { return "cgworker-unknown-shared" }

// LegacyUnknownConsumer is the one consumer of every unknown subject that
// cgworker used before it had one per subject; EnsureUnknownConsumers
// takes its place.
func (n Names) LegacyUnknownConsumer() string { return "cgworker-unknown" }

// DLQWildcard covers every dead-letter subject, e.g. cg.dlq.>.
func (n Names) DLQWildcard() string { return n.Prefix + ".dlq.>" }

// ResponsesSubject is where synced responses go, e.g. cg.responses.
func (n Names) ResponsesSubject() string { return n.Prefix + ".responses" }

// Consumer is the durable consumer of kind, e.g. cgworker-activity.
func (n Names) Consumer(k schemas.Kind) string { return "cgworker-" + string(k) }
