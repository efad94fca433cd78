package queue_test

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
)

// An existing dead-letter stream that cannot take the letters' own
// subjects stops start-up with an error naming it and what it needs; one
// that takes them, in whatever form, is used as it is. The events stream
// and the object store are created alongside.
func TestEnsureStreamsChecksDeadLetterSubjects(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for i, tc := range []struct {
		subjects []string
		missing  []string // nil: accepted
	}{
		{[]string{"a.dlq.activity", "a.dlq.account", "a.dlq.contact"}, []string{"a.dlq.activity.>", "a.dlq.account.>", "a.dlq.contact.>", "a.dlq.unknown.>"}},
		{[]string{"a.dlq.*"}, []string{"a.dlq.activity.>"}},
		{[]string{"a.dlq.activity.>", "a.dlq.account.>", "a.dlq.contact.*"}, []string{"a.dlq.contact.>", "a.dlq.unknown.>"}},
		{[]string{"a.dlq.>"}, nil},
		{[]string{"a.dlq.*.*"}, []string{"a.dlq.activity.>"}},
		{[]string{"a.dlq.*.>"}, nil},
		{[]string{"a.dlq.activity", "a.dlq.activity.>", "a.dlq.account.>", "a.dlq.contact.>", "a.dlq.unknown.>"}, nil},
	} {
		names := queue.NewNames("a")
		_ = f.js.DeleteStream(f.ctx, names.DLQStream())
		if _, err := f.js.CreateStream(f.ctx, jetstream.StreamConfig{Name: names.DLQStream(), Subjects: tc.subjects}); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		err := queue.EnsureStreams(f.ctx, f.js, queue.StreamConfig{Names: names})
		if tc.missing == nil {
			if err != nil {
				t.Errorf("case %d %v: %v", i, tc.subjects, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "dead-letter stream A_DLQ") {
			t.Errorf("case %d %v: err = %v, want one naming A_DLQ", i, tc.subjects, err)
			continue
		}
		for _, m := range tc.missing {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("case %d %v: error does not name %s: %v", i, tc.subjects, m, err)
			}
		}
	}
	if _, err := f.js.ObjectStore(f.ctx, "A_DLQ_BODIES"); err != nil {
		t.Errorf("object store: %v", err)
	}
	// The events stream created here takes the kinds' subjects only: a
	// producer's typo fails at the producer instead of waiting unread.
	if _, err := f.js.Publish(f.ctx, "a.events.activity", []byte(`{}`)); err != nil {
		t.Errorf("publish to a kind's subject: %v", err)
	}
	if _, err := f.js.Publish(f.ctx, "a.events.ticket", []byte(`{}`)); err == nil {
		t.Error("publish to a.events.ticket was stored")
	}
}
