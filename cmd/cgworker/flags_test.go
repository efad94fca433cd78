package main

import (
	"flag"
	"io"
	"slices"
	"testing"
)

// TestParseTakesFlagsAnywhere: flags before, between and after positional
// arguments are all read; "--" makes the rest positional.
func TestParseTakesFlagsAnywhere(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args       []string
		url        string
		json       bool
		positional []string
	}{
		{[]string{"activity", "--nats-url", "nats://a:1"}, "nats://a:1", false, []string{"activity"}},
		{[]string{"--nats-url", "nats://a:1", "activity", "-"}, "nats://a:1", false, []string{"activity", "-"}},
		{[]string{"show", "10", "--nats-url=nats://b:2", "--json"}, "nats://b:2", true, []string{"show", "10"}},
		{[]string{"activity", "--json", "events.ndjson"}, "", true, []string{"activity", "events.ndjson"}},
		{[]string{"activity", "--", "--json"}, "", false, []string{"activity", "--json"}},
		{[]string{"--", "--nats-url", "x"}, "", false, []string{"--nats-url", "x"}},
		{nil, "", false, nil},
	}
	for _, c := range cases {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		url := fs.String("nats-url", "", "")
		jsonOut := fs.Bool("json", false, "")
		if err := parse(fs, c.args); err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if *url != c.url || *jsonOut != c.json || !slices.Equal(fs.Args(), c.positional) {
			t.Errorf("%q: url %q json %v positional %q; want %q %v %q", c.args, *url, *jsonOut, fs.Args(), c.url, c.json, c.positional)
		}
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := parse(fs, []string{"activity", "--no-such-flag"}); err == nil {
		t.Error("an unknown flag after a positional argument was accepted")
	} else if _, ok := err.(*usageError); !ok {
		t.Errorf("unknown flag: %T %v, want a usage error", err, err)
	}
}
