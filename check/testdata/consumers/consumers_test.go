// Package consumers holds the sample system's duplicate-delivery tests:
// `go test -json` of this package is the evidence `handoff check` reads.
// CHECK_SAMPLE_BROKEN=ledger makes the ledger's handler apply a duplicate.
package consumers

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/handofftest"
)

// ledgerBook is a consumer's store: effects, and the ids it has seen
// (an inbox).
type ledgerBook struct {
	mu      sync.Mutex
	seen    map[string]bool
	entries int
}

func (b *ledgerBook) handler(dedup bool) handoff.Handler {
	return handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
		b.mu.Lock()
		defer b.mu.Unlock()
		if dedup && b.seen[m.ID] {
			return nil
		}
		b.seen[m.ID] = true
		b.entries++
		return nil
	})
}

func (b *ledgerBook) effects(context.Context) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.entries, nil
}

func TestShippingDuplicateDelivery(t *testing.T) {
	b := &ledgerBook{seen: map[string]bool{}}
	handofftest.DuplicateDelivery(t, "shipping", b.handler(true),
		handoff.NewMessage("/order", "order.placed", []byte(`{"id":"o-1","total":12.5}`)), b.effects)
}

func TestLedgerDuplicateDelivery(t *testing.T) {
	b := &ledgerBook{seen: map[string]bool{}}
	handofftest.DuplicateDelivery(t, "ledger", b.handler(os.Getenv("CHECK_SAMPLE_BROKEN") != "ledger"),
		handoff.NewMessage("/payment", "payment.settled", []byte(`{"payment_id":"p-1","amount":12.5}`)), b.effects)
}
