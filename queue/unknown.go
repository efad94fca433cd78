package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// The consumers of unknown subjects (README, "Dead letters"): a durable
// consumer per subject of the events stream that is no kind's, filtered to
// exactly that subject, for up to StreamConfig.UnknownConsumers subjects;
// the subjects beyond share one consumer.
//
// A consumer of its own is never made again while the stream holds a
// message on its subject, so an event it has settled is never read again:
// its letter, purged or replayed since, does not come back. (One consumer
// of every unknown subject had to be made again from the stream's first
// message whenever a subject appeared, since a widened filter does not go
// back, and brought back every purged letter.) Such a consumer is deleted
// once the stream holds no message on its subject; made again for a later
// message, it reads from the start, where nothing it read before is left.
//
// The cap keeps a producer that puts an id in the subject
// (cg.events.ticket.<id>) from making a consumer per event, each a Raft
// group on a replicated stream and a slot of the stream's consumer limit.
// The shared consumer behaves as the single consumer once did: made again,
// from the first message, whenever its subjects change.

// DefaultUnknownConsumers is StreamConfig.UnknownConsumers' default.
const DefaultUnknownConsumers = 16

func (c StreamConfig) unknownConsumers() int {
	if c.UnknownConsumers <= 0 {
		return DefaultUnknownConsumers
	}
	return c.UnknownConsumers
}

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

// EnsureUnknownConsumers returns the consumers that read subjects, the
// unknown subjects the events stream holds messages on (sorted): one of
// its own for each subject that has one, or gets one within the cap, and
// the shared consumer of the others, if any. A missing consumer of its own
// is made, an existing one used as it is. It deletes the consumers of
// unknown subjects the stream no longer holds a message on, and the single
// consumer of older versions (LegacyUnknownConsumer). A subject that the
// shared or the legacy consumer read before gets its own consumer from
// after that consumer's ack floor. A consumer that cannot be made is
// reported, joined with the others' errors, and the rest are returned;
// the shared and the legacy consumers are then left as they are, since a
// subject whose consumer failed is still theirs. s is the events stream.
func EnsureUnknownConsumers(ctx context.Context, s jetstream.Stream, cfg StreamConfig, subjects []string) ([]jetstream.Consumer, error) {
	names := cfg.Names
	stream := s.CachedInfo().Config.Name
	own := map[string]bool{} // subjects with a consumer of their own
	var legacy, sharedBefore *jetstream.ConsumerInfo
	lister := s.ListConsumers(ctx)
	for info := range lister.Info() {
		switch {
		case names.IsUnknownConsumer(info.Name):
			own[info.Config.FilterSubject] = true
		case info.Name == names.LegacyUnknownConsumer():
			legacy = info
		case info.Name == names.SharedUnknownConsumer():
			sharedBefore = info
		}
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("consumers of stream %s: %w", stream, err)
	}
	if len(subjects) == 0 && len(own) == 0 && legacy == nil && sharedBefore == nil {
		return nil, nil // nothing to read and nothing of ours to tidy
	}
	starts := map[string]uint64{}
	handOver(legacy, starts)
	handOver(sharedBefore, starts)

	var out []jetstream.Consumer
	var errs []error
	mine, shared := partitionUnknown(subjects, own, cfg.unknownConsumers())
	for _, subject := range mine {
		cons, err := ensureUnknownConsumer(ctx, s, cfg.UnknownConsumerConfig(subject, starts[subject]))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, cons)
	}
	if len(errs) > 0 {
		shared = nil
		if sharedBefore != nil {
			shared = filtersOf(sharedBefore.Config) // kept as it is
		}
	}
	cons, err := ensureSharedUnknownConsumer(ctx, s, cfg, sharedBefore, shared)
	switch {
	case err != nil:
		errs = append(errs, err)
	case cons != nil:
		out = append(out, cons)
	}
	if legacy != nil && len(errs) == 0 {
		if err := deleteConsumer(ctx, s, names.LegacyUnknownConsumer()); err != nil {
			errs = append(errs, err)
		}
	}
	// Consumers of subjects gone from the stream. The list of subjects was
	// taken before: a subject may have had a message since (another
	// replica then made its consumer), so each is looked at again.
	for subject := range own {
		if slices.Contains(subjects, subject) {
			continue
		}
		n, err := SubjectCount(ctx, s, subject)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n > 0 {
			continue
		}
		if err := deleteConsumer(ctx, s, names.UnknownConsumer(subject)); err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// partitionUnknown splits subjects (sorted) into those read by a consumer
// of their own and those the shared consumer reads: a subject that has one
// keeps it, and the others get one, in order, while fewer than most
// subjects have one.
func partitionUnknown(subjects []string, own map[string]bool, most int) (mine, shared []string) {
	kept := 0
	for _, subject := range subjects {
		if own[subject] {
			kept++
		}
	}
	for _, subject := range subjects {
		if !own[subject] {
			if kept >= most {
				shared = append(shared, subject)
				continue
			}
			kept++
		}
		mine = append(mine, subject)
	}
	return mine, shared
}

// handOver gives each subject of info, a shared consumer's (nil: none),
// the sequence after its ack floor in starts, unless it has one already.
func handOver(info *jetstream.ConsumerInfo, starts map[string]uint64) {
	if info == nil || info.AckFloor.Stream == 0 {
		return
	}
	for _, f := range filtersOf(info.Config) {
		if _, ok := starts[f]; !ok {
			starts[f] = info.AckFloor.Stream + 1
		}
	}
}

// filtersOf are the subjects a consumer reads, sorted.
func filtersOf(cc jetstream.ConsumerConfig) []string {
	filters := slices.Clone(cc.FilterSubjects)
	if cc.FilterSubject != "" {
		filters = append(filters, cc.FilterSubject)
	}
	slices.Sort(filters)
	return filters
}

// ensureUnknownConsumer returns the consumer cc describes on s, made when
// missing and otherwise used as it is.
func ensureUnknownConsumer(ctx context.Context, s jetstream.Stream, cc jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	return ensureConsumer(ctx, s.CachedInfo().Config.Name, cc, s.Consumer, s.CreateConsumer)
}

// ensureSharedUnknownConsumer returns the shared consumer of subjects
// (sorted), made again when its subjects change, from the first message:
// a widened filter does not go back. before is the consumer as listed (nil:
// none). With no subjects it is deleted and nil is returned.
func ensureSharedUnknownConsumer(ctx context.Context, s jetstream.Stream, cfg StreamConfig, before *jetstream.ConsumerInfo, subjects []string) (jetstream.Consumer, error) {
	name := cfg.Names.SharedUnknownConsumer()
	if before != nil {
		if len(subjects) > 0 && slices.Equal(filtersOf(before.Config), subjects) {
			return ensureUnknownConsumer(ctx, s, before.Config)
		}
		if err := deleteConsumer(ctx, s, name); err != nil {
			return nil, err
		}
	}
	if len(subjects) == 0 {
		return nil, nil
	}
	cc := cfg.durable(name)
	cc.FilterSubjects = subjects
	return ensureUnknownConsumer(ctx, s, cc)
}

func deleteConsumer(ctx context.Context, s jetstream.Stream, name string) error {
	if err := s.DeleteConsumer(ctx, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("delete consumer %s on stream %s: %w", name, s.CachedInfo().Config.Name, err)
	}
	return nil
}
