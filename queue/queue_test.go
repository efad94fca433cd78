package queue_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/queue/natstest"
	"github.com/cgworker/cgworker/schemas"
)

type fixture struct {
	srv *natstest.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	ctx context.Context
}

func setup(t *testing.T) fixture {
	t.Helper()
	srv := natstest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	nc, err := queue.Connect(ctx, queue.ConnConfig{URL: srv.URL, Name: t.Name(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return fixture{srv: srv, nc: nc, js: js, ctx: ctx}
}

// operatorConsumer makes the default streams and then, as an operator
// might before cgworker starts, the consumer cc on the events stream. It
// returns the StreamConfig to hand cgworker.
func (f fixture) operatorConsumer(t *testing.T, cc jetstream.ConsumerConfig) queue.StreamConfig {
	t.Helper()
	cfg := queue.StreamConfig{Names: queue.NewNames("")}
	if err := queue.EnsureStreams(f.ctx, f.js, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := f.js.CreateConsumer(f.ctx, cfg.Names.EventsStream(), cc); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestEnsureStreamsCreates(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for _, prefix := range []string{"", "acme"} {
		names := queue.NewNames(prefix)
		cfg := queue.StreamConfig{Names: names, AckWait: 90 * time.Second}
		if err := queue.EnsureStreams(f.ctx, f.js, cfg); err != nil {
			t.Fatal(err)
		}
		// A second call finds them all and changes nothing.
		if err := queue.EnsureStreams(f.ctx, f.js, cfg); err != nil {
			t.Fatal(err)
		}
		up := strings.ToUpper(names.Prefix)
		want := map[string]struct {
			subject string
			dup     time.Duration
		}{
			up + "_EVENTS":    {strings.Join(names.EventSubjects(), " "), 2 * time.Minute},
			up + "_DLQ":       {names.Prefix + ".dlq.>", 180 * time.Second},
			up + "_RESPONSES": {names.Prefix + ".responses", 2 * time.Minute},
		}
		for name, w := range want {
			s, err := f.js.Stream(f.ctx, name)
			if err != nil {
				t.Fatalf("stream %s: %v", name, err)
			}
			c := s.CachedInfo().Config
			if strings.Join(c.Subjects, " ") != w.subject {
				t.Errorf("%s subjects = %v, want %s", name, c.Subjects, w.subject)
			}
			if c.Storage != jetstream.FileStorage || c.Replicas != 1 || c.MaxAge != 0 || c.Retention != jetstream.LimitsPolicy {
				t.Errorf("%s: storage %v replicas %d max age %v retention %v", name, c.Storage, c.Replicas, c.MaxAge, c.Retention)
			}
			if c.Duplicates != w.dup {
				t.Errorf("%s duplicate window = %v, want %v", name, c.Duplicates, w.dup)
			}
		}
	}
	// A short ack wait still gets the 2-minute floor on the DLQ window.
	if err := queue.EnsureStreams(f.ctx, f.js, queue.StreamConfig{Names: queue.NewNames("short"), AckWait: time.Second}); err != nil {
		t.Fatal(err)
	}
	s, err := f.js.Stream(f.ctx, "SHORT_DLQ")
	if err != nil {
		t.Fatal(err)
	}
	if d := s.CachedInfo().Config.Duplicates; d != 2*time.Minute {
		t.Errorf("SHORT_DLQ duplicate window = %v, want 2m", d)
	}
}

func TestEnsureStreamsLeavesExistingAlone(t *testing.T) {
	t.Parallel()
	f := setup(t)
	names := queue.NewNames("")
	existing := jetstream.StreamConfig{
		Name:     "CG_EVENTS",
		Subjects: []string{"cg.events.>"},
		Storage:  jetstream.MemoryStorage,
		MaxAge:   time.Hour,
		MaxMsgs:  1234,
	}
	if _, err := f.js.CreateStream(f.ctx, existing); err != nil {
		t.Fatal(err)
	}
	if err := queue.EnsureStreams(f.ctx, f.js, queue.StreamConfig{Names: names}); err != nil {
		t.Fatal(err)
	}
	s, err := f.js.Stream(f.ctx, "CG_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	c := s.CachedInfo().Config
	if c.Storage != jetstream.MemoryStorage || c.MaxAge != time.Hour || c.MaxMsgs != 1234 {
		t.Errorf("existing stream changed: storage %v max age %v max msgs %d", c.Storage, c.MaxAge, c.MaxMsgs)
	}
}

func TestEnsureConsumer(t *testing.T) {
	t.Parallel()
	f := setup(t)
	names := queue.NewNames("acme")
	cfg := queue.StreamConfig{Names: names, AckWait: 45 * time.Second}
	if err := queue.EnsureStreams(f.ctx, f.js, cfg); err != nil {
		t.Fatal(err)
	}
	for _, k := range schemas.Kinds {
		cons, err := queue.EnsureConsumer(f.ctx, f.js, cfg, k)
		if err != nil {
			t.Fatal(err)
		}
		c := cons.CachedInfo().Config
		if c.Durable != "cgworker-"+string(k) || c.FilterSubject != "acme.events."+string(k) {
			t.Errorf("consumer %s filter %s", c.Durable, c.FilterSubject)
		}
		if c.AckPolicy != jetstream.AckExplicitPolicy || c.AckWait != 45*time.Second || c.MaxDeliver != -1 ||
			c.InactiveThreshold != 0 || c.DeliverPolicy != jetstream.DeliverAllPolicy || c.MaxAckPending != queue.MaxAckPending {
			t.Errorf("consumer %s config %+v", c.Durable, c)
		}
		if cons.CachedInfo().Stream != "ACME_EVENTS" {
			t.Errorf("consumer on stream %s", cons.CachedInfo().Stream)
		}
		// Again: found, not recreated.
		if _, err := queue.EnsureConsumer(f.ctx, f.js, cfg, k); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEnsureConsumerLeavesExistingAlone(t *testing.T) {
	t.Parallel()
	f := setup(t)
	cfg := f.operatorConsumer(t, jetstream.ConsumerConfig{
		Durable:       "cgworker-account",
		FilterSubject: "cg.events.account",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       7 * time.Second,
		MaxAckPending: 50,
	})
	cons, err := queue.EnsureConsumer(f.ctx, f.js, cfg, schemas.Account)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.AckWait != 7*time.Second || info.Config.MaxAckPending != 50 {
		t.Errorf("existing consumer changed: %+v", info.Config)
	}
}

func TestEnsureConsumerRefusesDeliveryLimit(t *testing.T) {
	t.Parallel()
	f := setup(t)
	cfg := f.operatorConsumer(t, jetstream.ConsumerConfig{
		Durable:       "cgworker-activity",
		FilterSubject: "cg.events.activity",
		AckPolicy:     jetstream.AckExplicitPolicy,
		MaxDeliver:    5,
	})
	_, err := queue.EnsureConsumer(f.ctx, f.js, cfg, schemas.Activity)
	want := "consumer cgworker-activity on stream CG_EVENTS has max_deliver=5: the server would drop messages after 5 deliveries; remove the limit"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	info, err := f.js.Consumer(f.ctx, "CG_EVENTS", "cgworker-activity")
	if err != nil {
		t.Fatal(err)
	}
	if info.CachedInfo().Config.MaxDeliver != 5 {
		t.Error("refused consumer was modified")
	}
}

func TestEnsureSyncBucket(t *testing.T) {
	t.Parallel()
	f := setup(t)
	names := queue.NewNames("acme")
	kv, err := queue.EnsureSyncBucket(f.ctx, f.js, queue.StreamConfig{Names: names})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(f.ctx, "cursor", []byte("abc")); err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bucket() != "ACME_SYNC" || st.History() != 1 {
		t.Errorf("bucket %s history %d", st.Bucket(), st.History())
	}
	// Found again, with its data.
	kv2, err := queue.EnsureSyncBucket(f.ctx, f.js, queue.StreamConfig{Names: names})
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv2.Get(f.ctx, "cursor")
	if err != nil || string(e.Value()) != "abc" {
		t.Fatalf("cursor = %v, %v", e, err)
	}
}

// The bucket is created with the replicas of the StreamConfig: a
// standalone server refuses three, which shows they were asked for.
func TestEnsureSyncBucketReplicas(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if _, err := queue.EnsureSyncBucket(f.ctx, f.js, queue.StreamConfig{Names: queue.NewNames("r3"), Replicas: 3}); err == nil ||
		!strings.Contains(err.Error(), "R3_SYNC") || !strings.Contains(strings.ToLower(err.Error()), "replicas") {
		t.Errorf("three replicas on a standalone server: %v", err)
	}
	kv, err := queue.EnsureSyncBucket(f.ctx, f.js, queue.StreamConfig{Names: queue.NewNames("r1"), Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.js.Stream(f.ctx, "KV_"+kv.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	if r := s.CachedInfo().Config.Replicas; r != 1 {
		t.Errorf("replicas = %d", r)
	}
}

func TestEnsureSyncBucketLeavesExistingAlone(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if _, err := f.js.CreateKeyValue(f.ctx, jetstream.KeyValueConfig{Bucket: "CG_SYNC", History: 5, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	kv, err := queue.EnsureSyncBucket(f.ctx, f.js, queue.StreamConfig{Names: queue.NewNames("")})
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.History() != 5 {
		t.Errorf("history = %d, want the existing 5", st.History())
	}
}

func TestPublishDuplicate(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if err := queue.EnsureStreams(f.ctx, f.js, queue.StreamConfig{Names: queue.NewNames("")}); err != nil {
		t.Fatal(err)
	}
	for i, wantDup := range []bool{false, true} {
		ack, err := queue.Publish(f.ctx, f.js, &nats.Msg{Subject: "cg.events.activity", Data: []byte(`{}`)}, "id-1")
		if err != nil {
			t.Fatal(err)
		}
		if ack.Duplicate != wantDup || ack.Sequence != 1 {
			t.Errorf("publish %d: duplicate %v seq %d", i, ack.Duplicate, ack.Sequence)
		}
	}
	if _, err := queue.Publish(f.ctx, f.js, &nats.Msg{Subject: "nowhere.at.all", Data: []byte(`{}`)}, ""); err == nil {
		t.Error("publish to a subject without a stream succeeded")
	}
}

func TestConnectReconnectsAfterRestart(t *testing.T) {
	t.Parallel()
	srv := natstest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)

	states := make(chan bool, 100)
	nc, err := queue.Connect(ctx, queue.ConnConfig{
		URL:           srv.URL,
		Logger:        slog.New(slog.DiscardHandler),
		OnStateChange: func(c bool) { states <- c },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := queue.EnsureStreams(ctx, js, queue.StreamConfig{Names: queue.NewNames("")}); err != nil {
		t.Fatal(err)
	}
	if _, err := queue.Publish(ctx, js, &nats.Msg{Subject: "cg.events.contact", Data: []byte(`1`)}, "before"); err != nil {
		t.Fatal(err)
	}

	srv.Restart(t)

	// The publish retries until the client has reconnected.
	var lastErr error
	for ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		_, lastErr = queue.Publish(pctx, js, &nats.Msg{Subject: "cg.events.contact", Data: []byte(`2`)}, "after")
		pcancel()
		if lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("publish after restart: %v", lastErr)
	}
	s, err := js.Stream(ctx, "CG_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 2 {
		t.Errorf("stream holds %d messages, want 2", n)
	}
	// Handlers run on the client's callback goroutine: wait for them.
	for _, want := range []bool{false, true} {
		select {
		case got := <-states:
			if got != want {
				t.Fatalf("state change %v, want %v", got, want)
			}
		case <-ctx.Done():
			t.Fatalf("no state change to %v", want)
		}
	}
}

func TestConnectErrorsNameTheSetting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notCreds := filepath.Join(dir, "not.creds")
	if err := os.WriteFile(notCreds, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	ctx := context.Background()
	for _, tc := range []struct {
		cfg  queue.ConnConfig
		want string
	}{
		{queue.ConnConfig{Creds: missing}, "NATS_CREDS: open " + missing},
		{queue.ConnConfig{Creds: notCreds}, "NATS_CREDS: " + notCreds + " is not a NATS credentials file"},
		{queue.ConnConfig{NKey: missing}, "NATS_NKEY: "},
		{queue.ConnConfig{TLSCA: missing}, "NATS_TLS_CA: "},
		{queue.ConnConfig{TLSCert: missing, TLSKey: missing}, "NATS_TLS_CERT: "},
		{queue.ConnConfig{TLSCert: missing}, "NATS_TLS_KEY: "},
		{queue.ConnConfig{Password: "s3cret"}, "NATS_PASSWORD: "},
		{queue.ConnConfig{User: "u", Token: "t0ken"}, "NATS_USER, NATS_TOKEN: "},
		{queue.ConnConfig{URL: "nats://u:s3cret@127.0.0.1:1"}, "NATS_URL: connect to nats://127.0.0.1:1: "},
	} {
		_, err := queue.Connect(ctx, tc.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want prefix %q", tc.cfg, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "t0ken") {
			t.Errorf("error reveals a secret: %v", err)
		}
	}
}

func TestConnectHonoursContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := queue.Connect(ctx, queue.ConnConfig{URL: "nats://127.0.0.1:1"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestEnsureDLQBodiesLeavesExistingAlone: the object store of oversized
// dead letters is created when missing and, like every bucket, used as it
// is when an operator made it first.
func TestEnsureDLQBodiesLeavesExistingAlone(t *testing.T) {
	t.Parallel()
	f := setup(t)
	cfg := queue.StreamConfig{Names: queue.NewNames("made")}
	obs, err := queue.EnsureDLQBodies(f.ctx, f.js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := obs.Status(f.ctx); err != nil || st.Bucket() != "MADE_DLQ_BODIES" || st.Description() == "" {
		t.Fatalf("created: %v, %v", st, err)
	}

	if _, err := f.js.CreateObjectStore(f.ctx, jetstream.ObjectStoreConfig{Bucket: "OPS_DLQ_BODIES", Description: "operator's", Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	obs, err = queue.EnsureDLQBodies(f.ctx, f.js, queue.StreamConfig{Names: queue.NewNames("ops")})
	if err != nil {
		t.Fatal(err)
	}
	st, err := obs.Status(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Description() != "operator's" || st.Storage() != jetstream.MemoryStorage {
		t.Errorf("existing store changed: %q, %v", st.Description(), st.Storage())
	}
}

// TestEnsureUnknownConsumers: each unknown subject has a consumer of its
// own with the kinds' consumers' settings (never a delivery limit), kept as
// it is while its subject holds messages and deleted once it holds none;
// the single consumer of older versions hands its position over.
func TestEnsureUnknownConsumers(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if _, err := f.js.CreateStream(f.ctx, jetstream.StreamConfig{Name: "CG_EVENTS", Subjects: []string{"cg.events.>"}}); err != nil {
		t.Fatal(err)
	}
	cfg := queue.StreamConfig{Names: queue.NewNames(""), AckWait: 45 * time.Second}
	if err := queue.EnsureStreams(f.ctx, f.js, cfg); err != nil {
		t.Fatal(err)
	}
	names := cfg.Names
	// The consumer older versions made: it has read the first two
	// messages on cg.events.typo and acknowledged them.
	natstest.Publish(t, f.js, "cg.events.typo", []byte("{}"), 3)
	natstest.LegacyUnknownConsumer(t, f.js, names, "cg.events.typo", 2)

	subjects := []string{"cg.events.other", "cg.events.typo"}
	got, err := queue.EnsureUnknownConsumers(f.ctx, f.events(t), cfg, subjects)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d consumers for %d subjects", len(got), len(subjects))
	}
	for i, cons := range got {
		c := cons.CachedInfo().Config
		if c.Durable != names.UnknownConsumer(subjects[i]) || !names.IsUnknownConsumer(c.Durable) || c.FilterSubject != subjects[i] ||
			c.AckPolicy != jetstream.AckExplicitPolicy || c.AckWait != 45*time.Second || c.MaxDeliver != -1 ||
			c.MaxAckPending != queue.MaxAckPending {
			t.Errorf("consumer of %s: %+v", subjects[i], c)
		}
	}
	if c := got[0].CachedInfo().Config; c.DeliverPolicy != jetstream.DeliverAllPolicy {
		t.Errorf("a subject the old consumer did not read starts at %v, want the first message", c.DeliverPolicy)
	}
	if c := got[1].CachedInfo().Config; c.DeliverPolicy != jetstream.DeliverByStartSequencePolicy || c.OptStartSeq != 3 {
		t.Errorf("cg.events.typo starts at %v %d, want sequence 3, after the old consumer's ack floor", c.DeliverPolicy, c.OptStartSeq)
	}
	if _, err := f.js.Consumer(f.ctx, "CG_EVENTS", names.LegacyUnknownConsumer()); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("the old consumer is still there: %v", err)
	}

	// Called again (a later sweep), the consumers are the same ones.
	again, err := queue.EnsureUnknownConsumers(f.ctx, f.events(t), cfg, subjects)
	if err != nil {
		t.Fatal(err)
	}
	for i := range again {
		if !again[i].CachedInfo().Created.Equal(got[i].CachedInfo().Created) {
			t.Errorf("consumer of %s made again", subjects[i])
		}
	}
	// cg.events.other holds no message any more: its consumer goes, and
	// the kinds' consumers stay.
	if _, err := queue.EnsureConsumer(f.ctx, f.js, cfg, schemas.Activity); err != nil {
		t.Fatal(err)
	}
	if _, err := queue.EnsureUnknownConsumers(f.ctx, f.events(t), cfg, subjects[1:]); err != nil {
		t.Fatal(err)
	}
	if _, err := f.js.Consumer(f.ctx, "CG_EVENTS", names.UnknownConsumer("cg.events.other")); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("the consumer of a subject without messages is still there: %v", err)
	}
	for _, name := range []string{names.UnknownConsumer("cg.events.typo"), names.Consumer(schemas.Activity)} {
		if _, err := f.js.Consumer(f.ctx, "CG_EVENTS", name); err != nil {
			t.Errorf("consumer %s: %v", name, err)
		}
	}
}

// TestUnknownConsumersBeyondTheCapShareOne: past StreamConfig.UnknownConsumers
// the unknown subjects share one consumer; a subject that gets a consumer
// of its own later starts after the shared one's ack floor. A consumer
// whose subject has a message again after the caller looked is kept.
func TestUnknownConsumersBeyondTheCapShareOne(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if _, err := f.js.CreateStream(f.ctx, jetstream.StreamConfig{Name: "CG_EVENTS", Subjects: []string{"cg.events.>"}}); err != nil {
		t.Fatal(err)
	}
	cfg := queue.StreamConfig{Names: queue.NewNames(""), AckWait: 45 * time.Second, UnknownConsumers: 1}
	names := cfg.Names
	seq := map[string]uint64{}
	for _, subject := range []string{"cg.events.a", "cg.events.b", "cg.events.c", "cg.events.b"} {
		ack, err := f.js.Publish(f.ctx, subject, []byte("{}"))
		if err != nil {
			t.Fatal(err)
		}
		seq[subject] = ack.Sequence // the last one's
	}
	got, err := queue.EnsureUnknownConsumers(f.ctx, f.events(t), cfg, []string{"cg.events.a", "cg.events.b", "cg.events.c"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].CachedInfo().Name != names.UnknownConsumer("cg.events.a") ||
		got[1].CachedInfo().Name != names.SharedUnknownConsumer() ||
		!slices.Equal(got[1].CachedInfo().Config.FilterSubjects, []string{"cg.events.b", "cg.events.c"}) {
		t.Fatalf("consumers %v", consumerNames(got))
	}
	// The shared consumer settles the first event on b and the one on c.
	batch, err := got[1].Fetch(2)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	// a is gone from the stream: its consumer goes, b takes its place from
	// after the shared consumer's ack floor, and c is shared alone.
	events, err := f.js.Stream(f.ctx, "CG_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if err := events.Purge(f.ctx, jetstream.WithPurgeSubject("cg.events.a")); err != nil {
		t.Fatal(err)
	}
	got, err = queue.EnsureUnknownConsumers(f.ctx, f.events(t), cfg, []string{"cg.events.b", "cg.events.c"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].CachedInfo().Name != names.UnknownConsumer("cg.events.b") ||
		!slices.Equal(got[1].CachedInfo().Config.FilterSubjects, []string{"cg.events.c"}) {
		t.Fatalf("consumers %v", consumerNames(got))
	}
	if c := got[0].CachedInfo().Config; c.DeliverPolicy != jetstream.DeliverByStartSequencePolicy || c.OptStartSeq != seq["cg.events.c"]+1 {
		t.Errorf("cg.events.b starts at %v %d, want after the shared consumer's ack floor %d", c.DeliverPolicy, c.OptStartSeq, seq["cg.events.c"])
	}
	if _, err := f.js.Consumer(f.ctx, "CG_EVENTS", names.UnknownConsumer("cg.events.a")); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("the consumer of a subject without messages is still there: %v", err)
	}
	// A caller whose list of subjects is older than b's messages keeps
	// b's consumer.
	if _, err := queue.EnsureUnknownConsumers(f.ctx, f.events(t), cfg, []string{"cg.events.c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.js.Consumer(f.ctx, "CG_EVENTS", names.UnknownConsumer("cg.events.b")); err != nil {
		t.Errorf("the consumer of a subject that holds messages was deleted: %v", err)
	}
}

func consumerNames(cs []jetstream.Consumer) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.CachedInfo().Name)
	}
	return out
}

// events is the stream CG_EVENTS.
func (f fixture) events(t *testing.T) jetstream.Stream {
	t.Helper()
	s, err := f.js.Stream(f.ctx, "CG_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestUnknownSharedConsumerKeptWhenAnotherFails: when a subject's own
// consumer cannot be made, the subject is still the shared consumer's, so
// that consumer is left as it is rather than made again without it (which
// would lose the position its own consumer must start after).
func TestUnknownSharedConsumerKeptWhenAnotherFails(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if _, err := f.js.CreateStream(f.ctx, jetstream.StreamConfig{Name: "CG_EVENTS", Subjects: []string{"cg.events.>"}, MaxConsumers: 3}); err != nil {
		t.Fatal(err)
	}
	cfg := queue.StreamConfig{Names: queue.NewNames(""), UnknownConsumers: 1}
	for _, subject := range []string{"cg.events.a", "cg.events.b", "cg.events.c"} {
		if _, err := f.js.Publish(f.ctx, subject, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	got, err := queue.EnsureUnknownConsumers(f.ctx, f.events(t), cfg, []string{"cg.events.a", "cg.events.b", "cg.events.c"})
	if err != nil || len(got) != 2 {
		t.Fatalf("consumers %v, %v", consumerNames(got), err)
	}
	before := got[1].CachedInfo()
	// An older version's single consumer, which read c, takes the third
	// slot; it too is kept while a subject's own consumer fails.
	natstest.LegacyUnknownConsumer(t, f.js, cfg.Names, "cg.events.c", 1)
	// a's messages are gone, but its consumer still holds a slot when b's
	// own consumer is to be made: that fails.
	if err := f.events(t).Purge(f.ctx, jetstream.WithPurgeSubject("cg.events.a")); err != nil {
		t.Fatal(err)
	}
	got, err = queue.EnsureUnknownConsumers(f.ctx, f.events(t), cfg, []string{"cg.events.b", "cg.events.c"})
	if err == nil {
		t.Fatal("no error though the stream's consumer limit was reached")
	}
	// The consumers that could be had are still returned, to be read.
	if names := consumerNames(got); !slices.Equal(names, []string{cfg.Names.SharedUnknownConsumer()}) {
		t.Errorf("consumers returned beside the error: %v, want the shared one", names)
	}
	if _, err := f.js.Consumer(f.ctx, "CG_EVENTS", cfg.Names.LegacyUnknownConsumer()); err != nil {
		t.Errorf("legacy consumer after another failed: %v, want it kept", err)
	}
	shared, err := f.js.Consumer(f.ctx, "CG_EVENTS", cfg.Names.SharedUnknownConsumer())
	if err != nil {
		t.Fatal(err)
	}
	if after := shared.CachedInfo(); !after.Created.Equal(before.Created) || !slices.Equal(after.Config.FilterSubjects, before.Config.FilterSubjects) {
		t.Errorf("shared consumer made again (%v, %v) after another failed", after.Created, after.Config.FilterSubjects)
	}
}
