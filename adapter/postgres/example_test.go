package postgres_test

import (
	"context"
	"database/sql"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
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
	err = postgres.Migrate(ctx, db) // idempotent; safe from several processes
	if err != nil {
		panic(err)
	}
	w, err := outbox.New(postgres.OutboxStore(db))
	if err != nil {
		panic(err)
	}
	in, err := inbox.New(postgres.InboxStore(db), "billing")
	if err != nil {
		panic(err)
	}
	q, err := dlq.New(postgres.DLQStore(db))
	if err != nil {
		panic(err)
	}
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

// The outbox relayed from PostgreSQL's write-ahead log instead of by
// polling (it needs a database with wal_level=logical and a broker, so it
// is not run here).
func ExampleNewWALRelay() {
	ctx := context.Background()
	dsn := "postgres://app@db/app" // a role allowed to replicate
	db, _ := postgres.Open(ctx, dsn)
	broker, _ := memory.NewBroker() // NATS, Kafka or RabbitMQ in production

	err := postgres.SetupWAL(ctx, db, "handoff_outbox") // once, before the first write
	if err != nil {
		panic(err)
	}
	w, err := outbox.New(postgres.OutboxStore(db, postgres.WithWAL(postgres.WALMessages)))
	if err != nil {
		panic(err)
	}
	r, err := postgres.NewWALRelay(dsn, broker)
	if err != nil {
		panic(err)
	}
	_ = w // the service's handlers add events with w, as with any outbox
	err = r.Run(ctx)
	if err != nil {
		panic(err)
	}
}
