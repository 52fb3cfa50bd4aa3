// Package nats is handoff's NATS JetStream transport: a [Client] that is a
// handoff.Publisher and handoff.Subscriber on a connection you own. A NATS
// server inside the process (the default broker of handoff dev) is package
// adapter/natsserver, kept apart so that this package does not link it.
//
// Minimal use (the package example runs it on an embedded server):
//
//	nc, _ := nats.Connect("nats://127.0.0.1:4222") // reconnects forever
//	client, _ := nats.New(nc)
//	_ = client.Publish(ctx, "orders.placed", msg)
//	_ = client.Subscribe(ctx, handoff.Subscription{Topic: "orders.placed", Group: "billing"}, deliver)
//
// # Guarantees
//
// Publish validates every message first (handoff validation, header values
// without line breaks, the server's max_payload including headers) and
// sends nothing when one fails, with an error naming its id. It then
// publishes all of them asynchronously and returns once the server has
// acknowledged each (PubAck), so a call costs about one round trip. The
// message's handoff.Message.DedupKey travels as Nats-Msg-Id: a re-publish
// within the stream's duplicate window (2 minutes by default,
// [WithDuplicateWindow]) is stored once, which absorbs a relay that crashed
// between publishing and marking. A dead letter's replay has a key of its
// own (the id, the replay count and the letter), so the window lets it
// through; the server's duplicate answer to a replay is an error
// (handoff.ErrDuplicate), never a silent success. While the connection is
// down, Publish, Redeliver and Check fail at once with [ErrNotConnected],
// naming the server and why it cannot be reached. [Client.CheckSize] tells
// outbox.WithBrokerLimit what the server's max_payload allows.
//
// [Client.Redeliver] (a dead letter's replay) reaches one group only: it
// publishes to the group's replay subject in the stream [ReplayStream]
// (work-queue retention, created by the adapter; an operator's streams are
// left alone), which only that group's Subscribe consumes, through a
// durable consumer of its own next to the group's consumer of the topic.
// This works on NATS 2.9, which has no multi-subject filters.
//
// The topic is the subject. A topic goes to the stream of the first
// [WithStream] matching it; else to a stream that already captures its
// subject (one an operator made); else to a file-backed stream of its own,
// named from the topic (characters illegal in stream names become "_", plus
// a hash). An existing stream is only ever extended with missing subjects,
// never reconfigured, so settings an operator chose stay.
//
// Subscribe runs one durable pull consumer per topic and group (members of a
// group share it), plus the group's replay consumer, DeliverAll, explicit acks, MaxAckPending =
// Subscription.MaxInFlight (default 1000), consumed with Consume. Deliveries
// arrive in stream order from one goroutine; the adapter keeps delivering
// other messages while some are unsettled, up to MaxAckPending. Attempt is
// the server's delivery count. Ack is a double ack: it returns once the
// server confirmed it. Messages that are not valid CloudEvents are delivered
// with Delivery.Err and their body, never dropped.
//
// # Traps, and what the adapter does about them
//
//   - A plain Nak redelivers at once. Retry uses NakWithDelay, so the
//     server holds the message for the delay and redelivers it with the
//     delivery count one higher; no goroutine sleeps. Redeliveries are not
//     starved by a full in-flight window: the server sends them ahead of
//     new messages and outside MaxAckPending.
//   - AckWait must cover the time a delivery stays unsettled. The runtime
//     may hold a message back behind an earlier one of its key; the adapter
//     sends InProgress for any delivery unsettled longer than half of
//     AckWait ([WithAckWait], default 30s), so held messages are not
//     redelivered behind the runtime's back.
//   - Deliveries left unsettled when Subscribe returns are nak'd (with a
//     1ms delay) so another member gets them promptly rather than after
//     AckWait; settling them afterwards returns [ErrSettled].
//   - Updating a consumer is not free: an existing consumer whose settings
//     already match is used as it is.
//   - JetStream 2.9 (Debian's 2.9.10) can duplicate or hold back
//     redeliveries that fall due while no pull request is waiting
//     (nats-io/nats.net.v1#812): a nak'd message may then come back with
//     delivery count 1 or only after AckWait. Inbox deduplication absorbs
//     the duplicate; prefer NATS 2.10 or later.
//
// Subscribe survives reconnects and server restarts (nats.go reconnects;
// Consume pulls again). It returns an error when the connection is closed
// for good or when the group's consumer was deleted (creating it again
// would replay the stream).
//
// # Not done here
//
// The adapter does not order work per key across concurrency or retries
// (the consumer runtime does), does not dead-letter (MaxDeliver is
// unlimited; the runtime decides), and does not manage stream retention
// beyond [WithMaxAge]. Close leaves the connection to its owner.
package nats
