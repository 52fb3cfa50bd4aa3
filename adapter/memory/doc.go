// Package memory holds correct in-process implementations of handoff's
// contracts: a [Broker] that is both a [handoff.Publisher] and a
// [handoff.Subscriber], and in-memory stores. They keep their guarantees
// (per-key order, durable groups within the process, delayed redelivery) and
// serve examples, docs and fast tests. Nothing survives the process.
package memory
