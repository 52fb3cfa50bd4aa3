package postgres_test

import (
	"context"
	"database/sql"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/outbox"
)

// The stores over database/sql (compiled, not run: it needs a database; the
// package's tests run the same calls against one).
func Example() {
	ctx := context.Background()
	db, err := postgres.Open(ctx, "postgres://app@db/app")
	if err != nil {
		panic(err)
	}
	if err := postgres.Migrate(ctx, db); err != nil { // idempotent; safe from several processes
		panic(err)
	}
	w, _ := outbox.New(postgres.OutboxStore(db))
	in, _ := inbox.New(postgres.InboxStore(db), "billing")
	q, _ := dlq.New(postgres.DLQStore(db))
	_ = in.Handler(func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
		_, err := tx.ExecContext(ctx, `UPDATE accounts SET ...`)
		return err
	})
	_, _ = w, q
}

// The same stores from a pgx pool, with no database/sql: the writer adds to
// a pgx transaction, and inbox handlers get one.
func Example_pgx() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://app@db/app")
	if err != nil {
		panic(err)
	}
	if err := postgres.Migrate(ctx, pool); err != nil {
		panic(err)
	}
	w, _ := outbox.New(postgres.OutboxStore(pool))
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO orders (id) VALUES ($1)`, "o-1"); err != nil {
			return err
		}
		return w.Add(ctx, postgres.Tx(tx), "orders", handoff.NewMessage("/orders", "order.placed", []byte(`{"id":"o-1"}`)))
	})
	in, _ := inbox.New(postgres.PgxInboxStore(pool), "billing")
	_ = in.Handler(func(ctx context.Context, tx pgx.Tx, m *handoff.Message) error {
		_, err := tx.Exec(ctx, `UPDATE accounts SET ...`)
		return err
	})
	_ = err
}
