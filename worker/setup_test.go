package worker_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/cgapi"
	"github.com/cgworker/cgworker/cgapi/cgapitest"
	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/natstest"
	"github.com/cgworker/cgworker/schemas"
	"github.com/cgworker/cgworker/worker"
	"github.com/cgworker/cgworker/worker/proctest"
)

// world is one test's NATS server, API emulator and connection.
type world struct {
	t     testing.TB
	ns    *natstest.Server
	emu   *emulator.Server
	nc    *nats.Conn
	js    jetstream.JetStream
	names queue.Names
	v     *schemas.Validator
}

var sharedValidator = sync.OnceValues(func() (*schemas.Validator, error) { return schemas.New("") })

func setup(t testing.TB, opts emulator.Options) *world {
	t.Helper()
	w := &world{t: t, ns: natstest.NewServer(t), emu: cgapitest.NewServer(t, opts), names: queue.NewNames("cg")}
	w.nc = w.connect()
	w.js = mustJS(t, w.nc)
	v, err := sharedValidator()
	if err != nil {
		t.Fatal(err)
	}
	w.v = v
	if err := queue.EnsureStreams(context.Background(), w.js, queue.StreamConfig{Names: w.names, AckWait: time.Second}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) connect() *nats.Conn {
	nc, err := nats.Connect(w.ns.URL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) { w.t.Logf("nats async error: %v", err) }))
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(nc.Close)
	return nc
}

func mustJS(t testing.TB, nc *nats.Conn) jetstream.JetStream {
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// client returns an API client of the emulator.
func (w *world) client(timeout time.Duration) *cgapi.Client {
	cfg := cgapitest.Config(w.emu, emulator.Options{})
	cfg.Timeout = timeout
	c, err := cgapi.New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// testConfig is a worker configuration with short timings, so retries and
// redeliveries take milliseconds to seconds.
func testConfig() worker.Config {
	return worker.Config{
		Names:                queue.NewNames("cg"),
		Kinds:                schemas.Kinds,
		AccountConfiguration: "account",
		ContactConfiguration: "contact",
		Concurrency:          16,
		AckWait:              time.Second,
		RetryMaxElapsed:      5 * time.Second,
		ContactWait:          time.Second,
		ShutdownTimeout:      5 * time.Second,
		RetryInitialInterval: 20 * time.Millisecond,
		RetryMaxInterval:     200 * time.Millisecond,
	}
}

// tlog writes a worker's log lines to the test log (with -v).
type tlog struct{ t testing.TB }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(strings.TrimSpace(string(p))); return len(p), nil }

// running is a worker started by a test.
type running struct {
	cancel context.CancelFunc
	done   chan error

	mu      sync.Mutex
	settled []worker.Settled
}

// start runs a worker on nc until the test ends (or stop is called).
func (w *world) start(nc *nats.Conn, cfg worker.Config) *running {
	w.t.Helper()
	return w.startWith(nc, w.client(5*time.Second), cfg)
}

// startWith is start with an API client of the test's own (traced, say).
func (w *world) startWith(nc *nats.Conn, client *cgapi.Client, cfg worker.Config) *running {
	w.t.Helper()
	if nc == nil {
		nc = w.nc
	}
	r := &running{done: make(chan error, 1)}
	prev := cfg.OnSettled
	cfg.OnSettled = func(s worker.Settled) {
		r.mu.Lock()
		r.settled = append(r.settled, s)
		r.mu.Unlock()
		if prev != nil {
			prev(s)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(tlog{w.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	wk, err := worker.New(mustJS(w.t, nc), client, w.v, cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- wk.Run(ctx) }()
	w.t.Cleanup(func() { r.stop(w.t) })
	return r
}

// stop shuts the worker down and waits for Run to return.
func (r *running) stop(t testing.TB) error {
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop within 30s")
		return nil
	}
}

func (r *running) outcomes() []worker.Settled {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]worker.Settled(nil), r.settled...)
}

// publish publishes one event and returns its stream sequence.
func (w *world) publish(kind schemas.Kind, body string, hdr map[string]string) uint64 {
	w.t.Helper()
	return w.publishOn(w.names.EventSubject(kind), body, hdr)
}

// publishOn publishes one message on subject, any kind's or none, and
// returns its stream sequence.
func (w *world) publishOn(subject, body string, hdr map[string]string) uint64 {
	w.t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = []byte(body)
	for k, v := range hdr {
		msg.Header[k] = []string{v} // exact case, as a producer may send it
	}
	ack, err := w.js.PublishMsg(context.Background(), msg)
	if err != nil {
		w.t.Fatal(err)
	}
	return ack.Sequence
}

// deadLetters returns every message in the dead-letter stream.
func (w *world) deadLetters() []*jetstream.RawStreamMsg {
	w.t.Helper()
	return natstest.Messages(w.t, w.js, w.names.DLQStream())
}

// consumerSettled reports whether a consumer has nothing pending and
// nothing awaiting acknowledgement.
func (w *world) consumerSettled(kind schemas.Kind) bool {
	c, err := w.js.Consumer(context.Background(), w.names.EventsStream(), w.names.Consumer(kind))
	if err != nil {
		return false
	}
	info, err := c.Info(context.Background())
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0
}

// waitFor polls cond every 10 ms until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	proctest.WaitFor(t, within, 10*time.Millisecond, what, func() (bool, string) { return cond(), "" })
}

// settledOf returns the outcomes recorded for stream sequence seq.
func (r *running) settledOf(seq uint64) []worker.Settled {
	var out []worker.Settled
	for _, s := range r.outcomes() {
		if s.Seq == seq {
			out = append(out, s)
		}
	}
	return out
}

// final reports whether seq reached a final outcome (delivered or
// dead-lettered).
func (r *running) final(seq uint64) (worker.Settled, bool) {
	for _, s := range r.settledOf(seq) {
		if s.Action == worker.Ack || s.Action == worker.DeadLetter {
			return s, true
		}
	}
	return worker.Settled{}, false
}
