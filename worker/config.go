package worker

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cgworker/cgworker/cgapi/flow"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/schemas"
	"github.com/cgworker/cgworker/worker/health"
	"github.com/cgworker/cgworker/worker/responses"
)

// Defaults of the Config fields left zero. They are also the defaults of
// the settings (README, "Configuration"): cmd/cgworker's settings table
// shows these values rather than repeating them.
const (
	DefaultConcurrency     = 64
	DefaultRetryMaxElapsed = responses.DefaultMaxElapsed // one budget for the worker and the sync
	DefaultContactWait     = 2 * time.Minute
	DefaultShutdownTimeout = 25 * time.Second
	// The ack wait's default is queue.DefaultAckWait: the streams and
	// consumers are made there.
)

// Config configures a Worker. Zero values take the defaults above. The
// sync's responses.Config follows the same conventions: a nil Logger
// discards, a nil TracerProvider or MeterProvider is the OpenTelemetry
// global.
type Config struct {
	Names queue.Names

	// Kinds to consume. Account and contact need a configuration
	// reference; the caller leaves them out when it has none.
	Kinds []schemas.Kind

	AccountConfiguration string // CG_ACCOUNT_CONFIGURATION
	ContactConfiguration string // CG_CONTACT_CONFIGURATION

	Concurrency     int           // CG_CONCURRENCY: most PUTs in flight per endpoint
	RateLimit       float64       // CG_RATE_LIMIT: most API calls a second; 0 none
	AckWait         time.Duration // CG_ACK_WAIT
	RetryMaxElapsed time.Duration // CG_RETRY_MAX_ELAPSED
	ContactWait     time.Duration // CG_CONTACT_WAIT
	ShutdownTimeout time.Duration // CG_SHUTDOWN_TIMEOUT

	// RetryInitialInterval and RetryMaxInterval shape the exponential
	// backoff between attempts (defaults 500ms and 30s).
	RetryInitialInterval time.Duration
	RetryMaxInterval     time.Duration

	// Batch is the most messages one pull asks for. Pulls never ask for
	// more than there are free slots, so a replica holds no message it is
	// not working on. Default: Concurrency, at most 64.
	Batch int

	// Lookahead is how many fetched messages may wait for a free handler,
	// so a finished PUT finds its next message at once instead of a fetch
	// round trip later. They are reported in progress while they wait, so
	// their ack wait never runs out. Default: twice Concurrency, at least
	// 1. A larger look-ahead means larger fetches: at 20 ms API latency a
	// replica made 88 pull requests per 1,000 events with a quarter of
	// Concurrency, 29 with Concurrency, and 16 with twice Concurrency, as
	// many as a plain Consume with a buffer of twice the concurrency, for
	// about a fifth less CPU per event than with Concurrency (README,
	// "Performance").
	Lookahead int

	// UnknownSubjectsInterval is how often the events stream is searched
	// for events on subjects that are no kind's, to dead-letter them
	// (default 30s).
	UnknownSubjectsInterval time.Duration

	Logger         *slog.Logger         // nil: discard
	TracerProvider trace.TracerProvider // nil: the otel global
	MeterProvider  metric.MeterProvider // nil: the otel global
	Health         *health.Health       // nil: readiness not reported
	// Flow is the replica's flow control, shared with the sync (README,
	// "When the API is in trouble"); nil: the worker makes its own from
	// Concurrency and RateLimit, and reports its breakers to Health.
	Flow      *flow.Set
	OnSettled func(Settled) // optional, called after each message is settled (dev --demo narrates)
}

// maxNakDelay caps the delay of a message handed back to JetStream.
const maxNakDelay = 5 * time.Minute

func (c Config) withDefaults() Config {
	if c.Names.Prefix == "" {
		c.Names = queue.NewNames("")
	}
	if len(c.Kinds) == 0 {
		c.Kinds = []schemas.Kind{schemas.Activity}
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.AckWait <= 0 {
		c.AckWait = queue.DefaultAckWait
	}
	if c.RetryMaxElapsed <= 0 {
		c.RetryMaxElapsed = DefaultRetryMaxElapsed
	}
	if c.ContactWait <= 0 {
		c.ContactWait = DefaultContactWait
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.RetryInitialInterval <= 0 {
		c.RetryInitialInterval = 500 * time.Millisecond
	}
	if c.RetryMaxInterval <= 0 {
		c.RetryMaxInterval = 30 * time.Second
	}
	if c.Lookahead <= 0 {
		c.Lookahead = max(2*c.Concurrency, 1)
	}
	if c.Batch <= 0 {
		c.Batch = min(c.Concurrency, 64)
	}
	if c.UnknownSubjectsInterval <= 0 {
		c.UnknownSubjectsInterval = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
