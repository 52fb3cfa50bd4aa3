// Command dev-sqlite-embedded-nats is the embedded default (handoff dev's
// parts, without the registry): SQLite, an embedded NATS server, outbox,
// relay, consumer and inbox. It is built, not run, to measure what it links
// (see ../README.md).
package main

import (
	"context"
	"database/sql"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/natsserver"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/relay"
)

func main() {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, "data/handoff.db")
	if err != nil {
		panic(err)
	}
	_ = sqlite.Migrate(ctx, db)
	srv, err := natsserver.Start("data/nats")
	if err != nil {
		panic(err)
	}
	nc, _ := nats.Connect(srv.URL())
	broker, _ := nats.New(nc)
	w, _ := outbox.New(sqlite.OutboxStore(db))
	r, _ := relay.New(sqlite.RelayStore(db), broker, relay.WithWakeups(w.Wakeups()))
	in, _ := inbox.New(sqlite.InboxStore(db), "shipping")
	dead, _ := dlq.New(sqlite.DLQStore(db))
	var mux consumer.Mux
	mux.On("order.placed", in.Handler(func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error { return nil }))
	c, _ := consumer.New(broker, "orders", "shipping", &mux, dead)
	go r.Run(ctx)
	_ = c.Run(ctx)
}
