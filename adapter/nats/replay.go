package nats

import (
	"context"
	"errors"
	"fmt"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/handoffhq/handoff"
)

// Replays to one group go through a stream of their own, never through the
// topic's stream, whose every consumer would get them:
//
//   - the stream ReplayStream holds the subjects "_handoff.replay.>", one
//     per topic and group (ReplaySubject), with work-queue retention, so a
//     replay is removed once its group acknowledged it;
//   - each group's Subscribe also consumes a durable consumer of that
//     stream filtering the group's replay subject, and of no other.
//
// An operator's streams are never touched, and a group's replay consumer
// exists from its first Subscribe on; a replay sent before that waits in the
// stream for it.
const (
	// ReplayStream is the stream holding replays to one group.
	ReplayStream = "handoff_replay"
	replayPrefix = "_handoff.replay."
)

// ReplaySubject returns the subject a replay to group of topic is published
// to, in ReplayStream.
func ReplaySubject(topic, group string) string {
	return replayPrefix + safeName(topic) + "." + safeName(group)
}

// replayConsumerName is the durable name of group's replay consumer of topic.
func replayConsumerName(topic, group string) string {
	return safeName("replay " + topic + " " + group)
}

// ensureReplayStream creates ReplayStream when it is missing.
func (c *Client) ensureReplayStream(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	ready := c.replayReady
	c.mu.Unlock()
	if ready {
		return nil
	}
	for try := 0; ; try++ {
		_, err := c.js.Stream(ctx, ReplayStream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = c.js.CreateStream(ctx, jetstream.StreamConfig{
				Name:        ReplayStream,
				Description: "handoff: dead letters replayed to one consumer group",
				Subjects:    []string{replayPrefix + ">"},
				Storage:     jetstream.FileStorage,
				Retention:   jetstream.WorkQueuePolicy,
				Discard:     jetstream.DiscardOld,
				Duplicates:  c.cfg.duplicates,
				Replicas:    c.cfg.replicas,
				MaxAge:      c.cfg.maxAge,
			})
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && try == 0 {
				continue // created concurrently: look again
			}
		}
		if err != nil {
			return fmt.Errorf("nats: replay stream %s: %w", ReplayStream, err)
		}
		break
	}
	c.mu.Lock()
	c.replayReady = true
	c.mu.Unlock()
	return nil
}

// ensureReplayConsumer creates or checks the group's replay consumer.
func (c *Client) ensureReplayConsumer(ctx context.Context, sub handoff.Subscription) (jetstream.Consumer, error) {
	name := replayConsumerName(sub.Topic, sub.Group)
	for try := 0; ; try++ {
		if err := c.ensureReplayStream(ctx); err != nil {
			return nil, err
		}
		cfg := jetstream.ConsumerConfig{
			Durable:       name,
			Description:   "handoff replays to group " + sub.Group + " of " + sub.Topic,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       c.cfg.ackWait,
			MaxDeliver:    -1,
			MaxAckPending: c.maxInFlight(sub),
			FilterSubject: ReplaySubject(sub.Topic, sub.Group),
		}
		cons, err := c.js.Consumer(ctx, ReplayStream, name)
		if err == nil {
			have := cons.CachedInfo().Config
			if have.MaxAckPending == cfg.MaxAckPending && have.AckWait == cfg.AckWait && have.FilterSubject == cfg.FilterSubject {
				c.trackReplay(name)
				return cons, nil
			}
		}
		cons, err = c.js.CreateOrUpdateConsumer(ctx, ReplayStream, cfg)
		if errors.Is(err, jetstream.ErrStreamNotFound) && try == 0 {
			c.mu.Lock()
			c.replayReady = false // deleted behind our back: create it again
			c.mu.Unlock()
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("nats: replay consumer %s on stream %s: %w", name, ReplayStream, err)
		}
		c.trackReplay(name)
		return cons, nil
	}
}

func (c *Client) trackReplay(name string) {
	c.mu.Lock()
	c.replayCons[name] = true
	c.mu.Unlock()
}

// Redeliver sends msgs to group of topic, and to no other group: it
// publishes them to the group's replay subject (ReplaySubject) in
// ReplayStream, which only that group's Subscribe consumes, each with its
// handoff.Message.DedupKey as Nats-Msg-Id. It returns once the server
// stored every one; a duplicate answer (the same key within the replay
// stream's duplicate window) fails the call with handoff.ErrDuplicate, since
// a new delivery was meant. Messages are checked first, as by Publish.
func (c *Client) Redeliver(ctx context.Context, topic, group string, msgs ...*handoff.Message) error {
	where := "group " + group + " of " + topic
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nats: redeliver to %s: %w", where, err)
	}
	if err := validTopic(topic); err != nil {
		return fmt.Errorf("nats: redeliver: %w", err)
	}
	if group == "" {
		return errors.New("nats: redeliver: group is required")
	}
	if len(msgs) == 0 {
		return nil
	}
	subject := ReplaySubject(topic, group)
	limit := c.maxPayload()
	out := make([]*natsgo.Msg, len(msgs))
	for i, m := range msgs {
		nm, err := encode(subject, m, limit)
		if err != nil {
			return fmt.Errorf("nats: redeliver to %s: %w", where, err)
		}
		out[i] = nm
	}
	if err := c.connected(); err != nil {
		return fmt.Errorf("nats: redeliver to %s: %w", where, err)
	}
	if err := c.ensureReplayStream(ctx); err != nil {
		return err
	}
	return c.publishAll(ctx, out, msgs, where, true, func() {
		c.mu.Lock()
		c.replayReady = false
		c.mu.Unlock()
	})
}
