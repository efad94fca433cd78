package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/cgworker/cgworker/queue/deadletter"
	"github.com/cgworker/cgworker/schemas"
)

const dlqUsage = `usage: cgworker dlq list [--json] [filters]
       cgworker dlq show SEQ
       cgworker dlq replay [--dry-run] [--to KIND] [filters]
       cgworker dlq purge --yes [filters]

filters: --kind activity|account|contact|unknown
         --error-kind malformed|schema|api-422|api-4xx|unknown-subject
         --since DURATION|RFC3339  --seq N|N-M
--to KIND sends dead letters of an unknown subject to KIND's subject.`

func dlqCmd(ctx context.Context, args []string, e env) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(e.stderr, dlqUsage)
		if len(args) == 0 {
			return usagef("a subcommand is required: list, show, replay or purge")
		}
		return nil
	}
	sub := args[0]
	fs := newFlags("dlq "+sub, e)
	fs.Usage = func() { fmt.Fprintln(e.stderr, dlqUsage); fs.PrintDefaults() }
	kind := fs.String("kind", "", "only dead letters of this kind")
	errorKind := fs.String("error-kind", "", "only dead letters of this error kind")
	since := fs.String("since", "", "only dead letters that failed since this long ago (24h) or this time (RFC 3339)")
	seq := fs.String("seq", "", "only this dead-letter sequence (N) or range (N-M)")
	jsonOut := fs.Bool("json", false, "list: one JSON object per line")
	dryRun := fs.Bool("dry-run", false, "replay: show what would be replayed, change nothing")
	yes := fs.Bool("yes", false, "purge: confirm")
	to := fs.String("to", "", "replay: send dead letters of an unknown subject to this kind's subject")
	c := newConfig(fs, e.lookupEnv, slices.Concat(natsSettings, logSettings)...)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	switch sub {
	case "list", "replay", "purge":
		if fs.NArg() != 0 {
			return usagef("unexpected arguments: %v", fs.Args())
		}
	case "show":
		if fs.NArg() != 1 {
			return usagef("show takes one dead-letter sequence: cgworker dlq show SEQ")
		}
	default:
		return usagef("unknown dlq subcommand %q: want list, show, replay or purge", sub)
	}
	if sub == "purge" && !*yes {
		return usagef("purge deletes dead letters for good: confirm with --yes")
	}
	f, err := deadletter.ParseFilter(*kind, *errorKind, *since, *seq, time.Now())
	if err != nil {
		return &usageError{err.Error()}
	}
	var ropts deadletter.ReplayOptions
	ropts.DryRun = *dryRun
	if *to != "" {
		if sub != "replay" {
			return usagef("--to is for replay only")
		}
		k, err := schemas.ParseKind(*to)
		if err != nil {
			return usagef("--to: %v", err)
		}
		ropts.To = k
	}
	log := c.logger(e.stderr)
	names := c.names()
	nconf := c.nats(log)
	if c.err != nil {
		return c.err
	}
	js, closeNATS, err := connectJS(ctx, nconf)
	if err != nil {
		return err
	}
	defer closeNATS()
	switch sub {
	case "list":
		_, err = deadletter.List(ctx, js, names, f, e.stdout, *jsonOut)
	case "show":
		n, perr := strconv.ParseUint(fs.Arg(0), 10, 64)
		if perr != nil || n == 0 {
			return usagef("SEQ must be a dead-letter stream sequence, got %q", fs.Arg(0))
		}
		err = deadletter.Show(ctx, js, names, n, e.stdout)
	case "replay":
		_, err = deadletter.Replay(ctx, js, names, f, ropts, e.stdout)
	case "purge":
		_, err = deadletter.Purge(ctx, js, names, f, e.stdout)
	}
	return err
}
