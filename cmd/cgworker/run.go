package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/cgapi/flow"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/schemas"
	"github.com/cgworker/cgworker/worker"
	"github.com/cgworker/cgworker/worker/health"
	"github.com/cgworker/cgworker/worker/responses"
	"github.com/cgworker/cgworker/worker/telemetry"
)

// runConfig is everything `run` (and `dev`) needs, read and validated once.
type runConfig struct {
	nats      queue.ConnConfig
	api       cgapi.Config
	worker    worker.Config
	sync      responses.Config
	validator *schemas.Validator
	httpAddr  string
	consume   bool
	syncOn    bool

	// ready, when set, is called once the HTTP server listens and the
	// worker is started (dev prints its banner then).
	ready func(httpAddr string)
}

var runSettings = slices.Concat(natsSettings, apiSettings, workerSettings, syncSettings, logSettings, settingsIn(runGroup))

func (c *config) sync(log *slog.Logger, names queue.Names) responses.Config {
	return responses.Config{
		Names:      names,
		Interval:   c.duration("CG_SYNC_INTERVAL"),
		PerPage:    c.integer("CG_SYNC_PER_PAGE"),
		With:       c.list("CG_SYNC_WITH"),
		Filter:     c.str("CG_SYNC_FILTER"),
		MaxElapsed: c.duration("CG_RETRY_MAX_ELAPSED"),
		Logger:     log,
	}
}

func runCmd(ctx context.Context, args []string, e env) error {
	fs := newFlags("run", e)
	c := newConfig(fs, e.lookupEnv, runSettings...)
	if err := parse(fs, args); err != nil {
		return err
	}
	log := c.logger(e.stderr)
	rc := runConfig{consume: c.boolean("CG_CONSUME"), syncOn: c.boolean("CG_SYNC")}
	rc.nats = c.nats(log)
	rc.api = c.api()
	rc.worker = c.worker(log)
	rc.sync = c.sync(log, rc.worker.Names)
	rc.validator = c.validator()
	rc.httpAddr = c.str("CG_HTTP_ADDR")
	if c.err != nil {
		return c.err
	}
	if !rc.consume && (!rc.syncOn || rc.sync.Interval == 0) {
		return &settingError{env: "CG_CONSUME", msg: "nothing to do: consuming and the sync are both off"}
	}
	return serve(ctx, rc, log)
}

// serve runs the worker and the sync until ctx is cancelled, then shuts
// down in order: stop consuming and drain, stop the sync, close NATS, flush
// telemetry.
func serve(ctx context.Context, rc runConfig, log *slog.Logger) error {
	// GOGC=400: the live heap is about 2 MiB, so the goal is the runtime's
	// floor, 4 MiB x GOGC/100 = 16 MiB. Against the runtime's 100 that is
	// about 12 MiB more resident memory for about 7% less CPU per event,
	// and it keeps exporting traces at 10% sampling within 1.15x the cost
	// of exporting none (DESIGN.md, "Per-event cost and memory"). An
	// operator's GOGC (or GOMEMLIMIT) still rules.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(400)
	}
	tel, err := telemetry.Setup(ctx, telemetry.Options{ServiceVersion: version})
	if err != nil {
		return fmt.Errorf("OpenTelemetry: %w", err)
	}
	// Export failures (an unreachable collector) go to the structured log,
	// not to stderr as bare lines.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("OpenTelemetry export", "error", err)
	}))
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()

	syncOn := rc.syncOn && rc.sync.Interval > 0
	ready := health.New(rc.consume, syncOn)
	if err := tel.ObserveReadiness(ready.Ready); err != nil {
		return err
	}
	rc.nats.OnStateChange = ready.SetNATS
	nc, err := queue.Connect(ctx, rc.nats)
	if err != nil {
		return err
	}
	defer nc.Close()
	ready.SetNATS(nc.IsConnected())
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	names := rc.worker.Names
	qcfg := queue.StreamConfig{Names: names, AckWait: rc.worker.AckWait}
	if err := queue.EnsureStreams(ctx, js, qcfg); err != nil {
		return err
	}

	if rc.api.Transport == nil {
		// Keep cgapi's connection pool: otelhttp would fall back to
		// http.DefaultTransport, 2 idle connections per host.
		rc.api.Transport = cgapi.NewTransport()
	}
	rc.api.Transport = telemetry.HTTPTransport(rc.api.Transport, tel.TracerProvider, nil)
	// One flow controller per API endpoint, shared by the worker, the sync
	// and the token fetches (README, "When the API is in trouble").
	api, err := flow.NewSet(flow.Config{Concurrency: rc.worker.Concurrency, RateLimit: rc.worker.RateLimit, Logger: log, MeterProvider: tel.MeterProvider})
	if err != nil {
		return err
	}
	defer api.Close()
	ready.WatchAPI(api.Unavailable)
	rc.api.TokenCall = api.Endpoint(flow.Token).Run
	client, err := cgapi.New(rc.api)
	if err != nil {
		return &settingError{msg: err.Error()}
	}

	var srv *http.Server
	httpAddr := ""
	if rc.httpAddr != "" {
		ln, err := net.Listen("tcp", rc.httpAddr)
		if err != nil {
			return &settingError{env: "CG_HTTP_ADDR", msg: err.Error()}
		}
		httpAddr = ln.Addr().String()
		srv = &http.Server{Handler: ready.Handler(tel.Metrics), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		log.Info("serving /healthz, /readyz, /metrics", "addr", httpAddr)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	if rc.consume {
		wcfg := rc.worker
		wcfg.Health = ready
		wcfg.Flow = api
		wcfg.TracerProvider = tel.TracerProvider
		wcfg.MeterProvider = tel.MeterProvider
		w, err := worker.New(js, client, rc.validator, wcfg)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Run(runCtx); err != nil {
				errs <- fmt.Errorf("worker: %w", err)
				cancel()
			}
		}()
	}
	if syncOn {
		kv, err := queue.EnsureSyncBucket(ctx, js, qcfg)
		if err != nil {
			return err
		}
		ready.SetSyncBound(true)
		scfg := rc.sync
		scfg.TracerProvider = tel.TracerProvider
		scfg.MeterProvider = tel.MeterProvider
		scfg.Flow = api.Endpoint(flow.Sync)
		s := responses.New(client, js, kv, scfg)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("sync: %w", err)
				cancel()
			}
		}()
	}
	if rc.ready != nil {
		rc.ready(httpAddr)
	}

	<-runCtx.Done()
	ready.SetDraining()
	wg.Wait()
	if srv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(sctx)
		scancel()
	}
	if err := nc.Drain(); err != nil {
		log.Warn("draining NATS connection", "error", err)
	}
	close(errs)
	var runErr error
	for err := range errs {
		runErr = errors.Join(runErr, err)
	}
	if runErr == nil {
		log.Info("stopped cleanly")
	}
	return runErr
}
