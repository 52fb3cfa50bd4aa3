package relay_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	natsadapter "github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/relay"
)

// The whole path: an order row and its event commit in one transaction; the
// relay publishes the event; the shipping service's consumer handles it with
// the inbox, so its shipment row is written exactly once even when the event
// is delivered twice. (SQLite and the in-memory broker here; PostgreSQL and
// NATS, Kafka or RabbitMQ in production.)
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, _ := os.MkdirTemp("", "handoff-example")
	defer os.RemoveAll(dir)
	db, _ := sqlite.Open(ctx, filepath.Join(dir, "shop.db"))
	defer db.Close()
	sqlite.Migrate(ctx, db)
	db.Exec(`CREATE TABLE orders (id TEXT PRIMARY KEY)`)
	db.Exec(`CREATE TABLE shipments (order_id TEXT PRIMARY KEY)`)
	broker, _ := memory.NewBroker()

	// The order service: the row and the event commit together.
	w, _ := outbox.New(sqlite.OutboxStore(db))
	placeOrder := func(id string) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `INSERT INTO orders (id) VALUES (?)`, id); err != nil {
			return err
		}
		m := handoff.NewMessage("/orders", "order.placed", []byte(fmt.Sprintf(`{"order":%q}`, id)))
		m.PartitionKey = id
		if err := w.Add(ctx, tx, "orders", m); err != nil {
			return err
		}
		return tx.Commit()
	}

	// The relay: outbox rows to the broker.
	r, _ := relay.New(sqlite.RelayStore(db), broker, relay.WithWakeups(w.Wakeups()))
	go r.Run(ctx)

	// The shipping service: the shipment row and the inbox mark commit together.
	in, _ := inbox.New(sqlite.InboxStore(db), "shipping")
	handled := make(chan string, 10)
	ship := in.Handler(func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
		var o struct{ Order string }
		if err := json.Unmarshal(m.Data, &o); err != nil {
			return handoff.Permanent(err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO shipments (order_id) VALUES (?)`, o.Order)
		return err
	})
	h := handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
		err := ship.Handle(ctx, m)
		if err == nil {
			handled <- m.ID
		}
		return err
	})
	letters, _ := dlq.New(memory.NewDLQStore())
	c, _ := consumer.New(broker, "orders", "shipping", h, letters)
	go c.Run(ctx)

	placeOrder("o-1")
	placeOrder("o-2")
	first := <-handled
	<-handled

	// The broker delivers o-1's event a second time, as brokers may.
	dup := handoff.NewMessage("/orders", "order.placed", []byte(`{"order":"o-1"}`))
	dup.ID = first
	broker.Publish(ctx, "orders", dup)
	<-handled // handled: acked and skipped by the inbox

	var orders, shipments int
	db.QueryRow(`SELECT COUNT(*) FROM orders`).Scan(&orders)
	db.QueryRow(`SELECT COUNT(*) FROM shipments`).Scan(&shipments)
	fmt.Println("orders:", orders, "shipments:", shipments)
	// Output:
	// orders: 2 shipments: 2
}

// The relay of a PostgreSQL outbox to NATS JetStream, woken by the writer
// of its own process (it needs both services, so it is not run here).
func ExampleRelay_Run() {
	ctx := context.Background()
	db, err := postgres.Open(ctx, "postgres://app@db/app")
	if err != nil {
		panic(err)
	}
	nc, err := natsadapter.Connect("nats://127.0.0.1:4222")
	if err != nil {
		panic(err)
	}
	broker, err := natsadapter.New(nc)
	if err != nil {
		panic(err)
	}
	writer, err := outbox.New(postgres.OutboxStore(db))
	if err != nil {
		panic(err)
	}
	deadLetters, err := dlq.New(postgres.DLQStore(db))
	if err != nil {
		panic(err)
	}

	r, err := relay.New(postgres.RelayStore(db), broker,
		relay.WithWakeups(writer.Wakeups()), relay.WithDeadLetters(deadLetters))
	if err != nil {
		panic(err)
	}
	err = r.Run(ctx)
	fmt.Println(err)
}
