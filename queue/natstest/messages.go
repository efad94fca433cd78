package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Messages returns the messages stored in stream, in stream order: all of
// them, or only those on subjects (wildcards allowed) when given. It counts
// them first, then reads that many through an ordered consumer (fast for
// thousands of messages, and it recovers from a server restart or a leader
// change), retrying failed fetches for up to a minute. Deleted messages are
// neither counted nor delivered.
func Messages(tb testing.TB, js jetstream.JetStream, stream string, subjects ...string) []*jetstream.RawStreamMsg {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		tb.Fatalf("natstest: stream %s: %v", stream, err)
	}
	want, err := count(ctx, s, subjects)
	if err != nil {
		tb.Fatalf("natstest: stream %s info: %v", stream, err)
	}
	out := make([]*jetstream.RawStreamMsg, 0, want)
	if want == 0 {
		return out
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: subjects})
	if err != nil {
		tb.Fatalf("natstest: ordered consumer on %s: %v", stream, err)
	}
	defer func() {
		// Each fetch replaces the consumer; only the last one is left.
		if ci := cons.CachedInfo(); ci != nil {
			dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = js.DeleteConsumer(dctx, stream, ci.Name)
			dcancel()
		}
	}()
	var last error
	for len(out) < want {
		if ctx.Err() != nil {
			tb.Fatalf("natstest: read %d of %d messages of %s: %v (last error: %v)", len(out), want, stream, ctx.Err(), last)
		}
		// Never more than remain: a batch that cannot fill waits out its
		// expiry.
		batch, err := cons.Fetch(min(want-len(out), 500), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			last = err
			select { // a pause between retries, not a synchronisation
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				tb.Fatalf("natstest: %s: %v", stream, err)
			}
			out = append(out, &jetstream.RawStreamMsg{
				Subject:  m.Subject(),
				Sequence: md.Sequence.Stream,
				Header:   m.Headers(),
				Data:     m.Data(),
				Time:     md.Timestamp,
			})
		}
		if err := batch.Error(); err != nil {
			last = err
		}
	}
	return out
}

// count is how many messages of s are on subjects (all when none given).
// Filters may overlap, so their subjects are counted once each.
func count(ctx context.Context, s jetstream.Stream, subjects []string) (int, error) {
	if len(subjects) == 0 {
		info, err := s.Info(ctx)
		if err != nil {
			return 0, err
		}
		return int(info.State.Msgs), nil
	}
	seen := make(map[string]uint64)
	for _, f := range subjects {
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(f))
		if err != nil {
			return 0, err
		}
		for subj, n := range info.State.Subjects {
			seen[subj] = n
		}
	}
	total := 0
	for _, n := range seen {
		total += int(n)
	}
	return total, nil
}
