// Package kafka is the handoff broker adapter for Apache Kafka, built on
// franz-go. A [Client] is both a handoff.Publisher and a handoff.Subscriber.
//
//	c, err := kafka.New([]string{"kafka-1:9092"})        // nothing connects yet
//	defer c.Close()
//	err = c.Publish(ctx, "orders", msg)                   // returns once acked by all in-sync replicas
//	err = c.Subscribe(ctx, handoff.Subscription{Topic: "orders", Group: "billing"}, deliver)
//
// Application code normally hands the client to the relay (publishing) and
// to the consumer runtime (subscribing) rather than calling it directly.
//
// # Publishing
//
// Each message becomes one record in CloudEvents binary mode
// (handoff.KafkaBinding: ce_ headers, content-type, value = data). The key is
// the message's PartitionKey, hashed with murmur2 exactly as the Java client
// does, so one key always lands on one partition whoever produced it. The
// producer is franz-go's idempotent producer with acks=all, so its internal
// retries neither duplicate nor reorder records. All records of a call are
// produced together and Publish returns when every one is acknowledged; a
// record the client or broker refuses (too large, say) fails with an error
// naming its message id. Kafka has no broker-side deduplication by message
// id: a relay re-publishing after a crash produces a duplicate, which the
// consumer's inbox absorbs.
//
// # Order
//
// Kafka orders records per partition only. Records of one key are delivered
// in order on their first delivery; records of different keys (or keys on
// different partitions) interleave.
//
// # Subscribing and committing
//
// Each Subscribe is one member of the Kafka consumer group Subscription.Group.
// A new group starts from the earliest retained record. Offsets are committed
// manually, per partition, and never past a record that is not yet settled:
// the committed offset is that of the first unsettled record. Records settled
// after an unsettled one are listed in the commit's metadata, so the next
// owner of the partition skips them instead of handling them again. Ack
// returns once its commit is done.
//
// Delivery continues past unsettled records, up to Subscription.MaxInFlight
// (DefaultMaxInFlight when zero); fetching pauses for partitions whose local
// buffer is full. When a rebalance takes partitions away, delivery from them
// stops, deliveries in flight get up to the drain timeout (WithDrainTimeout)
// to settle, and the contiguous offsets are committed before the partitions
// move. Settling a delivery of a partition this member no longer owns
// returns ErrRevoked; the new owner delivers the record again.
//
// # Retries
//
// Kafka has no per-message delay, so Retry uses a retry topic per group,
// RetryTopic(topic, group) = "<topic>.<group>.retry": it produces a copy of
// the record there with the headers handoff_attempt (the next attempt) and
// handoff_not_before (the due time, unix milliseconds), waits for the
// acknowledgement, and only then settles the original. Every member of the
// group consumes the retry topic too and holds each retry record until it is
// due, with a timer; a due record is delivered even when an earlier record of
// the same retry partition, with a longer delay, still waits. Retry records
// have an in-flight allowance of their own, so a window full of records the
// consumer runtime holds back (behind a retry of their key) never blocks the
// retry that releases them. On the member that made it, a retry copy is not
// delivered before the Retry call has returned and the delay has passed
// since, so the caller always knows it waits for the redelivery first.
//
// A dead letter's replay ([Client.Redeliver]) goes through the same retry
// topic: only its group consumes it, so no other group of the topic sees
// the replay. Kafka does not deduplicate across producer sessions; the
// message id stays, for the group's inbox. [Client.CheckSize] (for
// outbox.WithBrokerLimit) checks a message's record batch against the
// producer's ProducerBatchMaxBytes and the topic's max.message.bytes.
//
// # Traps and limits
//
//   - Topics: in production create the topic and its retry topic with your
//     usual tooling (Provision checks they exist); WithCreateTopics creates
//     them for development and tests.
//   - Per-key order across a crash: if a member stops while a record waits in
//     the retry topic, the next owner may handle later records of that key
//     (still on the main topic) before the retry falls due. Within a running
//     member the consumer runtime keeps the order.
//   - Records settled after an unsettled one are delivered again if they do
//     not fit in the commit metadata (about 3,000 bytes of offsets).
//   - Broker outages: franz-go reconnects by itself; Subscribe keeps its
//     group membership going and does not return until ctx is done or the
//     client is closed.
//   - Undecodable records (bad or missing CloudEvents headers, bad retry
//     headers) are delivered with Delivery.Err set and the value in
//     Message.Data, so the runtime can dead-letter them.
//
// The package is tested against kfake, franz-go's in-process Kafka, and
// against a real cluster when HANDOFF_TEST_KAFKA names its brokers.
package kafka
