// Command consumer-pg-nats is a consumer on NATS with the PostgreSQL inbox
// and dead letters. It is built, not run, to measure what such a service
// links (see ../README.md).
package main

import (
	"context"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
)

func main() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		panic(err)
	}
	nc, err := nats.Connect(os.Getenv("NATS_URL"))
	if err != nil {
		panic(err)
	}
	broker, _ := nats.New(nc)
	in, _ := inbox.New(postgres.PgxInboxStore(pool), "shipping")
	dead, _ := dlq.New(postgres.DLQStore(pool))
	h := in.Handler(func(ctx context.Context, tx pgx.Tx, m *handoff.Message) error {
		_, err := tx.Exec(ctx, `INSERT INTO shipments (order_id) VALUES ($1)`, m.Subject)
		return err
	})
	c, _ := consumer.New(broker, "orders", "shipping", h, dead, consumer.WithBatchSize(16))
	_ = c.Run(ctx)
}
