package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/schemas"
)

// input opens the FILE argument of validate and publish: a path, "-" or
// nothing for standard input. source names it in message ids: the file's
// absolute path, or "stdin".
func input(args []string, e env) (r io.Reader, source string, closeIn func(), err error) {
	switch {
	case len(args) == 0 || args[0] == "-":
		return e.stdin, "stdin", func() {}, nil
	case len(args) > 1:
		return nil, "", nil, usagef("one FILE at most, got %d", len(args))
	}
	abs, err := filepath.Abs(args[0])
	if err != nil {
		return nil, "", nil, err
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, "", nil, err
	}
	return f, abs, func() { _ = f.Close() }, nil
}

// kindArg reads the KIND argument.
func kindArg(fs interface{ Args() []string }) (schemas.Kind, []string, error) {
	args := fs.Args()
	if len(args) == 0 {
		return "", nil, usagef("KIND is required: activity, account or contact")
	}
	k, err := schemas.ParseKind(args[0])
	if err != nil {
		return "", nil, &usageError{err.Error()}
	}
	return k, args[1:], nil
}

func validateCmd(_ context.Context, args []string, e env) error {
	fs := newFlags("validate", e)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: cgworker validate KIND [FILE|-]\n\nValidates one JSON document or NDJSON lines; prints one JSON line per invalid document.")
		fs.PrintDefaults()
	}
	c := newConfig(fs, e.lookupEnv, "CG_SCHEMAS_DIR")
	if err := parse(fs, args); err != nil {
		return err
	}
	kind, rest, err := kindArg(fs)
	if err != nil {
		return err
	}
	v := c.validator()
	if c.err != nil {
		return c.err
	}
	r, _, closeIn, err := input(rest, e)
	if err != nil {
		return err
	}
	defer closeIn()
	invalid, err := schemas.ValidateStream(v, kind, r, e.stdout)
	if err != nil {
		return err
	}
	if invalid > 0 {
		fmt.Fprintf(e.stderr, "%d invalid\n", invalid)
		return errInvalidInput
	}
	return nil
}

func publishCmd(ctx context.Context, args []string, e env) error {
	fs := newFlags("publish", e)
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: cgworker publish KIND [FILE|-] [flags]\n\nPublishes one JSON document or NDJSON lines to the KIND subject, with publish acknowledgement\nand a message id per line, so running it again publishes nothing twice.")
		fs.PrintDefaults()
	}
	timeout := fs.Duration("timeout", 10*time.Second, "most time one publish (and connecting) may take before the command gives up")
	idPrefix := fs.String("id-prefix", "", "message ids PREFIX-LINE instead of ones derived from the input's name, line and content")
	c := newConfig(fs, e.lookupEnv, slices.Concat(natsSettings, logSettings)...)
	if err := parse(fs, args); err != nil {
		return err
	}
	kind, rest, err := kindArg(fs)
	if err != nil {
		return err
	}
	if *timeout <= 0 {
		return usagef("--timeout must be greater than 0, got %s", *timeout)
	}
	log := c.logger(e.stderr)
	names := c.names()
	nc := c.nats(log)
	if c.err != nil {
		return c.err
	}
	r, source, closeIn, err := input(rest, e)
	if err != nil {
		return err
	}
	defer closeIn()

	// Connecting and making the streams are bounded like one publish;
	// each publish then waits for its acknowledgement at most --timeout,
	// so a server that goes away ends the command instead of hanging it.
	setupCtx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	js, closeNATS, err := connectJS(setupCtx, nc, jetstream.WithPublishAsyncTimeout(*timeout))
	if err != nil {
		return err
	}
	defer closeNATS()
	// Publishing before any worker ran must not fail for want of a stream.
	if err := queue.EnsureStreams(setupCtx, js, queue.StreamConfig{Names: names, AckWait: queue.DefaultAckWait}); err != nil {
		return err
	}
	in := queue.StreamInput{Subject: names.EventSubject(kind), Source: source, IDPrefix: *idPrefix, Progress: e.stderr}
	counts, err := queue.PublishStream(ctx, js, in, r)
	fmt.Fprintf(e.stdout, "published %d\n", counts.Published)
	if counts.Duplicates > 0 {
		fmt.Fprintf(e.stderr, "%d duplicates: already in the stream under the same message id, not published again\n", counts.Duplicates)
	}
	if counts.Failed > 0 {
		fmt.Fprintf(e.stderr, "%d failed\n", counts.Failed)
	}
	return err
}

func emulatorCmd(ctx context.Context, args []string, e env) error {
	fs := newFlags("emulator", e)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address; port 0 picks a free one")
	var opts emulator.Options
	emulator.RegisterFlags(fs, &opts)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := opts.Validate(); err != nil {
		return &usageError{err.Error()}
	}
	return emulator.Run(ctx, *addr, opts, e.stdout)
}
