// Package handoff is the shared vocabulary of the handoff toolkit: the
// [Message] that travels between services (a CloudEvents 1.0 event with a
// partition key, W3C trace context, correlation and causation ids), the
// [Handler] that consumes it, and the [Publisher] and [Subscriber] contracts
// every broker adapter implements.
//
// The package has no I/O and depends only on the standard library and a UUID
// generator. The parts that move messages live in their own packages:
// consumer (the runtime that runs handlers), inbox (exactly-once effects),
// dlq (dead letters) and adapter/* (brokers and databases).
//
// Handlers report by returning: nil acknowledges the message, an error wrapped
// with [Permanent] sends it to the dead-letter store at once, and any other
// error is retried with backoff.
package handoff
