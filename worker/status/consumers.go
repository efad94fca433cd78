package status

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cgworker/cgworker/queue"
	"github.com/cgworker/cgworker/schemas"
)

// Consumer is the backlog of one kind's durable consumer.
type Consumer struct {
	Kind        string `json:"kind"`
	Name        string `json:"consumer"`
	Stream      string `json:"stream"`
	Pending     uint64 `json:"pending"`     // in the stream, not yet delivered
	AckPending  int    `json:"ack_pending"` // delivered, not yet acknowledged
	Redelivered int    `json:"redelivered"` // delivered more than once and not yet acknowledged
	// OldestPending is when the oldest event not yet acknowledged was
	// stored; zero when nothing waits.
	OldestPending time.Time `json:"oldest_pending,omitzero"`
	// OldestPendingAge is its age at the report's time, in seconds.
	OldestPendingAge float64 `json:"oldest_pending_age_seconds,omitempty"`
	// Waiting counts events on the kind's subject when its consumer is
	// missing (the kind is not consumed): they wait in the stream.
	Waiting uint64 `json:"waiting,omitempty"`
	Missing bool   `json:"missing,omitempty"`
}

func readConsumers(ctx context.Context, js jetstream.JetStream, cfg Config, r *Report) error {
	stream, err := eventsStream(ctx, js, cfg.Names)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		r.Missing = append(r.Missing, "stream "+cfg.Names.EventsStream())
		r.attention("events stream %s does not exist: no worker with subject prefix %q has started, or NATS_URL points elsewhere",
			cfg.Names.EventsStream(), cfg.Names.Prefix)
		return nil
	}
	if err != nil {
		return fmt.Errorf("events stream %s: %w", cfg.Names.EventsStream(), err)
	}
	streamName := stream.CachedInfo().Config.Name
	now := cfg.Now()
	for _, k := range schemas.Kinds {
		c := Consumer{Kind: string(k), Name: cfg.Names.Consumer(k), Stream: streamName}
		cons, err := stream.Consumer(ctx, c.Name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			c.Missing = true
			r.Missing = append(r.Missing, "consumer "+c.Name)
			if c.Waiting, err = queue.SubjectCount(ctx, stream, cfg.Names.EventSubject(k)); err != nil {
				return err
			}
			if c.Waiting > 0 {
				r.attention("%d %s events wait in %s and consumer %s does not exist: is the kind's configuration set (README, \"Configuration\")?",
					c.Waiting, k, streamName, c.Name)
			}
			r.Consumers = append(r.Consumers, c)
			continue
		}
		if err != nil {
			return fmt.Errorf("consumer %s: %w", c.Name, err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("consumer %s: %w", c.Name, err)
		}
		c.Pending, c.AckPending, c.Redelivered = info.NumPending, info.NumAckPending, info.NumRedelivered
		if c.Pending+uint64(c.AckPending) > 0 {
			stored, err := oldestUnacked(ctx, stream, info)
			if err != nil {
				return fmt.Errorf("consumer %s: oldest pending event: %w", c.Name, err)
			}
			if !stored.IsZero() {
				c.OldestPending = stored.UTC()
				age := now.Sub(stored)
				c.OldestPendingAge = age.Seconds()
				if age > cfg.MaxPendingAge {
					r.attention("%s: the oldest unprocessed event was stored %s ago (over %s); %d pending, %d being processed",
						c.Name, age.Round(time.Second), cfg.MaxPendingAge, c.Pending, c.AckPending)
				}
			}
		}
		r.Consumers = append(r.Consumers, c)
	}
	return nil
}

// oldestUnacked is the store time of the first event after the consumer's
// ack floor on its filter subject: the oldest one not yet acknowledged.
func oldestUnacked(ctx context.Context, stream jetstream.Stream, info *jetstream.ConsumerInfo) (time.Time, error) {
	subject := info.Config.FilterSubject
	if subject == "" && len(info.Config.FilterSubjects) == 1 {
		subject = info.Config.FilterSubjects[0]
	}
	if subject == "" {
		subject = ">" // no or several filters: the next message of any subject
	}
	msg, err := stream.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return time.Time{}, nil // acknowledged meanwhile
	}
	if err != nil {
		return time.Time{}, err
	}
	return msg.Time, nil
}
