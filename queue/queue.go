package queue

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/schemas"
)

// ConnConfig is how to reach NATS (CONTRACT.md section 2).
type ConnConfig struct {
	URL      string // comma-separated server URLs
	Name     string // client connection name
	Creds    string // NATS_CREDS: credentials file
	NKey     string // NATS_NKEY: nkey seed file
	User     string
	Password string // secret
	Token    string // secret
	TLSCA    string
	TLSCert  string
	TLSKey   string
	Logger   *slog.Logger
	// OnStateChange, when set, is called on disconnect (false) and
	// reconnect (true) so readiness can follow the connection.
	OnStateChange func(connected bool)
}

// Connect dials NATS with infinite reconnects and logged connection events.
func Connect(ctx context.Context, cfg ConnConfig) (*nats.Conn, error) { panic("TODO") }

// StreamConfig are the settings of streams the worker creates.
type StreamConfig struct {
	Names   Names
	AckWait time.Duration // CG_ACK_WAIT; CG_DLQ's duplicate window is at least twice it
}

// EnsureStreams creates CG_EVENTS, CG_DLQ and CG_RESPONSES when missing
// (file storage) and leaves existing ones as they are.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) error {
	panic("TODO")
}

// EnsureConsumer returns the durable pull consumer of kind on the events
// stream, creating it when missing (explicit ack, ack wait, unlimited
// deliveries, no inactivity threshold). An existing consumer is used as it
// is, except that one with a delivery limit is refused with an error
// naming it.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, cfg StreamConfig, kind schemas.Kind) (jetstream.Consumer, error) {
	panic("TODO")
}

// EnsureSyncBucket returns the CG_SYNC key-value bucket, creating it when missing.
func EnsureSyncBucket(ctx context.Context, js jetstream.JetStream, names Names) (jetstream.KeyValue, error) {
	panic("TODO")
}
