package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/worker/responses"
)

func syncCmd(ctx context.Context, args []string, e env) error {
	fs := newFlags("sync", e)
	once := fs.Bool("once", false, "one full sync pass, then exit")
	status := fs.Bool("status", false, "print the stored cursor, last success and last error")
	reset := fs.Bool("reset-cursor", false, "start the sync again from the beginning (needs --yes)")
	yes := fs.Bool("yes", false, "confirm --reset-cursor")
	jsonOut := fs.Bool("json", false, "with --status: print JSON")
	c := newConfig(fs, e.lookupEnv, slices.Concat(natsSettings, apiSettings, syncSettings, logSettings, []string{"CG_RETRY_MAX_ELAPSED"})...)
	if err := parse(fs, args); err != nil {
		return err
	}
	modes := 0
	for _, b := range []bool{*once, *status, *reset} {
		if b {
			modes++
		}
	}
	if modes != 1 {
		return usagef("give exactly one of --once, --status, --reset-cursor --yes")
	}
	if *reset && !*yes {
		return usagef("--reset-cursor starts the sync from the beginning: confirm with --yes")
	}
	log := c.logger(e.stderr)
	names := c.names()
	nconf := c.nats(log)
	var apiConf cgapi.Config
	var scfg responses.Config
	if *once {
		apiConf = c.api()
		scfg = c.sync(log, names)
	}
	if c.err != nil {
		return c.err
	}

	js, closeNATS, err := connectJS(ctx, nconf)
	if err != nil {
		return err
	}
	defer closeNATS()
	qcfg := queue.StreamConfig{Names: names}
	kv, err := queue.EnsureSyncBucket(ctx, js, qcfg)
	if err != nil {
		return err
	}

	switch {
	case *status:
		st, err := responses.Status(ctx, kv)
		if err != nil {
			return err
		}
		if *jsonOut {
			return json.NewEncoder(e.stdout).Encode(st)
		}
		cursor := st.Cursor
		if cursor == "" {
			cursor = "(none: the next pass starts from the beginning)"
		}
		fmt.Fprintf(e.stdout, "cursor:        %s\n", cursor)
		fmt.Fprintf(e.stdout, "last number:   %d\n", st.LastNumber)
		fmt.Fprintf(e.stdout, "resets:        %d\n", st.Resets)
		fmt.Fprintf(e.stdout, "last success:  %s\n", timeOrNever(st.LastSuccess))
		if st.LastError != "" {
			fmt.Fprintf(e.stdout, "last error:    %s (%s)\n", st.LastError, timeOrNever(st.LastErrorAt))
		} else {
			fmt.Fprintf(e.stdout, "last error:    none\n")
		}
		if st.LeaseHolder != "" {
			fmt.Fprintf(e.stdout, "lease:         %s until %s\n", st.LeaseHolder, timeOrNever(st.LeaseUntil))
		}
		return nil
	case *reset:
		if err := responses.Reset(ctx, kv); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "cursor reset: the next pass publishes every response again, with new message ids")
		return nil
	}

	if err := queue.EnsureStreams(ctx, js, qcfg); err != nil {
		return err
	}
	client, err := cgapi.New(apiConf)
	if err != nil {
		return &settingError{msg: err.Error()}
	}
	res, err := responses.New(client, js, kv, scfg).Once(ctx)
	fmt.Fprintf(e.stdout, "pages %d, fetched %d, published %d, skipped %d, cursor %q\n",
		res.Pages, res.Fetched, res.Published, res.Skipped, res.Cursor)
	return err
}

func timeOrNever(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}
