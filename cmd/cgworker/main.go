// Command cgworker moves customer data between NATS JetStream and
// CustomerGauge. See README.md for the commands and settings.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// Set at build time: -ldflags "-X main.version=1.2.3 -X main.commit=abc".
var (
	version = "dev"
	commit  = ""
)

// Exit codes (README, "Commands").
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// env is what a command may touch of the outside world; tests replace it.
type env struct {
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	lookupEnv func(string) (string, bool)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli(ctx, os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, lookupEnv: os.LookupEnv})
	stop()
	os.Exit(code)
}

type command struct {
	name  string
	usage string
	run   func(ctx context.Context, args []string, e env) error
}

func commands() []command {
	return []command{
		{"run", "run the production worker (consume events and sync responses)", runCmd},
		{"dev", "run everything on this machine: embedded NATS, the API emulator and the worker", devCmd},
		{"emulator", "run the CustomerGauge API emulator alone", emulatorCmd},
		{"validate", "validate JSON or NDJSON events: validate KIND [FILE|-]", validateCmd},
		{"publish", "publish JSON or NDJSON events, safe to re-run: publish KIND [FILE|-] [--timeout 10s] [--id-prefix P]", publishCmd},
		{"sync", "responses sync: sync --once | --status | --reset-cursor --yes", syncCmd},
		{"dlq", "dead letters: dlq list|show|replay|purge", dlqCmd},
		{"status", "the system at a glance from NATS; exit 1 when something needs attention", statusCmd},
		{"healthcheck", "ask this replica's /readyz; exit 0 when ready, 1 otherwise", healthcheckCmd},
		{"version", "print version, commit and Go version", versionCmd},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: cgworker COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.usage)
	}
	fmt.Fprintln(w, "\nFlags may come before or after a command's arguments. 'cgworker COMMAND -h' lists the flags of a command;\nevery setting is also an environment variable (see README.md).")
}

// usageError is a wrong command line: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// cli runs one command and returns its exit code.
func cli(ctx context.Context, args []string, e env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], e)
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.Is(err, errInvalidInput):
			return exitFailure // already reported
		}
		fmt.Fprintf(e.stderr, "cgworker %s: %v\n", c.name, err)
		var ue *usageError
		if isSettingError(err) || errors.As(err, &ue) {
			return exitUsage
		}
		return exitFailure
	}
	fmt.Fprintf(e.stderr, "cgworker: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return exitUsage
}

// errInvalidInput: the command reported invalid input itself; exit 1.
var errInvalidInput = errors.New("invalid input")

func versionCmd(_ context.Context, args []string, e env) error {
	fs := newFlags("version", e)
	if err := parse(fs, args); err != nil {
		return err
	}
	goVersion, vcs := "unknown", commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && vcs == "" {
				vcs = s.Value
			}
		}
	}
	if vcs == "" {
		vcs = "unknown"
	}
	fmt.Fprintf(e.stdout, "cgworker %s\ncommit %s\n%s\n", version, vcs, goVersion)
	return nil
}

func userAgent() string { return "cgworker/" + version }
