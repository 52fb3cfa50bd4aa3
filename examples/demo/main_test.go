package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/examples/demo/orders"
)

// The demo runs on its own, stops by itself after its orders, and leaves
// one shipment per order (the inbox) and its three dead letters; run again
// on the same data, it ships the new orders and sends no new failures.
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
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(letters) != 3 {
			t.Fatalf("round %d: %d dead letters, want the demo's 3", round, len(letters))
		}
	}
}
