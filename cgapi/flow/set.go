package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"
)

// The endpoint families, as the metrics' endpoint label names them.
const (
	Activities = "activities"
	Records    = "records"
	Sync       = "sync"
	Token      = "token"
)

// Endpoints lists the endpoint families in a fixed order.
var Endpoints = []string{Activities, Records, Sync, Token}

// Config configures a Set.
type Config struct {
	// Concurrency is the most calls in flight per endpoint
	// (CG_CONCURRENCY); the adaptive limit stays between 1 and it.
	Concurrency int
	// RateLimit is the most calls a second of the whole replica
	// (CG_RATE_LIMIT); 0 means no fixed limit.
	RateLimit float64
	// Logger receives one line when a breaker opens and one when it
	// closes; nil discards them.
	Logger *slog.Logger
	// MeterProvider receives the per-endpoint metrics; nil means the
	// OpenTelemetry global.
	MeterProvider metric.MeterProvider
}

// Set is the flow control of one replica: a Controller per endpoint
// family, shared by the worker and the sync.
type Set struct {
	byName     map[string]*Controller
	registered metric.Registration
}

// NewSet returns the controllers of one replica and registers their
// metrics.
func NewSet(cfg Config) (*Set, error) {
	cfg = cfg.withDefaults()
	limiter := cfg.limiter()
	s := &Set{byName: make(map[string]*Controller, len(Endpoints))}
	for _, name := range Endpoints {
		s.byName[name] = newController(name, cfg.Concurrency, limiter, cfg.Logger)
	}
	if err := s.register(cfg.MeterProvider); err != nil {
		return nil, err
	}
	return s, nil
}

// NewController returns a controller of its own, outside any Set and
// without metrics, for a component run alone (tests, a sync without a
// worker).
func NewController(name string, cfg Config) *Controller {
	cfg = cfg.withDefaults()
	return newController(name, cfg.Concurrency, cfg.limiter(), cfg.Logger)
}

func (cfg Config) withDefaults() Config {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// limiter is CG_RATE_LIMIT's limiter, nil for none. Its burst is a tenth
// of a second's calls, so a replica never sends a second's worth at once.
func (cfg Config) limiter() *rate.Limiter {
	if cfg.RateLimit <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(cfg.RateLimit), max(int(cfg.RateLimit/10), 1))
}

// Endpoint returns the controller of an endpoint family; it panics on a
// name that is not one of Endpoints, a programming error.
func (s *Set) Endpoint(name string) *Controller {
	c, ok := s.byName[name]
	if !ok {
		panic("flow: unknown endpoint " + name)
	}
	return c
}

// Unavailable returns nil while every breaker is closed, else an error
// naming each open endpoint, since when and why: /readyz reports it.
func (s *Set) Unavailable() error {
	var errs []error
	for _, name := range Endpoints {
		snap := s.byName[name].Snapshot()
		if snap.State != Closed {
			errs = append(errs, fmt.Errorf("API breaker open for %s since %s: %s",
				name, snap.OpenSince.UTC().Format(time.RFC3339), snap.Cause))
		}
	}
	return errors.Join(errs...)
}

// Close unregisters the metrics.
func (s *Set) Close() {
	if s.registered != nil {
		_ = s.registered.Unregister()
	}
}

// register publishes, per endpoint: cgworker_api_breaker_state,
// cgworker_api_concurrency_limit, cgworker_api_waiting and
// cgworker_api_breaker_open_seconds_total.
func (s *Set) register(mp metric.MeterProvider) error {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter("github.com/cgworker/cgworker/cgapi/flow")
	var errs [4]error
	var state, limit, waiting metric.Int64ObservableGauge
	var open metric.Float64ObservableCounter
	state, errs[0] = m.Int64ObservableGauge("cgworker.api.breaker_state",
		metric.WithDescription("Circuit breaker of an API endpoint: 0 closed, 1 open, 2 half-open (a probe in flight)."))
	limit, errs[1] = m.Int64ObservableGauge("cgworker.api.concurrency_limit",
		metric.WithDescription("Adaptive limit of API calls in flight for an endpoint."))
	waiting, errs[2] = m.Int64ObservableGauge("cgworker.api.waiting",
		metric.WithDescription("API calls waiting for their endpoint: breaker open, paused by a rate limit, or at the concurrency limit."))
	open, errs[3] = m.Float64ObservableCounter("cgworker.api.breaker_open",
		metric.WithUnit("s"),
		metric.WithDescription("Time the endpoint's breaker has been open."))
	if err := errors.Join(errs[:]...); err != nil {
		return err
	}
	sets := make(map[string]metric.ObserveOption, len(Endpoints))
	for _, name := range Endpoints {
		sets[name] = metric.WithAttributeSet(attribute.NewSet(attribute.String("endpoint", name)))
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, name := range Endpoints {
			snap, set := s.byName[name].Snapshot(), sets[name]
			o.ObserveInt64(state, int64(snap.State), set)
			o.ObserveInt64(limit, int64(snap.Limit), set)
			o.ObserveInt64(waiting, int64(snap.Waiting), set)
			o.ObserveFloat64(open, snap.OpenTotal.Seconds(), set)
		}
		return nil
	}, state, limit, waiting, open)
	s.registered = reg
	return err
}
