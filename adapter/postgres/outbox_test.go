package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/outbox"
)

// An outbox write in a transaction begun with pgx commits and rolls back
// with it.
func TestTx_OutboxInPgxTransaction(t *testing.T) {
	a := adapter(t)
	dsn := a.DSN(t)
	ctx := context.Background()
	sdb, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	if err := postgres.Migrate(ctx, sdb); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	w, err := outbox.New(postgres.OutboxStore(sdb))
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		var n int
		if err := sdb.QueryRow("SELECT COUNT(*) FROM handoff_outbox").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, commit := range []bool{false, true} {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Add(ctx, postgres.Tx(tx), "orders", handoff.NewMessage("/o", "order.placed", []byte(`{}`))); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("%d outbox rows after one rolled back and one committed pgx transaction, want 1", n)
	}
}

// Wakeups signals once after connecting, on a committed outbox write, and
// again after its connection was killed and it reconnected.
func TestWakeups_ConnectCommitAndReconnect(t *testing.T) {
	a := adapter(t)
	dsn := a.DSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sdb, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	if err := postgres.Migrate(ctx, sdb); err != nil {
		t.Fatal(err)
	}
	app := testenv.Unique("listener")
	wake := postgres.Wakeups(ctx, dsn+"&application_name="+app, nil)
	next := func(what string) {
		t.Helper()
		select {
		case _, ok := <-wake:
			if !ok {
				t.Fatalf("%s: wake-up channel closed", what)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no wake-up", what)
		}
	}
	next("after connecting")

	w, _ := outbox.New(postgres.OutboxStore(sdb))
	tx, err := sdb.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(ctx, tx, "orders", handoff.NewMessage("/o", "order.placed", []byte(`{}`))); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	next("after a committed write")

	// Kill the listener's connection: it must come back and signal again,
	// since notifications sent while it was down are lost.
	res, err := sdb.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query = 'LISTEN handoff_outbox' AND application_name = $1`, app)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatal("no listening connection found to kill")
	}
	next("after reconnecting")
	cancel()
	for range wake { // closed once ctx is done
	}
}
