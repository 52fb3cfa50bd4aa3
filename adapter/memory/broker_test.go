package memory_test

import (
	"testing"

	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/handofftest"
)

func TestBrokerConformance(t *testing.T) {
	handofftest.RunTransport(t, func(t testing.TB) handofftest.Transport {
		b, err := memory.NewBroker(memory.WithMaxMessageSize(64 << 10))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return handofftest.Transport{Publisher: b, Subscriber: b}
	}, handofftest.Features{Ordered: true, Durable: true, Groups: true, MaxMessageSize: 64 << 10})
}
