package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/relay"
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

// A pgx pool user builds the outbox, relay, inbox and dead-letter stores
// from the pool, writes in a pgx transaction and handles in one: no
// database/sql on the way.
func TestPgx_OutboxRelayInboxFromAPool(t *testing.T) {
	p := pool(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := p.Exec(ctx, `CREATE TABLE orders (id TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exec(ctx, `CREATE TABLE shipments (order_id TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	broker, err := memory.NewBroker()
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	w, err := outbox.New(postgres.OutboxStore(p))
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := range n {
		err := pgx.BeginFunc(ctx, p, func(tx pgx.Tx) error {
			id := fmt.Sprintf("o-%d", i)
			if _, err := tx.Exec(ctx, `INSERT INTO orders (id) VALUES ($1)`, id); err != nil {
				return err
			}
			m := handoff.NewMessage("/orders", "order.placed", []byte(`"`+id+`"`))
			m.PartitionKey = id
			return w.Add(ctx, postgres.Tx(tx), "orders", m)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	letters, err := dlq.New(postgres.DLQStore(p))
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(postgres.RelayStore(p), broker, relay.WithWakeups(w.Wakeups()), relay.WithDeadLetters(letters))
	if err != nil {
		t.Fatal(err)
	}
	in, err := inbox.New(postgres.PgxInboxStore(p), "shipping")
	if err != nil {
		t.Fatal(err)
	}
	ship := in.Handler(func(ctx context.Context, tx pgx.Tx, m *handoff.Message) error {
		var id string
		if err := json.Unmarshal(m.Data, &id); err != nil {
			return handoff.Permanent(err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO shipments (order_id) VALUES ($1)`, id)
		return err
	})
	c, err := consumer.New(broker, "orders", "shipping", ship, letters, consumer.WithBatchSize(4))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- r.Run(ctx) }()
	go func() { done <- c.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	var shipped int
	for time.Now().Before(deadline) {
		if err := p.QueryRow(ctx, `SELECT COUNT(*) FROM shipments`).Scan(&shipped); err != nil {
			t.Fatal(err)
		}
		if shipped == n {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	cancel()
	for range 2 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if shipped != n {
		t.Fatalf("%d shipments, want %d", shipped, n)
	}
	var left int
	if err := p.QueryRow(context.Background(), `SELECT COUNT(*) FROM handoff_outbox`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d outbox rows left (%v), want 0: the relay deletes what it published", left, err)
	}
}
