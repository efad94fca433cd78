package natstest_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue/natstest"
)

func TestMessagesAndPublish(t *testing.T) {
	t.Parallel()
	srv := natstest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	js := srv.JetStream(t)
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := natstest.Messages(t, js, "S"); len(got) != 0 {
		t.Fatalf("empty stream: %d messages", len(got))
	}

	// More than one fetch's worth, on three subjects, with a header.
	const n = 1200
	subjects := []string{"s.a", "s.b", "s.c.d"}
	for i := range n {
		m := nats.NewMsg(subjects[i%3])
		m.Data = fmt.Appendf(nil, "%d", i)
		m.Header.Set("N", fmt.Sprint(i))
		if _, err := js.PublishMsgAsync(m); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("publishes not acknowledged")
	}
	// Deleted messages are skipped: the first and one in the middle.
	for _, seq := range []uint64{1, 601} {
		if err := s.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}

	check := func(name string, got []*jetstream.RawStreamMsg, keep func(i int) bool) {
		t.Helper()
		var want []uint64
		for i := range n {
			if seq := uint64(i + 1); seq != 1 && seq != 601 && keep(i) {
				want = append(want, seq)
			}
		}
		seqs := make([]uint64, len(got))
		for i, m := range got {
			seqs[i] = m.Sequence
			j := int(m.Sequence - 1)
			if m.Subject != subjects[j%3] || string(m.Data) != fmt.Sprint(j) || m.Header.Get("N") != fmt.Sprint(j) || m.Time.IsZero() {
				t.Errorf("%s: message %d = %s %q N=%q at %v", name, m.Sequence, m.Subject, m.Data, m.Header.Get("N"), m.Time)
				return
			}
		}
		if !slices.Equal(seqs, want) {
			t.Errorf("%s: %d messages, want %d in stream order", name, len(seqs), len(want))
		}
	}
	check("all", natstest.Messages(t, js, "S"), func(int) bool { return true })
	check("s.a", natstest.Messages(t, js, "S", "s.a"), func(i int) bool { return i%3 == 0 })
	// Overlapping filters count each message once.
	check("s.c.> and s.*.d", natstest.Messages(t, js, "S", "s.c.>", "s.*.d"), func(i int) bool { return i%3 == 2 })
	check("s.b and s.c.d", natstest.Messages(t, js, "S", "s.b", "s.c.d"), func(i int) bool { return i%3 != 0 })

	// Publish appends a backlog and returns its last sequence.
	if last := natstest.Publish(t, js, "s.e", []byte("e"), 700); last != n+700 {
		t.Errorf("Publish: last sequence %d, want %d", last, n+700)
	}
	if got := natstest.Messages(t, js, "S", "s.e"); len(got) != 700 || got[0].Sequence != n+1 || string(got[699].Data) != "e" {
		t.Errorf("after Publish: %d messages on s.e", len(got))
	}

	// Reading leaves no consumer behind (the ordered consumer deletes the
	// ones it replaces asynchronously).
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Consumers == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d consumers left on the stream", info.State.Consumers)
		}
		<-tick.C
	}
}
