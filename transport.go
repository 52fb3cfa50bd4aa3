package handoff

import (
	"context"
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
