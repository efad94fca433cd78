package status

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue/deadletter"
)

// DeadLetters summarises the dead-letter stream.
type DeadLetters struct {
	Total  int               `json:"total"`
	Groups []DeadLetterGroup `json:"groups"`
	// Recent counts the letters stored within the window that needs
	// attention (Config.DeadLetterWindow).
	Recent int `json:"recent"`
	// Newest is the failure time of the newest letter; zero when none.
	Newest time.Time `json:"newest,omitzero"`
}

// DeadLetterGroup is the letters of one kind and error kind.
type DeadLetterGroup struct {
	Kind      string    `json:"kind"`
	ErrorKind string    `json:"error_kind"`
	Count     int       `json:"count"`
	Recent    int       `json:"recent"`
	Newest    time.Time `json:"newest,omitzero"`
}

// readDeadLetters reads every letter's headers through deadletter.Entries,
// the reader behind `cgworker dlq list`, so the two commands never disagree
// on a letter's kind or error kind.
func readDeadLetters(ctx context.Context, js jetstream.JetStream, cfg Config, r *Report) error {
	since := cfg.Now().Add(-cfg.DeadLetterWindow)
	groups := map[[2]string]*DeadLetterGroup{}
	err := deadletter.Entries(ctx, js, cfg.Names, deadletter.Filter{}, func(e deadletter.Entry) error {
		key := [2]string{e.Kind, e.ErrorKind}
		g := groups[key]
		if g == nil {
			g = &DeadLetterGroup{Kind: e.Kind, ErrorKind: e.ErrorKind}
			groups[key] = g
		}
		g.Count++
		r.DeadLetters.Total++
		at, err := time.Parse(time.RFC3339Nano, e.FailedAt)
		if err != nil {
			return nil // a letter without a failure time still counts
		}
		if at.After(g.Newest) {
			g.Newest = at.UTC()
		}
		if at.After(r.DeadLetters.Newest) {
			r.DeadLetters.Newest = at.UTC()
		}
		if at.After(since) {
			g.Recent++
			r.DeadLetters.Recent++
		}
		return nil
	})
	if err != nil {
		if _, serr := js.Stream(ctx, cfg.Names.DLQStream()); errors.Is(serr, jetstream.ErrStreamNotFound) {
			r.Missing = append(r.Missing, "stream "+cfg.Names.DLQStream())
			return nil
		}
		return err
	}
	r.DeadLetters.Groups = []DeadLetterGroup{}
	for _, g := range groups {
		r.DeadLetters.Groups = append(r.DeadLetters.Groups, *g)
	}
	sort.Slice(r.DeadLetters.Groups, func(i, j int) bool {
		a, b := r.DeadLetters.Groups[i], r.DeadLetters.Groups[j]
		return a.Kind < b.Kind || a.Kind == b.Kind && a.ErrorKind < b.ErrorKind
	})
	for _, g := range r.DeadLetters.Groups {
		if g.Recent > 0 {
			r.attention("%d %s dead letters of error kind %s in the last %s (newest %s): %s",
				g.Recent, g.Kind, g.ErrorKind, cfg.DeadLetterWindow, g.Newest.Format(time.RFC3339), advice(g.ErrorKind))
		}
	}
	return nil
}

// advice is what an operator does about a kind of dead letter (README,
// "Alerts").
func advice(errorKind string) string {
	switch errorKind {
	case deadletter.ErrorKindMalformed, deadletter.ErrorKindSchema, deadletter.ErrorKindAPI422:
		return "a producer sends bad events; fix the producer, then `cgworker dlq replay`"
	case deadletter.ErrorKindAPI4xx:
		return "the API refuses the worker's requests; check the configuration references and URLs"
	case deadletter.ErrorKindUnknownSubject:
		return "events arrive on a subject that is no kind; fix the producer or `cgworker dlq replay --to KIND`"
	}
	return "see `cgworker dlq list`"
}
