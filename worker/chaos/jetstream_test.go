package chaos

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/schemas"
)

// names are the default subjects, streams and consumers (prefix cg).
var names = queue.NewNames("")

var kinds = []schemas.Kind{schemas.Activity, schemas.Account, schemas.Contact}

// connect opens the test's own connection: it reconnects forever and
// quickly, so it rides out the restarts the test causes.
func connect(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url,
		nats.Name("chaos-test"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond),
		nats.ReconnectBufSize(-1), // publishes fail fast while disconnected
	)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(5*time.Second),
		jetstream.WithDefaultTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// ensureStreams creates the worker's streams as the worker would (with
// replicas for a cluster), so the test can publish before a worker runs.
// It retries while a cluster is still electing its leaders.
func ensureStreams(t testing.TB, js jetstream.JetStream, replicas int) {
	t.Helper()
	cfg := queue.StreamConfig{Names: names, AckWait: 2 * time.Second, Replicas: replicas}
	eventually(t, 60*time.Second, "streams created", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := queue.EnsureStreams(ctx, js, cfg); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// publishAll publishes events with JetStream acknowledgement, each under
// its Nats-Msg-Id, pipelined. A publish that fails (NATS restarting) is
// retried under the same id until ctx ends, as a careful producer does; the
// stream's duplicate window makes the retry safe. It returns the stream
// sequence of every event by id.
func publishAll(ctx context.Context, js jetstream.JetStream, events []event) (map[string]uint64, error) {
	const window = 256
	seqs := make(map[string]uint64, len(events))
	type pending struct {
		ev  *event
		fut jetstream.PubAckFuture
	}
	var inflight []pending
	settle := func(p pending) error {
		select {
		case ack := <-p.fut.Ok():
			seqs[p.ev.id] = ack.Sequence
			return nil
		case <-p.fut.Err():
			// Outcome unknown: publish again under the same id.
			seq, err := publishOne(ctx, js, p.ev)
			seqs[p.ev.id] = seq
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for i := range events {
		ev := &events[i]
		for len(inflight) >= window {
			if err := settle(inflight[0]); err != nil {
				return seqs, err
			}
			inflight = inflight[1:]
		}
		fut, err := js.PublishMsgAsync(ev.msg(), jetstream.WithMsgID(ev.id))
		if err != nil {
			seq, err := publishOne(ctx, js, ev)
			if err != nil {
				return seqs, err
			}
			seqs[ev.id] = seq
			continue
		}
		inflight = append(inflight, pending{ev, fut})
	}
	for _, p := range inflight {
		if err := settle(p); err != nil {
			return seqs, err
		}
	}
	return seqs, nil
}

// publishOne publishes ev synchronously until it is acknowledged.
func publishOne(ctx context.Context, js jetstream.JetStream, ev *event) (uint64, error) {
	for {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		ack, err := js.PublishMsg(pctx, ev.msg(), jetstream.WithMsgID(ev.id))
		cancel()
		if err == nil {
			return ack.Sequence, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("publish %s: %w (last error: %v)", ev.id, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond): // producer's retry pause
		}
	}
}

// publish is publishAll for the test goroutine.
func publish(t testing.TB, js jetstream.JetStream, events []event) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seqs, err := publishAll(ctx, js, events)
	if err != nil {
		t.Fatalf("publishing %d events: %v", len(events), err)
	}
	return seqs
}

// publishInBackground publishes events in a goroutine; the returned
// function waits for it and fails the test on an error.
func publishInBackground(t testing.TB, js jetstream.JetStream, events []event) (wait func() map[string]uint64) {
	type result struct {
		seqs map[string]uint64
		err  error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	go func() {
		seqs, err := publishAll(ctx, js, events)
		done <- result{seqs, err}
	}()
	t.Cleanup(cancel)
	return func() map[string]uint64 {
		t.Helper()
		r := <-done
		cancel()
		if r.err != nil {
			t.Fatalf("publishing %d events in the background: %v", len(events), r.err)
		}
		return r.seqs
	}
}

// streamMsgs is how many messages stream holds (0 when it cannot say).
func streamMsgs(js jetstream.JetStream, stream string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// consumersDrained reports whether every event consumer has delivered
// everything and has nothing awaiting an acknowledgement: nothing is left
// for any replica to do.
func consumersDrained(js jetstream.JetStream) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	status := ""
	ok := true
	for _, k := range kinds {
		c, err := js.Consumer(ctx, names.EventsStream(), names.Consumer(k))
		if err != nil {
			if errors.Is(err, jetstream.ErrConsumerNotFound) {
				return false, names.Consumer(k) + " not created yet"
			}
			return false, err.Error()
		}
		info, err := c.Info(ctx)
		if err != nil {
			return false, err.Error()
		}
		status += fmt.Sprintf(" %s: pending %d, ack pending %d, redelivered %d;",
			k, info.NumPending, info.NumAckPending, info.NumRedelivered)
		if info.NumPending != 0 || info.NumAckPending != 0 {
			ok = false
		}
	}
	return ok, status
}
