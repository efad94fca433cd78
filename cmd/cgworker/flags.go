package main

import (
	"errors"
	"flag"
)

// newFlags returns a flag set whose errors are usage errors.
func newFlags(name string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet("cgworker "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parse parses args with flags before, between or after the positional
// arguments (`publish activity --nats-url URL`, as the README and the dev
// banner print them), turning flag errors into usage errors. The flag
// package stops at the first positional argument, so parse sets it aside
// and goes on with the rest; "--" ends the flags, and what follows is
// positional however it looks. Afterwards fs.Args() is every positional
// argument, in order, so commands read them as before.
func parse(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return &usageError{err.Error()}
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Leave fs.Args() holding exactly the positional arguments: parsing
	// "--" followed by them sets no flag.
	return fs.Parse(append([]string{"--"}, positional...))
}
