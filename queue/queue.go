package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/schemas"
)

// ConnConfig is how to reach NATS (README, "Configuration").
type ConnConfig struct {
	URL      string // comma-separated server URLs
	Name     string // client connection name
	Creds    string // NATS_CREDS: credentials file
	NKey     string // NATS_NKEY: nkey seed file
	User     string
	Password string // secret
	Token    string // secret
	TLSCA    string
	TLSCert  string
	TLSKey   string
	Logger   *slog.Logger
	// OnStateChange, when set, is called on disconnect (false) and
	// reconnect (true) so readiness can follow the connection.
	OnStateChange func(connected bool)
}

// DefaultURL is where Connect dials when ConnConfig.URL is empty.
const DefaultURL = "nats://127.0.0.1:4222"

// reconnectWait is the pause between reconnect attempts; nats.go adds up
// to reconnectJitter (reconnectJitterTLS with TLS) so that replicas do
// not reconnect in lockstep after a server restart.
const (
	reconnectWait      = time.Second
	reconnectJitter    = 500 * time.Millisecond
	reconnectJitterTLS = time.Second
)

// Connect dials NATS with infinite reconnects and logged connection events.
//
// Only the first connection is not retried: when no server in URL can be
// reached, Connect fails at once, so a wrong URL or a NATS server that is
// down at start-up ends the process (exit 1) instead of hanging silently;
// the orchestrator restarts it. Once connected, the connection is never
// given up: it reconnects forever, calling OnStateChange on each change.
//
// A file setting that cannot be used is an error naming the setting, such
// as "NATS_CREDS: open /x: no such file or directory". Secrets never
// appear in errors or logs.
func Connect(ctx context.Context, cfg ConnConfig) (*nats.Conn, error) {
	opts, err := connOptions(cfg)
	if err != nil {
		return nil, err
	}
	servers := cfg.URL
	if strings.TrimSpace(servers) == "" {
		servers = DefaultURL
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// nats.Connect has no context; dial in a goroutine and give the
	// connection up if ctx ends first.
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(servers, opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("NATS_URL: connect to %s: %w", redactURLs(servers), r.err)
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// connOptions turns cfg into nats.go options, checking each file setting
// up front so that an error names the setting rather than surfacing later
// as an anonymous connect failure.
func connOptions(cfg ConnConfig) ([]nats.Option, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	notify := func(connected bool) {
		if cfg.OnStateChange != nil {
			cfg.OnStateChange(connected)
		}
	}

	var auth []string
	if cfg.Creds != "" {
		auth = append(auth, "NATS_CREDS")
	}
	if cfg.NKey != "" {
		auth = append(auth, "NATS_NKEY")
	}
	if cfg.User != "" {
		auth = append(auth, "NATS_USER")
	}
	if cfg.Token != "" {
		auth = append(auth, "NATS_TOKEN")
	}
	if len(auth) > 1 {
		return nil, fmt.Errorf("%s: set only one way to authenticate to NATS", strings.Join(auth, ", "))
	}
	if cfg.Password != "" && cfg.User == "" {
		return nil, errors.New("NATS_PASSWORD: set NATS_USER as well")
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		if cfg.TLSCert == "" {
			return nil, errors.New("NATS_TLS_CERT: required with NATS_TLS_KEY")
		}
		return nil, errors.New("NATS_TLS_KEY: required with NATS_TLS_CERT")
	}

	opts := []nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.ReconnectJitter(reconnectJitter, reconnectJitterTLS),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "error", err)
			} else {
				log.Info("nats disconnected")
			}
			notify(false)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
			notify(true)
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			log.Info("nats connection closed")
			notify(false)
		}),
		nats.LameDuckModeHandler(func(nc *nats.Conn) {
			log.Warn("nats server entered lame duck mode", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Error("nats error", "subject", sub.Subject, "error", err)
				return
			}
			log.Error("nats error", "error", err)
		}),
	}
	if cfg.Name != "" {
		opts = append(opts, nats.Name(cfg.Name))
	}

	// check applies a file-reading option to scratch options, so a bad
	// file is reported now under its setting's name.
	check := func(setting string, opt nats.Option) error {
		var scratch nats.Options
		if err := opt(&scratch); err != nil {
			return fmt.Errorf("%s: %w", setting, err)
		}
		opts = append(opts, opt)
		return nil
	}
	switch {
	case cfg.Creds != "":
		b, err := os.ReadFile(cfg.Creds)
		if err != nil {
			return nil, fmt.Errorf("NATS_CREDS: %w", err)
		}
		if !bytes.Contains(b, []byte("BEGIN NATS USER JWT")) {
			return nil, fmt.Errorf("NATS_CREDS: %s is not a NATS credentials file (no user JWT)", cfg.Creds)
		}
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	case cfg.NKey != "":
		opt, err := nats.NkeyOptionFromSeed(cfg.NKey)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY: %w", err)
		}
		opts = append(opts, opt)
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.TLSCA != "" {
		if err := check("NATS_TLS_CA", nats.RootCAs(cfg.TLSCA)); err != nil {
			return nil, err
		}
	}
	if cfg.TLSCert != "" {
		if err := check("NATS_TLS_CERT", nats.ClientCert(cfg.TLSCert, cfg.TLSKey)); err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// redactURLs drops any user:password@ from comma-separated URLs, for errors.
func redactURLs(servers string) string {
	parts := strings.Split(servers, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if u, err := url.Parse(p); err == nil && u.User != nil {
			u.User = nil
			p = u.String()
		} else if err != nil && strings.Contains(p, "@") {
			p = "(unparsable URL)"
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}

// StreamConfig are the settings of streams the worker creates.
type StreamConfig struct {
	Names   Names
	AckWait time.Duration // CG_ACK_WAIT; CG_DLQ's duplicate window is at least twice it
	// Replicas of the streams and bucket created here (0 means 1) and of
	// the consumers created here (0 means the stream's). Existing ones keep
	// theirs.
	Replicas int
	// UnknownConsumers is how many unknown subjects get a consumer of their
	// own (0 means DefaultUnknownConsumers); the others share one.
	UnknownConsumers int
}

// DefaultAckWait is used when StreamConfig.AckWait is zero (CG_ACK_WAIT's default).
const DefaultAckWait = 30 * time.Second

// MaxAckPending bounds the messages a consumer created here hands out
// without an acknowledgement, across all replicas. It is far above what
// CG_CONCURRENCY keeps in flight, yet bounds what an outage can hold back:
// messages handed back with a delay still count until redelivered.
const MaxAckPending = 10_000

// minDuplicateWindow is the server's default duplicate window; the DLQ's
// is never shorter.
const minDuplicateWindow = 2 * time.Minute

func (c StreamConfig) ackWait() time.Duration {
	if c.AckWait <= 0 {
		return DefaultAckWait
	}
	return c.AckWait
}

func (c StreamConfig) replicas() int {
	if c.Replicas <= 0 {
		return 1
	}
	return c.Replicas
}

// streamConfigs are the streams EnsureStreams creates when missing.
func (c StreamConfig) streamConfigs() []jetstream.StreamConfig {
	dup := max(2*c.ackWait(), minDuplicateWindow)
	return []jetstream.StreamConfig{
		{
			Name: c.Names.EventsStream(),
			// Exactly the kinds' subjects: a publish to any other subject
			// fails at the producer instead of waiting unread.
			Subjects:  c.Names.EventSubjects(),
			Retention: jetstream.LimitsPolicy,
			Storage:   jetstream.FileStorage,
			Replicas:  c.replicas(),
		},
		{
			Name:        c.Names.DLQStream(),
			Subjects:    []string{c.Names.DLQWildcard()},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    c.replicas(),
			MaxAge:      0, // dead letters wait for an operator, however long
			Duplicates:  dup,
			AllowDirect: true,
		},
		{
			Name:      c.Names.ResponsesStream(),
			Subjects:  []string{c.Names.ResponsesSubject()},
			Retention: jetstream.LimitsPolicy,
			Storage:   jetstream.FileStorage,
			Replicas:  c.replicas(),
		},
	}
}

// EnsureStreams creates CG_EVENTS, CG_DLQ and CG_RESPONSES when missing
// (file storage), and the CG_DLQ_BODIES object store, and leaves existing
// ones as they are. An existing dead-letter stream that does not take
// every <prefix>.dlq.<kind>.> is an error naming it and the subjects it
// needs: dead letters published there would fail forever.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) error {
	for _, sc := range cfg.streamConfigs() {
		s, err := ensureStream(ctx, js, sc)
		if err != nil {
			return err
		}
		if sc.Name == cfg.Names.DLQStream() {
			if err := checkDLQSubjects(cfg.Names, s.CachedInfo().Config.Subjects); err != nil {
				return err
			}
		}
	}
	_, err := EnsureDLQBodies(ctx, js, cfg)
	return err
}

// DLQSubjectsNeeded are the subjects a dead-letter stream must take.
func (n Names) DLQSubjectsNeeded() []string {
	out := make([]string, 0, len(schemas.Kinds)+1)
	for _, k := range append(schemas.Kinds[:len(schemas.Kinds):len(schemas.Kinds)], UnknownKind) {
		out = append(out, n.DLQKindWildcard(k))
	}
	return out
}

// checkDLQSubjects fails when the stream subjects in have miss one
// of n.DLQSubjectsNeeded.
func checkDLQSubjects(n Names, have []string) error {
	var missing []string
	for _, need := range n.DLQSubjectsNeeded() {
		if !slices.ContainsFunc(have, func(h string) bool { return subjectCovers(h, need) }) {
			missing = append(missing, need)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("dead-letter stream %s takes %v but must also take %s (dead letters have one subject each; %s covers them all): add them to the stream",
		n.DLQStream(), have, strings.Join(missing, ", "), n.DLQWildcard())
}

// subjectCovers reports whether every subject matching pattern want also
// matches the stream subject have (both may hold wildcards).
func subjectCovers(have, want string) bool {
	h, w := strings.Split(have, "."), strings.Split(want, ".")
	for i, ht := range h {
		if ht == ">" {
			return i < len(w)
		}
		if i >= len(w) {
			return false
		}
		switch wt := w[i]; {
		case wt == ">":
			return false // want takes more tokens than have's literal or *
		case ht == "*":
		case ht != wt || wt == "*":
			return false
		}
	}
	return len(h) == len(w)
}

// EnsureDLQBodies returns the CG_DLQ_BODIES object store, creating it with
// cfg's replicas when missing; an existing bucket is used as it is.
func EnsureDLQBodies(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.ObjectStore, error) {
	return ensureBucket(ctx, "object store", cfg.Names.DLQBodiesBucket(), js.ObjectStore,
		func(ctx context.Context, bucket string) (jetstream.ObjectStore, error) {
			return js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
				Bucket:      bucket,
				Description: "bodies and headers of dead letters too large to store whole",
				Storage:     jetstream.FileStorage,
				Replicas:    cfg.replicas(),
			})
		})
}

// ensureBucket returns the bucket named bucket, creating it when missing.
// An existing bucket is used as it is, so an operator's settings are never
// overwritten; one created by another replica in the meantime is looked up
// again. what names the kind of bucket in errors.
func ensureBucket[B any](ctx context.Context, what, bucket string,
	get func(context.Context, string) (B, error),
	create func(context.Context, string) (B, error),
) (B, error) {
	b, err := get(ctx, bucket)
	if err == nil {
		return b, nil
	}
	var none B
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return none, fmt.Errorf("look up %s %s: %w", what, bucket, err)
	}
	b, err = create(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketExists) {
		b, err = get(ctx, bucket)
	}
	if err != nil {
		return none, fmt.Errorf("create %s %s: %w", what, bucket, err)
	}
	return b, nil
}

// ensureStream looks the stream up and creates it only when it is missing,
// so that an operator's settings are never overwritten.
func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, sc.Name)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("look up stream %s: %w", sc.Name, err)
	}
	s, err = js.CreateStream(ctx, sc)
	if err == nil {
		return s, nil
	}
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		// Another replica created it between our look-up and create.
		if s, err2 := js.Stream(ctx, sc.Name); err2 == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("create stream %s: %w", sc.Name, err)
}

// consumerConfig is the durable consumer EnsureConsumer creates for kind.
func (c StreamConfig) consumerConfig(kind schemas.Kind) jetstream.ConsumerConfig {
	cc := c.durable(c.Names.Consumer(kind))
	cc.FilterSubject = c.Names.EventSubject(kind)
	return cc
}

// durable is what every consumer of the events stream cgworker creates
// shares: from the first message, explicit acknowledgements, no delivery
// limit (a message is never dropped after N tries; README, "Outcomes").
func (c StreamConfig) durable(name string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       name,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.ackWait(),
		MaxDeliver:    -1,
		MaxAckPending: MaxAckPending,
		// 0 follows the stream, which may be an operator's R3 stream.
		Replicas: max(c.Replicas, 0),
	}
}

// EnsureConsumer returns the durable pull consumer of kind on the events
// stream, creating it when missing (explicit ack, ack wait, unlimited
// deliveries, no inactivity threshold). An existing consumer is used as it
// is, except that one with a delivery limit is refused with an error
// naming it.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, cfg StreamConfig, kind schemas.Kind) (jetstream.Consumer, error) {
	stream := cfg.Names.EventsStream()
	cc := cfg.consumerConfig(kind)
	cons, err := ensureConsumer(ctx, stream, cc,
		func(ctx context.Context, name string) (jetstream.Consumer, error) {
			return js.Consumer(ctx, stream, name)
		},
		func(ctx context.Context, cc jetstream.ConsumerConfig) (jetstream.Consumer, error) {
			return js.CreateConsumer(ctx, stream, cc)
		})
	if err != nil {
		return nil, err
	}
	if md := cons.CachedInfo().Config.MaxDeliver; md > 0 {
		return nil, fmt.Errorf("consumer %s on stream %s has max_deliver=%d: the server would drop messages after %d deliveries; remove the limit",
			cc.Durable, stream, md, md)
	}
	return cons, nil
}

// ensureConsumer returns the durable consumer cc describes on stream,
// created when missing; an existing one is used as it is, and one another
// replica created first, perhaps differently, is looked up again. get and
// create are the stream's (jetstream.Stream's Consumer and CreateConsumer).
func ensureConsumer(ctx context.Context, stream string, cc jetstream.ConsumerConfig,
	get func(context.Context, string) (jetstream.Consumer, error),
	create func(context.Context, jetstream.ConsumerConfig) (jetstream.Consumer, error),
) (jetstream.Consumer, error) {
	cons, err := get(ctx, cc.Durable)
	if err == nil {
		return cons, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("look up consumer %s on stream %s: %w", cc.Durable, stream, err)
	}
	cons, err = create(ctx, cc)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		cons, err = get(ctx, cc.Durable)
	}
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on stream %s: %w", cc.Durable, stream, err)
	}
	return cons, nil
}

// SubjectCount is the number of messages stream holds on subject.
func SubjectCount(ctx context.Context, stream jetstream.Stream, subject string) (uint64, error) {
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return 0, fmt.Errorf("subjects of stream %s: %w", stream.CachedInfo().Config.Name, err)
	}
	return info.State.Subjects[subject], nil
}

// EnsureSyncBucket returns the CG_SYNC key-value bucket, creating it with
// cfg's replicas when missing; an existing bucket is used as it is. Give it
// the StreamConfig given to EnsureStreams.
func EnsureSyncBucket(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.KeyValue, error) {
	return ensureBucket(ctx, "key-value bucket", cfg.Names.SyncBucket(), js.KeyValue,
		func(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
			return js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket:   bucket,
				History:  1,
				Storage:  jetstream.FileStorage,
				Replicas: cfg.replicas(),
			})
		})
}

// WrongLastSequence reports the server refusing a publish whose expected
// last (subject) sequence does not hold: on a subject expected to be
// empty, the message is already there.
func WrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
