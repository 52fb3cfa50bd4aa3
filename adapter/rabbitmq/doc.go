// Package rabbitmq is handoff's RabbitMQ transport (AMQP 0-9-1, amqp091-go,
// RabbitMQ 3.10 or later): a [Broker] that is a handoff.Publisher and
// handoff.Subscriber, with quorum queues, publisher confirms and delayed
// retries through TTL and dead-lettering.
//
// Minimal use:
//
//	b, _ := rabbitmq.New("amqp://guest:guest@127.0.0.1:5672/")
//	defer b.Close()
//	sub := handoff.Subscription{Topic: "orders", Group: "billing"}
//	_ = b.Provision(ctx, sub)          // before the first publish: see below
//	_ = b.Publish(ctx, "orders", msg)
//	_ = b.Subscribe(ctx, sub, deliver) // usually via the consumer runtime
//
// New does not connect. Publish uses one connection of its own with a pool
// of confirm-mode channels ([WithPublishChannels], default 4: that many
// calls run at once, each on its own channel, since a channel is not safe
// for concurrent use); each Subscribe call has a connection of its own.
//
// # Topology
//
// With the default prefix "handoff." ([WithPrefix]), for topic T and group G:
//
//	handoff.T              durable topic exchange, one per topic
//	handoff.T/G            quorum queue, x-single-active-consumer, bound with "#"
//	handoff.T/G/retry      quorum queue the group's redeliveries arrive in
//	handoff.T/G/lock       classic queue, never holds messages: the group's lease
//	handoff./delay         headers exchange for delayed copies, shared by all groups
//	handoff./delay/<ms>    quorum queues, x-message-ttl=<ms>, bound by header
//	                       handoff-delay=<ms>, dead-lettering (at-least-once) to
//	                       the default exchange; made on first use
//
// An exchange per topic (rather than one exchange with the topic as routing
// key) keeps topics apart in permissions, policies and the management UI,
// and leaves the routing key free: it is the message's CloudEvents type, so
// other consumers can bind their own queues by type pattern
// ("com.example.order.*"). Topic and group names must not contain "/".
// Everything is declared idempotently by Provision and Subscribe; declaring
// an existing queue with other arguments fails (PRECONDITION_FAILED) and
// Subscribe returns that error instead of reconnecting forever.
//
// # Guarantees
//
// Publish validates every message first (Validate, [WithMaxMessageSize]
// which defaults to RabbitMQ's own max_message_size of 128 MiB, a type of at
// most 255 bytes) and sends nothing when one fails. It then publishes all
// messages asynchronously (persistent, mandatory, message_id = message id,
// CloudEvents binary mode with the "cloudEvents:" header prefix and the
// content-type property) and returns once RabbitMQ confirmed each one. A
// negative confirm fails the call with [ErrNacked] naming the message.
//
// A message that no queue is bound for is dropped by RabbitMQ. The adapter
// publishes with the mandatory flag and fails the call with [ErrUnroutable]
// when RabbitMQ returns a message: publishing to a topic no group has been
// provisioned for is an error, so the caller (the relay) keeps the events
// in its outbox until a consumer group exists, rather than losing them.
// Provision a subscription (a deploy step, or the consumer's start) before
// producers publish to it.
//
// Subscribe sets basic.qos prefetch = Subscription.MaxInFlight (default
// 256) and acks manually. Deliveries reach deliver from one goroutine in
// queue order; other messages keep coming while some are unsettled, up to
// the prefetch. Attempt is the handoff-attempt header of a retried copy (1
// for an original) plus the quorum queue's x-delivery-count (deliveries
// returned because a consumer stopped or died). Messages that are not valid
// CloudEvents are delivered with Delivery.Err and their body, never dropped.
// Ack is basic.ack, which RabbitMQ does not confirm.
//
// A dead letter's replay ([Broker.Redeliver]) is published through the
// default exchange straight into the group's own queue, with publisher
// confirms: no other group of the topic sees it. RabbitMQ does not
// deduplicate, so a replay always arrives; the message id stays, for the
// group's inbox. RabbitMQ does not announce its max_message_size:
// [Broker.CheckSize] (for outbox.WithBrokerLimit) checks WithMaxMessageSize.
//
// # Traps, and what the adapter does about them
//
//   - Several consumers on one queue break per-key order. The group queue
//     has single active consumer, and a member consumes only while it holds
//     the group's lease (an exclusive consumer on the lock queue; quorum
//     queues ignore the exclusive flag, classic ones enforce it), so the
//     same member consumes both the group and its retry queue. Other members
//     are warm standbys that poll for the lease (every second at most) and
//     take over when the holder stops or its connection dies. Parallelism
//     comes from the consumer runtime's per-key workers, not from members.
//   - Message TTL only expires at the head of a queue, so one delay queue
//     with per-message TTLs would hold a short delay behind a long one.
//     Each delay queue has one queue-wide TTL instead; Retry rounds the
//     delay up to a bucket (every value up to 8ms, then m·2^e ms with m in
//     4..7: less than 25% more), publishes a copy with the next attempt to
//     that bucket's queue, waits for its confirm, then acks the original.
//     The copy's routing key is the group's retry queue, which dead-lettering
//     keeps: an expired copy goes through the default exchange straight to
//     the retry queue. Delay queues are shared by all groups, so a jittered
//     backoff costs a few dozen queues in all, not per group (a copy whose
//     retry queue is gone does not hold up the others). Delete a group's
//     queues only once no copy for it waits in a delay queue.
//   - The runtime holds later messages of a key back while an earlier one
//     waits for its retry. Had redeliveries come back through the group
//     queue, they would wait behind a prefetch window full of those held
//     messages: a deadlock. The retry queue is consumed on a channel of its
//     own with its own prefetch (also MaxInFlight), so a redelivery is never
//     stuck behind held first deliveries. At most 2×MaxInFlight deliveries
//     are thus unsettled at once.
//   - amqp091-go does not reconnect by default. Subscribe reconnects with
//     backoff ([WithReconnectMaxDelay], logs bounded to the first failure
//     and every tenth), declares again and takes the lease again; Publish
//     reconnects on its next call (waiting with backoff until its ctx is
//     done). Deliveries unsettled when a channel dies are redelivered by
//     RabbitMQ (with Attempt one higher); settling them afterwards returns
//     [ErrStale]. When Subscribe returns it cancels its consumers, waits for
//     settle calls in progress and closes its channels, which requeues
//     what is left unsettled at once, in queue order.
//
// # Not done here
//
// No partitioning of a group over several active members (a consistent-hash
// exchange would give that; the lease makes members standbys instead), no
// dead-lettering of poison messages (the consumer runtime decides; queues
// have no delivery limit), and no deletion of queues: remove a group with
// the management tools. A change of membership can reorder a key whose
// earlier message sits in a delay queue while the new member receives a
// later one. Retry delays are capped at [MaxRetryDelay].
package rabbitmq
