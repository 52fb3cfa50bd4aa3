// Package consumer is the runtime that runs a [handoff.Handler] on a
// subscription: N workers, one message of a partition key at a time and in
// order, different keys in parallel.
//
//	c, err := consumer.New(broker, "orders", "billing", handler, deadLetters)
//	...
//	err = c.Run(ctx) // until ctx is done; drains in-flight work
//
// A handler reports by returning: nil acks; handoff.Permanent(err) dead-letters
// at once; any other error is retried through the broker's own delay mechanism
// (JetStream nak-with-delay, RabbitMQ TTL and dead-letter exchange, Kafka
// retry topics) with exponential backoff and full jitter, and dead-lettered
// after the last attempt. A panic is recovered and dead-lettered with its
// stack; undecodable, invalid, oversize and unknown-type messages are
// dead-lettered without running the handler. The dead letter holds the full
// envelope, the error chain, the attempt count, the consumer name, and the
// first and last failure times.
//
// Order across retries: while a message waits for its redelivery, later
// messages of its key are held back (not handled) until it is redelivered and
// settled, or until one and a half times its delay plus a grace period passes (the redelivery may
// have gone to another member of the group). WithUnordered opts out.
//
// Exactly-once effects are not this package's job: wrap the handler with
// inbox.Handler so the (consumer, message id) mark commits in the handler's
// own transaction, before the ack.
//
// What it does not do: it does not reorder messages of a key that the broker
// delivered out of order, and it holds order per key within one process; for
// order across several processes of one group, the broker must route each
// key to one member (Kafka partitions, RabbitMQ single active consumer).
package consumer
