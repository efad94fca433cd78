package responses

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/cgapi/flow"
	"github.com/cgworker/cgworker/queue"
)

// Defaults of the Config fields left zero, and of CG_SYNC_INTERVAL (whose
// zero disables the sync).
const (
	DefaultInterval   = time.Hour
	DefaultPerPage    = 1000
	DefaultLeaseTTL   = 30 * time.Second
	DefaultMaxElapsed = 5 * time.Minute
)

// Config configures a Sync. It follows worker.Config's conventions: a nil
// Logger discards, a nil TracerProvider or MeterProvider is the
// OpenTelemetry global.
type Config struct {
	Names queue.Names
	// Interval between polls (CG_SYNC_INTERVAL); 0 disables Run.
	Interval time.Duration
	// PerPage is the page size, 1..1000; 0 means DefaultPerPage.
	PerPage int
	// With are the with[] expansions (CG_SYNC_WITH).
	With []string
	// Filter is the outbound filter reference (CG_SYNC_FILTER), "" for none.
	Filter string
	// LeaseTTL is how long the poller's lease lasts without renewal; it is
	// renewed every third of it. 0 means DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Replica names the lease holder and must be unique among running
	// Syncs; "" means hostname, pid and a random suffix.
	Replica string
	// MaxElapsed is the retry budget of one API page request or one
	// publish (CG_RETRY_MAX_ELAPSED); 0 means DefaultMaxElapsed.
	MaxElapsed time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// TracerProvider; nil means the OpenTelemetry global provider.
	TracerProvider trace.TracerProvider
	// MeterProvider records the sync's metrics (cgworker.sync.*); nil means
	// the OpenTelemetry global provider.
	MeterProvider metric.MeterProvider
	// Hooks are called on progress, after the metrics are recorded.
	Hooks Hooks
	// Flow is the sync endpoint's flow controller, shared with the
	// replica's other API calls (README, "When the API is in trouble");
	// nil means one of the sync's own.
	Flow *flow.Controller

	// retryInitial is the first backoff interval; tests shorten it.
	retryInitial time.Duration
	// publishTimeout bounds one publish and one tail read, so a lost
	// acknowledgement costs seconds even under a long-lived context.
	publishTimeout time.Duration
	// afterPublish, when set, is called with the pass's context after each
	// acknowledged publish; tests use it to stop a pass between a publish
	// and its cursor store.
	afterPublish func(ctx context.Context, number int64)
}

// Hooks are optional callbacks for metrics. They are called from the
// polling goroutine and must not block.
type Hooks struct {
	OnPublished func(n int)               // responses published by one page
	OnSkipped   func(n int)               // responses of one page already published earlier
	OnCursor    func(cursor string)       // a cursor was stored
	OnSuccess   func(at time.Time)        // a pass completed
	OnFailure   func(err error)           // a pass failed (not counting ErrLeaseHeld or shutdown)
	OnPass      func(r Result, err error) // every pass, after the above
}

// Result is what one pass did.
type Result struct {
	Pages      int    // pages fetched with data
	Fetched    int    // responses received
	Published  int    // responses published
	Skipped    int    // responses not published because their number was already published
	Duplicates int    // publishes the stream reported as duplicates (expected 0)
	Cursor     string // stored cursor at the end
	LastNumber int64  // last number published in the current generation
}

// Sync copies survey responses from the API to the responses stream.
type Sync struct {
	client *cgapi.Client
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	cfg    Config
	log    *slog.Logger
	tracer trace.Tracer

	mu sync.Mutex // one pass at a time per Sync
}

// New returns a Sync that pages through client's responses, publishes them
// with js and keeps its lease and state in kv (the CG_SYNC bucket). The
// CG_RESPONSES stream must exist (queue.EnsureStreams).
func New(client *cgapi.Client, js jetstream.JetStream, kv jetstream.KeyValue, cfg Config) *Sync {
	if cfg.Names.Prefix == "" {
		cfg.Names = queue.NewNames("")
	}
	if cfg.PerPage <= 0 {
		cfg.PerPage = DefaultPerPage
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.MaxElapsed <= 0 {
		cfg.MaxElapsed = DefaultMaxElapsed
	}
	if cfg.retryInitial <= 0 {
		cfg.retryInitial = time.Second
	}
	if cfg.publishTimeout <= 0 {
		cfg.publishTimeout = 5 * time.Second
	}
	if cfg.Replica == "" {
		cfg.Replica = replicaID()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = otel.GetTracerProvider()
	}
	if cfg.MeterProvider == nil {
		cfg.MeterProvider = otel.GetMeterProvider()
	}
	if hooks, err := metricHooks(cfg.MeterProvider, cfg.Hooks); err != nil {
		// Only a provider that refuses these fixed instrument names gets
		// here; the sync runs without its metrics rather than not at all.
		cfg.Logger.Warn("sync metrics not recorded", "error", err)
	} else {
		cfg.Hooks = hooks
	}
	if cfg.Flow == nil {
		cfg.Flow = flow.NewController(flow.Sync, flow.Config{Concurrency: 1, Logger: cfg.Logger})
	}
	return &Sync{
		client: client,
		js:     js,
		kv:     kv,
		cfg:    cfg,
		log:    cfg.Logger.With("component", "responses-sync"),
		tracer: cfg.TracerProvider.Tracer("github.com/cgworker/cgworker/worker/responses"),
	}
}

func replicaID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// Run polls at once and then every Interval until ctx is done, and returns
// nil then. A failed pass is logged and recorded in the state; the next
// poll resumes from the stored cursor. With Interval 0 it returns at once.
func (s *Sync) Run(ctx context.Context) error {
	if s.cfg.Interval <= 0 {
		s.log.Info("responses sync disabled (interval 0)")
		return nil
	}
	for {
		start := time.Now()
		// Once logs and records its failures.
		if _, err := s.Once(ctx); errors.Is(err, ErrLeaseHeld) && ctx.Err() == nil {
			s.log.Debug("another replica is syncing", "error", err)
		}
		if flow.Sleep(ctx, s.cfg.Interval-time.Since(start)) != nil {
			return nil
		}
	}
}

// Once runs one full pass: it takes the lease, then fetches pages from the
// stored cursor until a page's data is empty or its cursor.next is missing,
// publishing each response not yet published and storing each page's
// cursor after all its publishes were acknowledged. It returns
// ErrLeaseHeld at once when another replica is polling.
func (s *Sync) Once(ctx context.Context) (res Result, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	ctx, span := s.tracer.Start(ctx, "responses.sync", trace.WithAttributes(
		attribute.String("cg.sync.replica", s.cfg.Replica)))
	defer func() {
		span.SetAttributes(
			attribute.Int("cg.sync.pages", res.Pages),
			attribute.Int("cg.sync.published", res.Published),
			attribute.Int("cg.sync.skipped", res.Skipped),
			attribute.String("cg.sync.cursor", res.Cursor))
		switch {
		case errors.Is(err, ErrLeaseHeld):
			span.SetAttributes(attribute.Bool("cg.sync.lease_held", true))
		case err != nil:
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
		if err != nil && !errors.Is(err, ErrLeaseHeld) && ctx.Err() == nil {
			if h := s.cfg.Hooks.OnFailure; h != nil {
				h(err)
			}
		}
		if h := s.cfg.Hooks.OnPass; h != nil {
			h(res, err)
		}
	}()

	l, err := acquireLease(ctx, s.kv, s.cfg.Replica, s.cfg.LeaseTTL, s.log)
	if err != nil {
		return Result{}, err
	}
	passCtx, cancel := context.WithCancelCause(ctx)
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		l.keep(passCtx, cancel)
	}()
	p := &pass{s: s, res: &res}
	err = p.run(passCtx)
	cancel(nil)
	<-kept

	// Writes after the pass (error record, lease release) must happen even
	// when ctx was cancelled, so a shutdown leaves no stale lease behind.
	after, cancelAfter := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancelAfter()
	defer l.release(after)

	if err == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		return res, context.Cause(ctx)
	}
	if cause := context.Cause(passCtx); errors.Is(cause, ErrLeaseLost) {
		err = cause
	}
	level := slog.LevelError
	if errors.Is(err, ErrLeaseLost) || errors.Is(err, ErrStateChanged) || errors.Is(err, ErrConcurrentWriter) {
		// Another writer's doing: this pass stepped aside, nothing is wrong.
		level = slog.LevelWarn
	}
	s.log.Log(ctx, level, "responses sync pass failed", "error", err, "cursor", res.Cursor,
		"published", res.Published, "skipped", res.Skipped)
	if !errors.Is(err, ErrLeaseLost) && !errors.Is(err, ErrStateChanged) {
		p.recordFailure(after, err)
	}
	return res, err
}

// pass is the working state of one Once.
type pass struct {
	s      *Sync
	res    *Result
	stream jetstream.Stream

	st     storedState
	rev    uint64 // revision of st in the bucket, 0 when absent
	loaded bool   // st was read, so a failure can be recorded in it

	lastSeq    uint64 // stream sequence of the last message on the subject
	lastNumber int64  // highest number published in this generation
	published  bool   // this pass has published something
}

func (p *pass) run(ctx context.Context) error {
	s := p.s
	var err error
	if p.st, p.rev, err = loadState(ctx, s.kv); err != nil {
		return err
	}
	p.loaded = true
	p.res.Cursor = p.st.Cursor
	p.res.LastNumber = p.st.LastNumber
	if p.stream, err = s.js.Stream(ctx, s.cfg.Names.ResponsesStream()); err != nil {
		return fmt.Errorf("responses: stream %s: %w", s.cfg.Names.ResponsesStream(), err)
	}
	t, err := p.readTail(ctx)
	if err != nil {
		return err
	}
	p.lastSeq = t.seq
	if t.ours && t.gen > p.st.Resets {
		// The state is behind the stream: the bucket was recreated, its
		// state key deleted, or an old copy of it restored. The stream is
		// the record of what was published, so carry on its generation
		// rather than publish everything again. The state's cursor and
		// number belong to an older generation: start from the beginning
		// and let the skip rule pass over what the stream already holds.
		s.log.Warn("sync state is behind the responses stream; continuing from the stream's last message",
			"state_generation", p.st.Resets, "stream_generation", t.gen, "last_number", t.number)
		p.st.Resets, p.st.Cursor, p.st.LastNumber = t.gen, "", 0
	}
	p.lastNumber = p.st.LastNumber
	if t.ours && t.gen == p.st.Resets && t.number > p.lastNumber {
		// A previous pass published past its last stored cursor (it
		// crashed, or lost its lease, before the store).
		p.lastNumber = t.number
	}
	s.log.Debug("responses sync pass starting", "cursor", p.st.Cursor, "last_number", p.lastNumber,
		"generation", p.st.Resets, "last_seq", p.lastSeq)

	cursor := p.st.Cursor
	for {
		next, more, err := p.page(ctx, cursor)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		cursor = next
	}

	st := p.st
	st.LastSuccess = time.Now().UTC()
	if p.rev, err = putState(ctx, s.kv, st, p.rev); err != nil {
		return err
	}
	p.st = st
	if h := s.cfg.Hooks.OnSuccess; h != nil {
		h(st.LastSuccess)
	}
	s.log.Info("responses sync pass done", "pages", p.res.Pages, "fetched", p.res.Fetched,
		"published", p.res.Published, "skipped", p.res.Skipped, "cursor", p.st.Cursor,
		"last_number", p.st.LastNumber)
	return nil
}

// page fetches the page at cursor, publishes what is new in it and stores
// its cursor. more reports whether there is a next page to fetch.
func (p *pass) page(ctx context.Context, cursor string) (next string, more bool, err error) {
	s := p.s
	ctx, span := s.tracer.Start(ctx, "responses.page", trace.WithAttributes(
		attribute.String("cg.sync.cursor", cursor)))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()

	pg, err := p.fetch(ctx, cursor)
	if err != nil {
		return "", false, err
	}
	span.SetAttributes(attribute.Int("cg.sync.count", len(pg.Data)), attribute.String("cg.sync.next", pg.Next))
	if len(pg.Data) == 0 {
		s.log.Debug("responses page empty: up to date", "cursor", cursor)
		return "", false, nil
	}
	p.res.Pages++
	p.res.Fetched += len(pg.Data)
	nums, err := pageNumbers(pg.Data)
	if err != nil {
		return "", false, fmt.Errorf("responses: page at cursor %q not published: %w", cursor, err)
	}

	published, skipped, dups, err := p.publishPage(ctx, pg.Data, nums, cursor)
	p.res.Published += published
	p.res.Skipped += skipped + dups
	p.res.Duplicates += dups
	if err != nil {
		return "", false, err
	}
	span.SetAttributes(attribute.Int("cg.sync.published", published), attribute.Int("cg.sync.skipped", skipped+dups))

	// Every publish of the page is acknowledged: store its cursor. A
	// missing cursor.next keeps the stored one, so the page is fetched again
	// next time and its published numbers are skipped.
	st := p.st
	if pg.Next != "" {
		st.Cursor = pg.Next
	}
	if p.lastNumber > st.LastNumber {
		st.LastNumber = p.lastNumber
	}
	if err := ctx.Err(); err != nil {
		return "", false, context.Cause(ctx)
	}
	if p.rev, err = putState(ctx, s.kv, st, p.rev); err != nil {
		return "", false, err
	}
	p.st = st
	p.res.Cursor, p.res.LastNumber = st.Cursor, st.LastNumber
	if h := s.cfg.Hooks.OnPublished; h != nil && published > 0 {
		h(published)
	}
	if h := s.cfg.Hooks.OnSkipped; h != nil && skipped+dups > 0 {
		h(skipped + dups)
	}
	if h := s.cfg.Hooks.OnCursor; h != nil {
		h(st.Cursor)
	}
	s.log.Info("responses page synced", "count", len(pg.Data), "cursor", cursor, "next", pg.Next,
		"published", published, "skipped", skipped, "duplicates", dups, "last_number", st.LastNumber)

	switch {
	case pg.Next == "":
		s.log.Info("responses page without cursor.next; stored cursor kept", "cursor", st.Cursor)
		return "", false, nil
	case pg.Next == cursor:
		// The API handed back the cursor it was given: asking again would
		// loop.
		return "", false, nil
	}
	return pg.Next, true, nil
}

// publishPage publishes the responses of a page whose numbers are above
// the last published, in order, each acknowledged before the next.
// skipped counts those not above it; dups those the stream already held
// under their message id.
func (p *pass) publishPage(ctx context.Context, data []json.RawMessage, nums []int64, cursor string) (published, skipped, dups int, err error) {
	for i, raw := range data {
		n := nums[i]
		if n <= p.lastNumber {
			if p.published {
				// Numbers are assumed to grow along the cursor; one that
				// does not after this pass published is out of order.
				p.s.log.Warn("response number not above the last published; skipped", "number", n,
					"last_number", p.lastNumber, "cursor", cursor)
			}
			skipped++
			continue
		}
		dup, err := p.publish(ctx, raw, n)
		if err != nil {
			return published, skipped, dups, err
		}
		if dup {
			dups++
		} else {
			published++
			p.published = true
		}
		p.lastNumber = n
		if p.s.cfg.afterPublish != nil {
			p.s.cfg.afterPublish(ctx, n)
		}
	}
	return published, skipped, dups, nil
}

// recordFailure stores err as the last error, if the state is still where
// this pass left it (otherwise another writer owns it now). A pass that
// could not read the state has nowhere to record its failure.
func (p *pass) recordFailure(ctx context.Context, cause error) {
	if !p.loaded {
		return
	}
	st := p.st
	st.LastError = cause.Error()
	st.LastErrorAt = time.Now().UTC()
	if _, err := putState(ctx, p.s.kv, st, p.rev); err != nil {
		p.s.log.Warn("could not record the sync error in the state", "error", err)
	}
}
