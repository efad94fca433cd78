package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// The consumers of unknown subjects (README, "Dead letters"): one durable
// consumer per subject of the events stream that is no kind's, filtered to
// exactly that subject.
//
// A consumer is never made again while the stream holds a message on its
// subject, so an event it has settled is never read again: its letter,
// purged or replayed since, does not come back. (One consumer of every
// unknown subject had to be made again from the stream's first message
// whenever a subject appeared, since a widened filter does not go back,
// and brought back every purged letter.) A consumer whose subject the
// stream no longer holds a message on is deleted; made again for a later
// message, it reads from the start, where nothing it read before is left.

// UnknownConsumerConfig is the durable consumer of subject, an unknown
// subject of the events stream. It reads from the stream's first message
// on the subject, or from sequence start when start is above zero.
func (c StreamConfig) UnknownConsumerConfig(subject string, start uint64) jetstream.ConsumerConfig {
	cc := c.durable(c.Names.UnknownConsumer(subject))
	cc.FilterSubject = subject
	if start > 0 {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	return cc
}

// EnsureUnknownConsumers returns the consumer of each of subjects, the
// unknown subjects the events stream holds messages on, in their order.
// A missing one is made; an existing one is used as it is. It deletes the
// consumers of unknown subjects not among them, and takes the place of
// LegacyUnknownConsumer: a subject that consumer read starts after its ack
// floor, and it is deleted once the new consumers exist.
func EnsureUnknownConsumers(ctx context.Context, js jetstream.JetStream, cfg StreamConfig, subjects []string) ([]jetstream.Consumer, error) {
	stream := cfg.Names.EventsStream()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	starts, legacy, err := legacyStarts(ctx, s, cfg.Names.LegacyUnknownConsumer())
	if err != nil {
		return nil, err
	}
	out := make([]jetstream.Consumer, 0, len(subjects))
	for _, subject := range subjects {
		cons, err := ensureUnknownConsumer(ctx, s, cfg.UnknownConsumerConfig(subject, starts[subject]))
		if err != nil {
			return nil, err
		}
		out = append(out, cons)
	}
	if legacy {
		if err := s.DeleteConsumer(ctx, cfg.Names.LegacyUnknownConsumer()); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("delete consumer %s on stream %s: %w", cfg.Names.LegacyUnknownConsumer(), stream, err)
		}
	}
	// Consumers of subjects the stream holds no message on any more.
	names := s.ConsumerNames(ctx)
	var stale []string
	for name := range names.Name() {
		if cfg.Names.IsUnknownConsumer(name) && !slices.ContainsFunc(subjects, func(subject string) bool {
			return cfg.Names.UnknownConsumer(subject) == name
		}) {
			stale = append(stale, name)
		}
	}
	if err := names.Err(); err != nil {
		return nil, fmt.Errorf("consumers of stream %s: %w", stream, err)
	}
	for _, name := range stale {
		if err := s.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("delete consumer %s on stream %s: %w", name, stream, err)
		}
	}
	return out, nil
}

// legacyStarts reads the single consumer of unknown subjects older
// versions made, when it is there: each of its subjects maps to the
// sequence after its ack floor.
func legacyStarts(ctx context.Context, s jetstream.Stream, name string) (map[string]uint64, bool, error) {
	cons, err := s.Consumer(ctx, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("look up consumer %s on stream %s: %w", name, s.CachedInfo().Config.Name, err)
	}
	info := cons.CachedInfo()
	filters := slices.Clone(info.Config.FilterSubjects)
	if info.Config.FilterSubject != "" {
		filters = append(filters, info.Config.FilterSubject)
	}
	starts := make(map[string]uint64, len(filters))
	if floor := info.AckFloor.Stream; floor > 0 {
		for _, f := range filters {
			starts[f] = floor + 1
		}
	}
	return starts, true, nil
}

// ensureUnknownConsumer returns the consumer cc describes, made when
// missing and otherwise used as it is.
func ensureUnknownConsumer(ctx context.Context, s jetstream.Stream, cc jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	stream := s.CachedInfo().Config.Name
	cons, err := s.Consumer(ctx, cc.Durable)
	if err == nil {
		return cons, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("look up consumer %s on stream %s: %w", cc.Durable, stream, err)
	}
	cons, err = s.CreateConsumer(ctx, cc)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		// Another replica made it first.
		cons, err = s.Consumer(ctx, cc.Durable)
	}
	if err != nil {
		return nil, fmt.Errorf("create consumer %s (subject %s) on stream %s: %w", cc.Durable, cc.FilterSubject, stream, err)
	}
	return cons, nil
}
