package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
)

// LegacyUnknownConsumer makes, on the events stream, the single consumer of
// unknown subjects that older versions made (queue.Names.
// LegacyUnknownConsumer), reading subject, and acknowledges the first
// settled messages it delivers, as an older replica would have settled
// them. The stream must hold at least settled messages on subject.
func LegacyUnknownConsumer(tb testing.TB, js jetstream.JetStream, names queue.Names, subject string, settled int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cc := queue.StreamConfig{Names: names}.UnknownConsumerConfig(subject, 0)
	cc.Durable, cc.FilterSubject, cc.FilterSubjects = names.LegacyUnknownConsumer(), "", []string{subject}
	cons, err := js.CreateConsumer(ctx, names.EventsStream(), cc)
	if err != nil {
		tb.Fatalf("natstest: legacy consumer of %s: %v", subject, err)
	}
	batch, err := cons.Fetch(settled)
	if err != nil {
		tb.Fatalf("natstest: fetch from the legacy consumer: %v", err)
	}
	n := 0
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			tb.Fatalf("natstest: acknowledge on the legacy consumer: %v", err)
		}
		n++
	}
	if n != settled {
		tb.Fatalf("natstest: the legacy consumer delivered %d of %d messages on %s (%v)", n, settled, subject, batch.Error())
	}
}
