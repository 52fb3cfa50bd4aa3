// Package handofftest holds the conformance suites every adapter runs: one for
// transports (a [handoff.Publisher] with its [handoff.Subscriber]) and one for
// each store. An adapter's test calls the suite with a constructor for a
// fresh, isolated instance and the [Features] its broker has; the suite skips
// what the features rule out and asserts the rest. A transport whose
// publisher is also a handoff.Redeliverer (every broker adapter's is) must
// send a dead letter's replay to the group that failed and to no other
// (ReplayReachesOnlyTheGroupThatFailed).
//
// ExampleRunTransport is an adapter's conformance test, compiled with the
// package: the memory broker's own test runs it.
package handofftest
