package relay_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/relay"
)

// The partition count is a property of the outbox: the first writer records
// it, a relay without WithPartitions follows it and publishes every row, and
// a relay configured with fewer partitions (which would never fetch some
// rows) refuses to run, naming both counts.
func TestPartitions_RelayFollowsTheOutboxOrRefuses(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		w, _ := outbox.New(d.out, outbox.WithPartitions(8))
		for i := range 40 {
			write(t, d, w, "orders", msg(fmt.Sprintf("k%d", i), i))
		}
		if n := stored(t, d); n != 8 {
			t.Fatalf("recorded partition count %d, want 8 (the first writer's)", n)
		}

		r, err := relay.New(d.relay(), newBroker(t), relay.WithPartitions(4))
		if err != nil {
			t.Fatal(err)
		}
		err = r.Run(context.Background())
		var pe *outbox.PartitionsError
		if !errors.As(err, &pe) || !errors.Is(err, outbox.ErrPartitions) || pe.Configured != 4 || pe.Stored != 8 ||
			!strings.Contains(err.Error(), "4 partitions") || !strings.Contains(err.Error(), "created with 8") {
			t.Fatalf("relay with 4 partitions on an outbox of 8: Run = %v, want a PartitionsError naming 4 and 8", err)
		}

		b := newBroker(t)
		rec := record(t, b, "orders")
		runRelay(t, d.relay(), b) // follows the outbox: 8
		rec.wait(t, 40)
	})
}

// A writer configured with another count than the outbox's fails before
// writing anything; one without WithPartitions follows the outbox.
func TestPartitions_WriterChecksAndFollows(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		ctx := context.Background()
		first, _ := outbox.New(d.out, outbox.WithPartitions(3))
		write(t, d, first, "orders", msg("a", 1))

		wrong, _ := outbox.New(d.out, outbox.WithPartitions(32))
		tx, err := d.db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		err = wrong.Add(ctx, tx, "orders", msg("b", 2))
		tx.Rollback()
		var pe *outbox.PartitionsError
		if !errors.As(err, &pe) || pe.Configured != 32 || pe.Stored != 3 || !strings.Contains(err.Error(), "outbox writer configured with 32") {
			t.Fatalf("writer with 32 partitions on an outbox of 3: Add = %v, want a PartitionsError naming 32 and 3", err)
		}

		follower, _ := outbox.New(d.out)
		for i := range 30 {
			write(t, d, follower, "orders", msg(fmt.Sprintf("k%d", i), i))
		}
		var max int
		if err := d.db.QueryRow("SELECT MAX(partition_no) FROM handoff_outbox").Scan(&max); err != nil || max > 2 {
			t.Fatalf("highest partition written %d (%v), want at most 2 with the outbox's 3", max, err)
		}
	})
}

// SQLite has one writer: the first writer records its count in its own
// transaction; rolled back, nothing is recorded, and the next one to start
// records its own. (PostgreSQL and MySQL record it at once, outside the
// caller's transaction: TestPartitions_FirstWriteDoesNotHoldOthers.)
func TestPartitions_SQLiteRecordsWithTheFirstCommit(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		if d.name != "sqlite" {
			t.Skip("recorded outside the caller's transaction")
		}
		ctx := context.Background()
		w, _ := outbox.New(d.out, outbox.WithPartitions(16))
		tx, err := d.db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Add(ctx, tx, "orders", msg("a", 1)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if n := stored(t, d); n != 0 {
			t.Fatalf("a rolled-back first write left partition count %d recorded", n)
		}
		n, inTx, err := outbox.CheckPartitions(ctx, d.relay(), nil, 0, "relay")
		if err != nil || n != outbox.DefaultPartitions || inTx {
			t.Fatalf("relay without a count on a fresh outbox = %d, %v, %v; want the default recorded", n, inTx, err)
		}
		tx, _ = d.db.Begin()
		err = w.Add(ctx, tx, "orders", msg("a", 1))
		tx.Rollback()
		if !errors.Is(err, outbox.ErrPartitions) {
			t.Fatalf("writer with 16 after the relay recorded %d: %v", outbox.DefaultPartitions, err)
		}
	})
}

// A first write whose transaction stays open does not make another writer's
// or a relay's first statement wait for it (the record is not held in it).
func TestPartitions_FirstWriteDoesNotHoldOthers(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		if d.name == "sqlite" {
			t.Skip("SQLite has one writer: transactions cannot overlap")
		}
		ctx := context.Background()
		w1, _ := outbox.New(d.out, outbox.WithPartitions(6))
		tx, err := d.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if err := w1.Add(ctx, tx, "orders", msg("a", 1)); err != nil {
			t.Fatal(err)
		}
		w2, _ := outbox.New(d.out)
		write(t, d, w2, "orders", msg("b", 1)) // would hang if the record waited for tx
		if n := stored(t, d); n != 6 {
			t.Fatalf("recorded %d, want 6 (the first writer's, recorded at once)", n)
		}
	})
}

// Two starters racing with different counts: one count is recorded, the
// other starter gets the error.
func TestPartitions_RacingStartersAgreeOnOne(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, n := range []int{5, 7} {
			wg.Go(func() {
				_, _, errs[i] = outbox.CheckPartitions(context.Background(), d.relay(), nil, n, "relay")
			})
		}
		wg.Wait()
		failed := 0
		for _, err := range errs {
			if errors.Is(err, outbox.ErrPartitions) {
				failed++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if n := stored(t, d); failed != 1 || (n != 5 && n != 7) {
			t.Fatalf("recorded %d with %d starters refused (%v), want one of 5 and 7 with the other refused", n, failed, errs)
		}
	})
}

// stored returns the recorded partition count, 0 when none.
func stored(t testing.TB, d db) int {
	t.Helper()
	var n int
	if err := d.db.QueryRow("SELECT COALESCE(MAX(partitions), 0) FROM handoff_outbox_config").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
