package outbox_test

import (
	"context"
	"fmt"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/outbox"
)

// An order row and its event commit in one transaction (on PostgreSQL, so
// it is not run here; package relay's example runs the same on SQLite).
func ExampleWriter_Add() {
	ctx := context.Background()
	db, err := postgres.Open(ctx, "postgres://app@db/app")
	if err != nil {
		panic(err)
	}
	w, err := outbox.New(postgres.OutboxStore(db))
	if err != nil {
		panic(err)
	}
	placeOrder := func(id string, total int) error {
		data := fmt.Appendf(nil, `{"id":%q,"total":%d}`, id, total)
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		_, err = tx.ExecContext(ctx, `INSERT INTO orders (id, total) VALUES ($1, $2)`, id, total)
		if err != nil {
			return err
		}
		err = w.Add(ctx, tx, "orders", handoff.NewMessage("/orders", "order.placed", data))
		if err != nil {
			return err
		}
		err = tx.Commit()
		return err
	}
	_ = placeOrder("o-1", 30)
}
