package handoff

import (
	"context"
	"errors"
	"time"
)

// Publisher sends messages to a topic. Publish returns nil only when the
// broker holds every message durably (acknowledged or confirmed). Adapters
// publish the messages of one call asynchronously and wait for all
// acknowledgements, so a call with many messages costs about one round trip.
// On error some messages may have been published: publishing is at least
// once, and consumers deduplicate by message id.
type Publisher interface {
	Publish(ctx context.Context, topic string, msgs ...*Message) error
}

// Redeliverer sends messages again to one consumer group of a topic, and to
// no other group of it: how a dead letter goes back to the consumer that gave
// up on it (dlq.Queue.Replay), without a second delivery to the groups that
// handled it (a group without an inbox would act twice). Each broker adapter
// uses its broker's own means: a per-group replay subject on JetStream, the
// group's own queue on RabbitMQ, the group's retry topic on Kafka.
//
// A message keeps its id, the key the inbox deduplicates by. Brokers that
// deduplicate publishes key them by [Message.DedupKey], which differs for a
// replay; a broker that answers that it held a redelivered message already
// fails the call with an error matching [ErrDuplicate], since a new delivery
// was meant. Redeliver returns nil only when the broker holds every message
// durably for the group.
type Redeliverer interface {
	Redeliver(ctx context.Context, topic, group string, msgs ...*Message) error
}

// ErrDuplicate is matched by the error of a publish that was meant to be a
// new delivery (a replay) and that the broker took for a duplicate of a
// message it held already, storing nothing.
var ErrDuplicate = errors.New("handoff: the broker took the message for a duplicate and stored nothing")

// Subscription names what a [Subscriber] delivers and to whom.
type Subscription struct {
	Topic string // the topic published to
	Group string // durable consumer group: members share the messages, a restarted member resumes
	// MaxInFlight bounds deliveries handed out and not yet settled.
	// Adapters map it to the broker's own limit (JetStream MaxAckPending,
	// AMQP prefetch). Zero means the adapter's default.
	MaxInFlight int
}

// Subscriber is the consuming side of a broker adapter. The consumer runtime
// (package consumer) drives it; application code does not call it directly.
type Subscriber interface {
	// Subscribe delivers the subscription's messages to deliver until ctx is
	// done, then returns nil (or the error that stopped it). deliver is called
	// from one goroutine, in the broker's order; it may block to apply
	// backpressure. Every delivery must be settled once, with Ack or Retry,
	// before Subscribe returns; an unsettled delivery is redelivered later.
	Subscribe(ctx context.Context, sub Subscription, deliver func(*Delivery)) error
}

// Delivery is one delivery of a message by a [Subscriber].
type Delivery struct {
	// Message is the decoded message. When decoding failed, Err is set and
	// Message holds what could be read (at least the raw body in Data).
	Message *Message
	Err     error
	Topic   string
	// Attempt counts deliveries of this message to this group, from 1.
	Attempt int
	// Settler acknowledges or reschedules the delivery.
	Settler Settler
}

// Settler settles a [Delivery]. Exactly one of its methods is called, once.
type Settler interface {
	// Ack removes the message for this group for good.
	Ack(ctx context.Context) error
	// Retry has the broker deliver the message again, with Attempt one
	// higher, no sooner than delay from now, using the broker's own delay
	// mechanism (no in-process sleeping).
	Retry(ctx context.Context, delay time.Duration) error
}
