package handofftest_test

import (
	"testing"

	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/handofftest"
)

// An adapter's conformance test: a fresh broker per test, and the features
// it has. (An Example cannot be a test; this one is compiled, and
// adapter/memory runs the same call.)
func ExampleRunTransport() {
	testConformance := func(t *testing.T) {
		handofftest.RunTransport(t, func(t testing.TB) handofftest.Transport {
			b, err := memory.NewBroker()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return handofftest.Transport{Publisher: b, Subscriber: b}
		}, handofftest.Features{Ordered: true, Durable: true, Groups: true})
	}
	_ = testConformance
}
