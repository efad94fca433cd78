package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/cgworker/cgworker/worker/status"
)

// errAttention: the status report needs attention; exit 1 without another
// message (each item already has its line).
var errAttention = fmt.Errorf("%w: needs attention", errInvalidInput)

func statusCmd(ctx context.Context, args []string, e env) error {
	fs := newFlags("status", e)
	jsonOut := fs.Bool("json", false, "print the report as one JSON object")
	maxAge := fs.Duration("max-pending-age", 15*time.Minute, "an event waiting longer than this needs attention")
	window := fs.Duration("dead-letter-window", time.Hour, "dead letters stored within this need attention")
	c := newConfig(fs, e.lookupEnv, slices.Concat(natsSettings, logSettings, []string{"CG_SYNC_INTERVAL"})...)
	if err := parse(fs, args); err != nil {
		return err
	}
	log := c.logger(e.stderr)
	names := c.names()
	nconf := c.nats(log)
	interval := c.duration("CG_SYNC_INTERVAL")
	if c.err != nil {
		return c.err
	}
	js, closeNATS, err := connectJS(ctx, nconf)
	if err != nil {
		return err
	}
	defer closeNATS()
	r, err := status.Read(ctx, js, status.Config{Names: names, MaxPendingAge: *maxAge, DeadLetterWindow: *window, SyncInterval: interval})
	if err != nil {
		return err
	}
	if *jsonOut {
		err = json.NewEncoder(e.stdout).Encode(r)
	} else {
		err = r.WriteText(e.stdout)
	}
	if err != nil {
		return err
	}
	if !r.Healthy() {
		return errAttention
	}
	return nil
}

// healthcheckCmd asks this replica's /readyz (CG_HTTP_ADDR) and exits 0
// when ready, 1 otherwise: a health check for runtimes without a shell or
// curl, such as the distroless image under compose.
func healthcheckCmd(ctx context.Context, args []string, e env) error {
	fs := newFlags("healthcheck", e)
	url := fs.String("url", "", "readiness URL to ask (default: /readyz on the port of CG_HTTP_ADDR)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	c := newConfig(fs, e.lookupEnv, "CG_HTTP_ADDR")
	if err := parse(fs, args); err != nil {
		return err
	}
	addr := c.str("CG_HTTP_ADDR")
	if c.err != nil {
		return c.err
	}
	if *url == "" {
		u, err := status.ReadyURL(addr)
		if err != nil {
			return &settingError{env: "CG_HTTP_ADDR", msg: err.Error()}
		}
		*url = u
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := status.CheckReady(ctx, &http.Client{}, *url); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s: no answer within %s", *url, *timeout)
		}
		return err
	}
	fmt.Fprintln(e.stdout, "ready")
	return nil
}
