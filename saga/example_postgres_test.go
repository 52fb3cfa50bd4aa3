package saga_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/saga"
)

// The package's call sequence on PostgreSQL, with a command step, an HTTP
// step and a local one (it needs the database, so it is not run here;
// Example runs a whole saga on SQLite).
func ExampleDefine() {
	ctx := context.Background()
	db, err := postgres.Open(ctx, "postgres://app@db/app")
	if err != nil {
		panic(err)
	}
	w, _ := outbox.New(postgres.OutboxStore(db))
	in, _ := inbox.New(postgres.InboxStore(db), "saga-replies")
	client := http.DefaultClient // a resiliencehttp transport's client, in production
	pager := saga.AlerterFunc(func(ctx context.Context, a saga.Alert) error { return nil })
	command := func(typ string) func(r *saga.Run[Order]) (*handoff.Message, error) {
		return func(r *saga.Run[Order]) (*handoff.Message, error) {
			data, err := json.Marshal(r.Data)
			return handoff.NewMessage("/orders", typ, data), err
		}
	}
	chargeCmd, refundCmd := command("payment.charge"), command("payment.refund")
	request := func(method string) func(ctx context.Context, r *saga.Run[Order]) (*http.Request, error) {
		return func(ctx context.Context, r *saga.Run[Order]) (*http.Request, error) {
			return http.NewRequestWithContext(ctx, method, "http://inventory/reservations/"+r.Data.ID, nil)
		}
	}
	reserveReq, releaseReq := request(http.MethodPut), request(http.MethodDelete)
	confirm := func(ctx context.Context, tx *sql.Tx, r *saga.Run[Order]) error {
		_, err := tx.ExecContext(ctx, `UPDATE orders SET status = 'confirmed' WHERE id = $1`, r.Data.ID)
		return err
	}

	def, err := saga.Define("order", []saga.Step[Order]{
		{Name: "charge", Action: saga.Command("payments", chargeCmd, nil), Compensate: saga.Command("payments", refundCmd, nil)},
		{Name: "reserve", Action: saga.HTTP(client, reserveReq, nil), Compensate: saga.HTTP(client, releaseReq, nil)},
		{Name: "confirm", Action: saga.Local(confirm)},
	})
	if err != nil {
		panic(err)
	}
	c, err := saga.New(postgres.SagaStore(db), saga.WithOutbox(w), saga.WithAlerter(pager))
	if err != nil {
		panic(err)
	}
	orders, err := saga.Register(c, def)
	if err != nil {
		panic(err)
	}
	tx, _ := db.BeginTx(ctx, nil)
	id, err := orders.Start(ctx, tx, Order{ID: "o-1", SKU: "book", Amount: 30}) // in the caller's transaction
	if err != nil {
		panic(err)
	}
	_ = tx.Commit()
	go c.Run(ctx) // timers, leases, the rest of the steps
	// replies to commands: an inbox handler on the reply topic
	h := in.Handler(c.HandleReply)
	_, _ = id, h
}
