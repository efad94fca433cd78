package worker_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/cgapi/emulator"
	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/schemas"
	"github.com/cgworker/cgworker/worker"
	"github.com/cgworker/cgworker/worker/health"
	"github.com/cgworker/cgworker/worker/proctest"
)

func activity(i int) string {
	return `{"account":"ACME","type":"T","source":"S","additional_information_object":{"n":` + strconv.Itoa(i) + `}}`
}

// publishRetrying publishes with a message id, retrying through a NATS
// restart; the id makes retries safe.
func (w *world) publishRetrying(js jetstream.JetStream, kind schemas.Kind, body, id string) {
	w.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		msg := nats.NewMsg(w.names.EventSubject(kind))
		msg.Data = []byte(body)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			w.t.Errorf("publish %s: %v", id, err)
			return
		}
	}
}

func TestNATSRestartMidStreamLosesNothing(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{Latency: 5 * time.Millisecond})
	w.start(nil, testConfig())
	const n = 300
	pub := w.connect()
	pjs := mustJS(t, pub)
	for i := range n {
		if i == n/2 {
			w.ns.Restart(t)
		}
		w.publishRetrying(pjs, schemas.Activity, activity(i), "restart-"+strconv.Itoa(i))
	}
	waitFor(t, 60*time.Second, "every event delivered", func() bool { return w.emu.ActivityCount() == n })
	waitFor(t, 20*time.Second, "consumer settled", func() bool { return w.consumerSettled(schemas.Activity) })
	if got := w.emu.ActivityCount(); got != n {
		t.Fatalf("%d activities, want %d (no duplicates)", got, n)
	}
	if dl := len(w.deadLetters()); dl != 0 {
		t.Fatalf("%d dead letters", dl)
	}
}

func TestReplicaKilledAbruptlyOtherDeliversItsMessages(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{Latency: 100 * time.Millisecond})
	cfg := testConfig()
	cfg.Concurrency = 8
	ncA, ncB := w.connect(), w.connect()
	a := w.start(ncA, cfg)

	const n = 120
	for i := range n {
		w.publish(schemas.Activity, activity(i), map[string]string{"Nats-Msg-Id": "kill-" + strconv.Itoa(i)})
	}
	waitFor(t, 10*time.Second, "replica A working", func() bool { return w.emu.Calls(emulator.ActivitiesPath) >= 4 })
	ncA.Close() // the replica dies: no more acks, its messages held
	a.cancel()
	b := w.start(ncB, cfg)

	waitFor(t, 60*time.Second, "every event delivered", func() bool { return w.emu.ActivityCount() == n })
	waitFor(t, 20*time.Second, "consumer settled", func() bool { return w.consumerSettled(schemas.Activity) })
	if got := w.emu.ActivityCount(); got != n {
		t.Fatalf("%d activities, want %d: duplicates or losses", got, n)
	}
	if len(b.outcomes()) == 0 {
		t.Fatal("replica B delivered nothing")
	}
}

func TestShutdownDrainsAndHandsBack(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{Latency: 400 * time.Millisecond})
	cfg := testConfig()
	cfg.Concurrency = 4
	cfg.AckWait = 30 * time.Second // a message not handed back would stay stuck for 30s
	r := w.start(nil, cfg)
	const n = 20
	for i := range n {
		w.publish(schemas.Activity, activity(i), nil)
	}
	waitFor(t, 10*time.Second, "PUTs in flight", func() bool { return w.emu.Calls(emulator.ActivitiesPath) >= 1 })
	start := time.Now()
	if err := r.stop(t); err != nil {
		t.Fatalf("Run after shutdown: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("shutdown took %s", took)
	}
	// PUTs in flight finished and were acknowledged.
	acked := 0
	for _, s := range r.outcomes() {
		if s.Action == worker.Ack {
			acked++
		}
	}
	if acked == 0 {
		t.Error("no PUT in flight was allowed to finish")
	}
	// Every delivery this replica took, fetched before shutdown or as it
	// began, was settled once: none left to its ack wait.
	cons, err := w.js.Consumer(context.Background(), w.names.EventsStream(), w.names.Consumer(schemas.Activity))
	if err != nil {
		t.Fatal(err)
	}
	if d := cons.CachedInfo().Delivered.Consumer; d != uint64(len(r.outcomes())) {
		t.Errorf("%d deliveries, %d settled", d, len(r.outcomes()))
	}
	// The rest went back to the stream at once: a new replica delivers
	// them well within the 30s ack wait that a message not handed back
	// would sit out. (NumAckPending cannot tell: a nak'd message counts
	// as pending acknowledgement until it is delivered again.)
	w.emu.SetLatency(0)
	w.start(nil, cfg)
	waitFor(t, 10*time.Second, "the rest delivered", func() bool { return w.emu.ActivityCount() == n })
}

// A PUT still in flight when CG_SHUTDOWN_TIMEOUT runs out is abandoned:
// shutdown ends on time, the message is handed back at once (not left to
// its 30s ack wait), and the next replica delivers it.
func TestShutdownAbandonsPUTsPastTheTimeout(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{Latency: 20 * time.Second})
	cfg := testConfig()
	cfg.ShutdownTimeout = 300 * time.Millisecond
	cfg.AckWait = 30 * time.Second
	r := w.startWith(nil, w.client(time.Minute), cfg) // the call's own timeout out of the way
	seq := w.publish(schemas.Activity, activity(1), nil)
	waitFor(t, 10*time.Second, "the PUT in flight", func() bool { return w.emu.Holding() >= 1 })
	start := time.Now()
	if err := r.stop(t); err != nil {
		t.Fatalf("Run after shutdown: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %s with a 300ms timeout", took)
	}
	if got := r.settledOf(seq); len(got) != 1 || got[0].Action != worker.HandBack {
		t.Fatalf("outcomes %+v, want one hand-back", got)
	}
	w.emu.SetLatency(0)
	next := w.start(nil, cfg)
	waitFor(t, 10*time.Second, "delivered by the next replica", func() bool {
		got := next.settledOf(seq)
		return len(got) == 1 && got[0].Action == worker.Ack
	})
}

func TestShutdownInterruptsBackoff(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	cfg := testConfig()
	cfg.RetryMaxElapsed = time.Minute
	cfg.RetryInitialInterval = 10 * time.Second // a long wait that shutdown must cut short
	cfg.RetryMaxInterval = 10 * time.Second
	r := w.start(nil, cfg)
	w.emu.SetOutage(true)
	seq := w.publish(schemas.Activity, activity(1), nil)
	waitFor(t, 5*time.Second, "first failed attempt", func() bool { return w.emu.Calls(emulator.ActivitiesPath) >= 1 })
	start := time.Now()
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("shutdown waited %s for a backoff", took)
	}
	got := r.settledOf(seq)
	if len(got) != 1 || got[0].Action != worker.HandBack {
		t.Fatalf("outcomes %+v, want one hand-back", got)
	}
}

func TestDeletedConsumerIsBoundAgain(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	health := health.New(true, false)
	health.SetNATS(true)
	cfg := testConfig()
	cfg.Health = health
	w.start(nil, cfg)
	first := w.publish(schemas.Activity, activity(1), nil)
	waitFor(t, 10*time.Second, "first delivery", func() bool { return w.emu.ActivityCount() == 1 })
	_ = first

	// An operator deletes the consumer under the running worker.
	if err := w.js.DeleteConsumer(context.Background(), w.names.EventsStream(), w.names.Consumer(schemas.Activity)); err != nil {
		t.Fatal(err)
	}
	w.publish(schemas.Activity, activity(2), nil)
	waitFor(t, 20*time.Second, "delivery after the consumer was bound again", func() bool { return w.emu.ActivityCount() == 2 })
	waitFor(t, 5*time.Second, "ready again", func() bool { return health.Ready() == nil })
}

// TestReadinessNamesAConsumerNotBoundAgain: one kind's consumer is
// deleted and cannot be made again (the stream's consumer limit is taken
// meanwhile). The replica stays unready, naming it, while another kind's
// pulls go on succeeding, and is ready again once it is bound.
func TestReadinessNamesAConsumerNotBoundAgain(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	ctx := context.Background()
	s, err := w.js.Stream(ctx, w.names.EventsStream())
	if err != nil {
		t.Fatal(err)
	}
	sc := s.CachedInfo().Config
	if err := w.js.DeleteStream(ctx, sc.Name); err != nil {
		t.Fatal(err)
	}
	sc.MaxConsumers = 2 // activity and account
	if _, err := w.js.CreateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	health := health.New(true, false)
	health.SetNATS(true)
	cfg := testConfig()
	cfg.Kinds = []schemas.Kind{schemas.Activity, schemas.Account}
	cfg.Health = health
	w.start(nil, cfg)
	waitFor(t, 10*time.Second, "ready", func() bool { return health.Ready() == nil })

	// Delete the account consumer and take its slot; the worker may bind
	// it again first, then delete it again.
	account := w.names.Consumer(schemas.Account)
	var intruder jetstream.Consumer
	waitFor(t, 10*time.Second, "the consumer slot taken", func() bool {
		if err := w.js.DeleteConsumer(ctx, sc.Name, account); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Fatal(err)
		}
		intruder, err = w.js.CreateConsumer(ctx, sc.Name, jetstream.ConsumerConfig{Durable: "intruder", FilterSubject: "cg.events.nothing"})
		return err == nil
	})
	notReady := func() bool {
		err := health.Ready()
		return err != nil && strings.Contains(err.Error(), account)
	}
	waitFor(t, 10*time.Second, "not ready, naming "+account, notReady)
	// The activity consumer's pulls succeed meanwhile; they do not make
	// the replica ready.
	w.publish(schemas.Activity, activity(1), nil)
	waitFor(t, 10*time.Second, "an activity delivered", func() bool { return w.emu.ActivityCount() == 1 })
	if !notReady() {
		t.Fatalf("ready with %s gone: %v", account, health.Ready())
	}

	if err := w.js.DeleteConsumer(ctx, sc.Name, intruder.CachedInfo().Name); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "ready once "+account+" is bound again", func() bool { return health.Ready() == nil })
}

// TestConsumerBoundAgainAfterAFailedRebind: the events stream is deleted
// under a running worker, so its first attempt to bind the consumer again
// fails; pulls on the vanished consumer are then answered "no responders".
// Once the stream is back, those answers must lead to another attempt, or
// the kind would never be consumed again.
func TestConsumerBoundAgainAfterAFailedRebind(t *testing.T) {
	t.Parallel()
	w := setup(t, emulator.Options{})
	logs := &proctest.Buffer{}
	cfg := testConfig()
	cfg.Kinds = []schemas.Kind{schemas.Activity}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	w.start(nil, cfg)
	w.publish(schemas.Activity, activity(1), nil)
	waitFor(t, 10*time.Second, "first delivery", func() bool { return w.emu.ActivityCount() == 1 })

	if err := w.js.DeleteStream(context.Background(), w.names.EventsStream()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a rebind that fails without the stream", func() bool {
		return strings.Contains(logs.String(), "cannot be bound again")
	})
	if err := queue.EnsureStreams(context.Background(), w.js, queue.StreamConfig{Names: w.names, AckWait: time.Second}); err != nil {
		t.Fatal(err)
	}
	w.publish(schemas.Activity, activity(2), nil)
	waitFor(t, 20*time.Second, "delivery once the stream is back", func() bool { return w.emu.ActivityCount() == 2 })
}
