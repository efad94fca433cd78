package responses

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ackLosingJS is a real JetStream whose publishes of the chosen response
// numbers are stored by the server but, the first time, answered with
// context.DeadlineExceeded, as when the acknowledgement is lost. After
// each lost ack the next tailFailures reads of the subject's last message
// fail the same way, so the retry reaches the server before the tail is
// known.
type ackLosingJS struct {
	jetstream.JetStream
	tailFailures int

	mu         sync.Mutex
	lose       map[string]bool // CG-Response-Number values whose ack is still to be lost
	lost       int
	failTailsN int
}

func newAckLosingJS(js jetstream.JetStream, tailFailures int, numbers ...int64) *ackLosingJS {
	j := &ackLosingJS{JetStream: js, tailFailures: tailFailures, lose: map[string]bool{}}
	for _, n := range numbers {
		j.lose[fmt.Sprint(n)] = true
	}
	return j
}

func (j *ackLosingJS) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	ack, err := j.JetStream.PublishMsg(ctx, msg, opts...)
	if err != nil {
		return ack, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if n := msg.Header.Get(HeaderNumber); j.lose[n] {
		delete(j.lose, n)
		j.lost++
		j.failTailsN = j.tailFailures
		return nil, context.DeadlineExceeded
	}
	return ack, nil
}

func (j *ackLosingJS) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	st, err := j.JetStream.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return tailFailingStream{Stream: st, js: j}, nil
}

func (j *ackLosingJS) lostAcks() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.lost
}

// tailFailingStream fails the tail reads its ackLosingJS asks it to.
type tailFailingStream struct {
	jetstream.Stream
	js *ackLosingJS
}

func (s tailFailingStream) GetLastMsgForSubject(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	s.js.mu.Lock()
	fail := s.js.failTailsN > 0
	if fail {
		s.js.failTailsN--
	}
	s.js.mu.Unlock()
	if fail {
		return nil, context.DeadlineExceeded
	}
	return s.Stream.GetLastMsgForSubject(ctx, subject)
}

// TestLostAckResolved loses the acknowledgement of publishes that the
// server stored: on the first response of the subject, in the middle of a
// page and on a page's first response. Whether the Sync learns the outcome
// from the subject's tail or from retrying the publish (which a single
// server refuses, the expected last sequence having moved on to the stored
// message, whatever the duplicate window), each response is on the subject
// once and none counts as a duplicate.
func TestLostAckResolved(t *testing.T) {
	t.Parallel()
	for _, window := range []time.Duration{0, 100 * time.Millisecond} {
		for _, tailFailures := range []int{0, 1} {
			t.Run(fmt.Sprintf("window=%s/tail-failures=%d", window, tailFailures), func(t *testing.T) {
				t.Parallel()
				w := setup(t, 300, window)
				ctx := testContext(t)
				js, kv := w.connect()
				lossy := newAckLosingJS(js, tailFailures, firstNumber, firstNumber+149, firstNumber+200)
				s := w.newSyncOn(lossy, kv, Config{PerPage: 100})
				res, err := s.Once(ctx)
				if err != nil || res.Published != 300 || res.Duplicates != 0 || res.Skipped != 0 {
					t.Fatalf("Once: %+v, %v", res, err)
				}
				if n := lossy.lostAcks(); n != 3 {
					t.Fatalf("%d acks lost, want 3", n)
				}
				w.checkExactlyOnce(w.messages(), 0)
			})
		}
	}
}
