package status

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/schemas"
)

// Config says where to look and what needs attention.
type Config struct {
	Names queue.Names
	// MaxPendingAge: an event left unprocessed for longer needs attention.
	// One snapshot cannot see lag growing, so the age of the oldest event
	// stands in for it. 0 means 15 minutes.
	MaxPendingAge time.Duration
	// DeadLetterWindow: dead letters stored within it need attention. 0
	// means one hour.
	DeadLetterWindow time.Duration
	// SyncInterval is the sync's CG_SYNC_INTERVAL: its last success older
	// than twice this is stale. 0 means the sync is off and is not checked.
	SyncInterval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Names.Prefix == "" {
		c.Names = queue.NewNames("")
	}
	if c.MaxPendingAge <= 0 {
		c.MaxPendingAge = 15 * time.Minute
	}
	if c.DeadLetterWindow <= 0 {
		c.DeadLetterWindow = time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Report is the state of the system at one moment. Its JSON form is what
// `cgworker status --json` prints.
type Report struct {
	At          time.Time   `json:"at"`
	Consumers   []Consumer  `json:"consumers"`
	DeadLetters DeadLetters `json:"dead_letters"`
	Sync        *Sync       `json:"sync,omitempty"`
	// Missing lists what is not there (a stream, consumer or bucket): read
	// only, nothing is created.
	Missing []string `json:"missing,omitempty"`
	// Attention holds one line per item that needs an operator, saying why.
	Attention []string `json:"attention"`
}

// Healthy reports whether nothing needs attention.
func (r *Report) Healthy() bool { return len(r.Attention) == 0 }

func (r *Report) attention(format string, args ...any) {
	r.Attention = append(r.Attention, fmt.Sprintf(format, args...))
}

// Read gathers the report. Only a failure to talk to NATS is an error;
// everything missing or unhealthy is in the report.
func Read(ctx context.Context, js jetstream.JetStream, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	r := &Report{At: cfg.Now().UTC(), Attention: []string{}}
	if err := readConsumers(ctx, js, cfg, r); err != nil {
		return nil, err
	}
	if err := readDeadLetters(ctx, js, cfg, r); err != nil {
		return nil, err
	}
	if err := readSync(ctx, js, cfg, r); err != nil {
		return nil, err
	}
	return r, nil
}

// eventsStream finds the events stream: by its name, else (an operator's
// stream under another name) by the subject of the first kind.
func eventsStream(ctx context.Context, js jetstream.JetStream, names queue.Names) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, names.EventsStream())
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return s, err
	}
	name, err := js.StreamNameBySubject(ctx, names.EventSubject(schemas.Kinds[0]))
	if err != nil {
		return nil, jetstream.ErrStreamNotFound
	}
	return js.Stream(ctx, name)
}
