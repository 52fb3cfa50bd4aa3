package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/examples/demo/orders"
	"github.com/handoffhq/handoff/saga"
)

// The demo runs on its own, stops by itself after its orders, and leaves
// one shipment per order (the inbox), its three dead letters, an order
// saga started for each of the first orders of a run and the one saga
// of a customer on hold; run again on the same data, it ships the new
// orders and sends no new failures and no second saga on hold.
func TestDemo_RunsOnItsOwnAndStops(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for round, want := range []int{5, 8} {
		var log bytes.Buffer
		n := []string{"5", "3"}[round]
		if err := run(ctx, []string{"-data-dir", dir, "-orders", n, "-interval", "20ms"}, &log); err != nil {
			t.Fatalf("round %d: %v\n%s", round, err, log.String())
		}
		db, err := sqlite.Open(ctx, filepath.Join(dir, "handoff.db"))
		if err != nil {
			t.Fatal(err)
		}
		var placed, shipped int
		db.QueryRow(`SELECT count(*) FROM demo_orders`).Scan(&placed)
		db.QueryRow(`SELECT count(*) FROM demo_shipments`).Scan(&shipped)
		if placed != want || shipped != want {
			t.Fatalf("round %d: %d orders placed, %d shipped, want %d each\n%s", round, placed, shipped, want, log.String())
		}
		q, _ := dlq.New(sqlite.DLQStore(db))
		letters, err := q.List(ctx, dlq.Filter{Consumer: orders.Group})
		if err != nil {
			t.Fatal(err)
		}
		// The first orders of each run have started their order saga in
		// the order's transaction (the coordinator finishes them, maybe
		// after the run stopped); the saga of the customer on hold was
		// started once, and has not ended (no one retried it).
		c, _ := saga.New(sqlite.SagaStore(db))
		counts, err := c.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hold, err := c.Get(ctx, orders.StuckSagaID)
		db.Close()
		if err != nil {
			t.Fatalf("round %d: the saga of the customer on hold: %v", round, err)
		}
		total := 0
		for _, n := range counts {
			total += n
		}
		if total != (round+1)*orders.SagaOrders+1 || counts[saga.Compensated]+counts[saga.Aborted] != 0 || hold.Status.Ended() {
			t.Fatalf("round %d: sagas by status %v, the one on hold %s; want %d order sagas, none compensated, and the one on hold not ended",
				round, counts, hold.Status, (round+1)*orders.SagaOrders)
		}
		if len(letters) != 3 {
			t.Fatalf("round %d: %d dead letters, want the demo's 3", round, len(letters))
		}
	}
}
