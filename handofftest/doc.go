// Package handofftest holds the conformance suites every adapter runs: one for
// transports (a [handoff.Publisher] with its [handoff.Subscriber]) and one for
// each store. An adapter's test calls the suite with a constructor for a
// fresh, isolated instance and the [Features] its broker has; the suite skips
// what the features rule out and asserts the rest.
//
//	func TestConformance(t *testing.T) {
//		handofftest.RunTransport(t, func(t testing.TB) handofftest.Transport {
//			b := memory.NewBroker()
//			return handofftest.Transport{Publisher: b, Subscriber: b}
//		}, handofftest.Features{Ordered: true, Durable: true, Groups: true})
//	}
package handofftest
