// Command outbox-pg-nats is the smallest outbox service on PostgreSQL and
// NATS: a writer and a relay. It is built, not run, to measure what such a
// service links (see ../README.md).
package main

import (
	"context"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/relay"
)

func main() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		panic(err)
	}
	if err := postgres.Migrate(ctx, pool); err != nil {
		panic(err)
	}
	nc, err := nats.Connect(os.Getenv("NATS_URL"))
	if err != nil {
		panic(err)
	}
	broker, err := nats.New(nc)
	if err != nil {
		panic(err)
	}
	w, _ := outbox.New(postgres.OutboxStore(pool))
	tx, err := pool.Begin(ctx)
	if err != nil {
		panic(err)
	}
	if err := w.Add(ctx, postgres.Tx(tx), "orders", handoff.NewMessage("/orders", "order.placed", []byte(`{}`))); err != nil {
		panic(err)
	}
	if err := tx.Commit(ctx); err != nil {
		panic(err)
	}
	r, _ := relay.New(postgres.RelayStore(pool), broker, relay.WithWakeups(w.Wakeups()))
	_ = r.Run(ctx)
}
