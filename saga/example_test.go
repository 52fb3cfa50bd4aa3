package saga_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/relay"
	"github.com/handoffhq/handoff/saga"
)

// Order is the order saga's data, stored as JSON with the saga.
type Order struct {
	ID     string `json:"id"`
	SKU    string `json:"sku"`
	Amount int    `json:"amount"`
	Charge string `json:"charge,omitempty"` // the payment service's charge id
}

// OrderSaga is the storefront checkout: the order is created, the payment
// charged, the stock reserved, the order confirmed; when the stock cannot
// be reserved, the payment is refunded and the order cancelled. Payment
// and stock are other services, reached by commands through the outbox;
// their replies come back through the consumer and an inbox.
func OrderSaga() (*saga.Definition[Order], error) {
	return orderSaga(func(q string) string { return q })
}

// orderSaga is OrderSaga with SQL placeholders rewritten by q.
func orderSaga(q func(string) string) (*saga.Definition[Order], error) {
	command := func(typ string) func(r *saga.Run[Order]) (*handoff.Message, error) {
		return func(r *saga.Run[Order]) (*handoff.Message, error) {
			data, err := json.Marshal(r.Data)
			return handoff.NewMessage("/orders", typ, data), err
		}
	}
	setStatus := func(status string) func(ctx context.Context, tx *sql.Tx, r *saga.Run[Order]) error {
		return func(ctx context.Context, tx *sql.Tx, r *saga.Run[Order]) error {
			_, err := tx.ExecContext(ctx, q(`UPDATE orders SET status = ? WHERE id = ?`), status, r.Data.ID)
			return err
		}
	}
	return saga.Define("order", []saga.Step[Order]{
		{Name: "create",
			Action: saga.Local(func(ctx context.Context, tx *sql.Tx, r *saga.Run[Order]) error {
				_, err := tx.ExecContext(ctx, q(`INSERT INTO orders (id, status) VALUES (?, 'pending')`), r.Data.ID)
				return err
			}),
			Compensate: saga.Local(setStatus("cancelled"))},
		{Name: "charge",
			Action: saga.Command("payments", command("payment.charge"),
				func(ctx context.Context, tx *sql.Tx, r *saga.Run[Order], reply *handoff.Message) error {
					return json.Unmarshal(reply.Data, &r.Data.Charge)
				}),
			Compensate: saga.Command("payments", command("payment.refund"), nil),
			Timeout:    10 * time.Second},
		{Name: "reserve",
			Action:  saga.Command("inventory", command("stock.reserve"), nil),
			Timeout: 10 * time.Second},
		{Name: "confirm", Action: saga.Local(setStatus("confirmed"))},
	})
}

// The order saga on SQLite with the whole path: commands go through the
// outbox and the relay to a broker, the services answer through their own
// outbox, and replies reach the coordinator through a consumer and an inbox.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, _ := os.MkdirTemp("", "saga-example")
	defer os.RemoveAll(dir)
	db, _ := sqlite.Open(ctx, filepath.Join(dir, "shop.db"))
	defer db.Close()
	if err := sqlite.Migrate(ctx, db); err != nil {
		panic(err)
	}
	db.Exec(`CREATE TABLE orders (id TEXT PRIMARY KEY, status TEXT NOT NULL)`)
	db.Exec(`CREATE TABLE payments (key TEXT PRIMARY KEY, order_id TEXT NOT NULL, amount INTEGER NOT NULL)`)

	broker, _ := memory.NewBroker()
	w, _ := outbox.New(sqlite.OutboxStore(db))
	r, _ := relay.New(sqlite.RelayStore(db), broker, relay.WithPollInterval(5*time.Millisecond, 50*time.Millisecond))
	go r.Run(ctx)
	dead, _ := dlq.New(memory.NewDLQStore())

	// The services: payments (charge, refund; deduplicated by the saga's
	// key) and inventory (out of stock for SKU "rare"). Each replies in the
	// transaction of its effect.
	serve := func(topic string, h inbox.TxHandler[*sql.Tx]) {
		in, _ := inbox.New(sqlite.InboxStore(db), topic)
		c, _ := consumer.New(broker, topic, topic, in.Handler(h), dead)
		go c.Run(ctx)
	}
	serve("payments", func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
		var o Order
		json.Unmarshal(m.Data, &o)
		amount := o.Amount
		if m.Type == "payment.refund" {
			amount = -amount
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO payments (key, order_id, amount) VALUES (?, ?, ?)
			ON CONFLICT (key) DO NOTHING`, saga.Key(m), o.ID, amount); err != nil {
			return err
		}
		return w.Add(ctx, tx, "saga-replies", saga.Reply(m, "/payments", m.Type+".done", []byte(`"ch-`+o.ID+`"`), nil))
	})
	serve("inventory", func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
		var o Order
		json.Unmarshal(m.Data, &o)
		var failure error
		if o.SKU == "rare" {
			failure = errors.New("out of stock")
		}
		return w.Add(ctx, tx, "saga-replies", saga.Reply(m, "/inventory", "stock.reserved", nil, failure))
	})

	// The coordinator, and its replies through an inbox.
	coord, _ := saga.New(sqlite.SagaStore(db), saga.WithOutbox(w), saga.WithPollInterval(20*time.Millisecond))
	def, _ := OrderSaga()
	orders, _ := saga.Register(coord, def)
	serve("saga-replies", coord.HandleReply)
	go coord.Run(ctx)

	for _, o := range []Order{{ID: "o-1", SKU: "book", Amount: 30}, {ID: "o-2", SKU: "rare", Amount: 99}} {
		tx, _ := db.BeginTx(ctx, nil)
		if _, err := orders.Start(ctx, tx, o, saga.WithID("order-"+o.ID)); err != nil {
			panic(err)
		}
		tx.Commit()
	}
	for _, id := range []string{"order-o-1", "order-o-2"} {
		in := waitEnded(ctx, coord, id)
		var status string
		var paid int
		db.QueryRow(`SELECT status FROM orders WHERE id = ?`, in.ID[len("order-"):]).Scan(&status)
		db.QueryRow(`SELECT COALESCE(SUM(amount), 0) FROM payments WHERE order_id = ?`, in.ID[len("order-"):]).Scan(&paid)
		fmt.Printf("%s: saga %s, order %s, paid %d\n", id, in.Status, status, paid)
	}
	// Output:
	// order-o-1: saga completed, order confirmed, paid 30
	// order-o-2: saga compensated, order cancelled, paid 0
}

func waitEnded(ctx context.Context, c *saga.Coordinator, id string) *saga.Instance {
	for {
		in, err := c.Get(ctx, id)
		if err == nil && in.Status.Ended() {
			return in
		}
		select {
		case <-ctx.Done():
			panic(ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
