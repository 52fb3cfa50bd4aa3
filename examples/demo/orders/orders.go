// Package orders is the demo flow handoff dev runs, written only against
// handoff's public API: a producer places an order every interval (the
// order row and its event commit in one transaction through the outbox),
// the relay publishes the events to NATS JetStream, and a shipping
// consumer creates one shipment per order with the inbox (the shipment
// row and the inbox mark commit together, so a redelivery never ships
// twice). Once per database it also sends three events the consumer cannot
// handle, so the dead-letter tools have something to show. A saga
// coordinator runs an order saga (reserve stock, charge card, confirm,
// with compensations) for the first orders of a run, and once per
// database for a customer on hold, whose refund fails until an operator
// retries it, so the saga tools have a stuck saga to show.
//
// The program in the parent directory runs it on its own; handoff dev runs
// it in-process beside its HTTP APIs.
package orders

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"golang.org/x/sync/errgroup"

	"github.com/handoffhq/handoff"
	natsadapter "github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/health"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/relay"
	"github.com/handoffhq/handoff/saga"
	"github.com/handoffhq/handoff/schema"
	"github.com/handoffhq/handoff/telemetry"
)

const (
	// Topic carries the order events.
	Topic = "demo.orders"
	// Group is the shipping consumer's group.
	Group = "demo-shipping"
	// Blocked is a customer the shipping handler refuses for good: its
	// order is dead-lettered (class "permanent") until an operator fixes
	// the order and replays it.
	Blocked = "c-blocked"
)

// Schema is the JSON Schema of the order events, registered under
// demo.orders-value; the outbox refuses an order event that breaks it, and
// the consumer dead-letters one (class "schema").
const Schema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "order": {"type": "string", "minLength": 1},
    "customer": {"type": "string"},
    "total": {"type": "number", "minimum": 0}
  },
  "required": ["order", "customer", "total"]
}`

// Order is an order event's data.
type Order struct {
	Order    string  `json:"order"`
	Customer string  `json:"customer"`
	Total    float64 `json:"total"`
}

// Config is what the flow runs on. Every field but Orders is required.
type Config struct {
	DB          *sql.DB // a migrated SQLite database
	NATS        *natsgo.Conn
	Broker      *natsadapter.Client // on NATS
	DeadLetters *dlq.Queue          // on DB
	RegistryURL string              // a schema registry (Confluent's API)
	// RegistryToken is the registry's token, if it needs one.
	RegistryToken string
	Interval      time.Duration // between two orders
	// Orders stops the flow once this many orders are shipped; 0 runs it
	// until its context ends.
	Orders int
	Logger *slog.Logger
	// Observe, when set, wraps the relay's publisher and is given to the
	// consumer and the relay as their observer (handoff dev's metrics).
	Observe Observer
}

// Observer sees the flow's publishes, consumes and relay cycles: what
// metrics.Metrics is.
type Observer interface {
	consumer.Observer
	relay.Observer
	Publisher(p handoff.Publisher, system string) handoff.Publisher
}

// Flow is the demo flow.
type Flow struct {
	cfg     Config
	running atomic.Bool
	relay   atomic.Pointer[relay.Relay]
	shipped atomic.Int64
	done    chan struct{}
	// settled is closed once the demo's dead letters are recorded (made
	// by this run's failures step, or found from an earlier run).
	settled chan struct{}
}

// New checks cfg; nothing starts before Run.
func New(cfg Config) (*Flow, error) {
	switch {
	case cfg.DB == nil, cfg.NATS == nil, cfg.Broker == nil, cfg.DeadLetters == nil:
		return nil, errors.New("orders: DB, NATS, Broker and DeadLetters are required")
	case cfg.RegistryURL == "":
		return nil, errors.New("orders: RegistryURL is required")
	case cfg.Interval <= 0:
		return nil, fmt.Errorf("orders: Interval %v: must be > 0", cfg.Interval)
	case cfg.Orders < 0:
		return nil, fmt.Errorf("orders: Orders %d: must be >= 0", cfg.Orders)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Flow{cfg: cfg, done: make(chan struct{}), settled: make(chan struct{})}, nil
}

// Checks are the flow's parts for a health handler: the consumer (running)
// and the relay (its database and broker reachable).
func (f *Flow) Checks() []health.Check {
	return []health.Check{
		{Name: "consumer", Func: func(context.Context) error {
			if !f.running.Load() {
				return errors.New("not running")
			}
			return nil
		}},
		{Name: "relay", Func: func(context.Context) error {
			if r := f.relay.Load(); r != nil {
				return r.Health()
			}
			return errors.New("not running")
		}},
	}
}

// Run registers the schema, then runs the producer, the relay, the
// consumer and the inbox's cleanup until ctx ends (nil) or one of them
// fails (its error); it returns only when all of them have stopped.
// stopped is err, or nil when it came of ctx's end: a flow stopped while
// it set up (Ctrl-C right after start) stops cleanly, as one stopped later.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (f *Flow) Run(ctx context.Context) error {
	log, db := f.cfg.Logger, f.cfg.DB
	validator, err := f.register(ctx)
	if err != nil {
		return stopped(ctx, err)
	}
	c, in, err := f.consumer(ctx, validator)
	if err != nil {
		return stopped(ctx, err)
	}
	w, err := outbox.New(sqlite.OutboxStore(db), outbox.WithValidator(validator), outbox.WithBrokerLimit(f.cfg.Broker))
	if err != nil {
		return fmt.Errorf("orders: %w", err)
	}
	var pub handoff.Publisher = telemetry.Publisher(f.cfg.Broker, telemetry.WithSystem("nats"))
	ropts := []relay.Option{relay.WithWakeups(w.Wakeups()), relay.WithDeadLetters(f.cfg.DeadLetters), relay.WithLogger(log)}
	if f.cfg.Observe != nil {
		pub = f.cfg.Observe.Publisher(pub, "nats")
		ropts = append(ropts, relay.WithObserver(f.cfg.Observe))
	}
	coord, orderSagas, err := f.sagas()
	if err != nil {
		return err
	}
	r, err := relay.New(sqlite.RelayStore(db), pub, ropts...)
	if err != nil {
		return fmt.Errorf("orders: %w", err)
	}
	f.relay.Store(r)

	g, gctx := errgroup.WithContext(ctx)
	if f.cfg.Orders > 0 {
		// A bounded run: stop everything once the orders are shipped and
		// the demo's dead letters are recorded.
		var cancel context.CancelFunc
		gctx, cancel = context.WithCancel(gctx)
		defer cancel()
		g.Go(func() error {
			for _, ch := range []chan struct{}{f.done, f.settled} {
				select {
				case <-ch:
				case <-gctx.Done():
					return nil
				}
			}
			cancel()
			return nil
		})
	}
	// A part that stops because the flow is stopping is not a failure.
	part := func(name string, run func(context.Context) error) {
		g.Go(func() error {
			if err := run(gctx); err != nil && !(gctx.Err() != nil && errors.Is(err, context.Canceled)) {
				return fmt.Errorf("orders: %s: %w", name, err)
			}
			return nil
		})
	}
	f.running.Store(true)
	part("consumer", func(ctx context.Context) error { defer f.running.Store(false); return c.Run(ctx) })
	part("inbox cleanup", in.Run)
	part("relay", r.Run)
	part("producer", func(ctx context.Context) error { return f.produce(ctx, w, orderSagas) })
	part("failures", func(ctx context.Context) error { return f.failures(ctx, w) })
	part("sagas", func(ctx context.Context) error { return f.runSagas(ctx, coord) })
	part("stuck saga", func(ctx context.Context) error { return f.stuckSaga(ctx, orderSagas, coord) })
	return g.Wait()
}

// Shipped is how many orders the consumer has shipped in this run.
func (f *Flow) Shipped() int { return int(f.shipped.Load()) }

// register registers the schema and returns the validator the producer
// and the consumer use.
func (f *Flow) register(ctx context.Context) (*registry.Validator, error) {
	var opts []registry.ClientOption
	if f.cfg.RegistryToken != "" {
		opts = append(opts, registry.WithToken(f.cfg.RegistryToken))
	}
	c, err := registry.NewClient(f.cfg.RegistryURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("orders: %w", err)
	}
	subject, spec := Topic+"-value", registry.SchemaSpec{Type: schema.JSON, Text: Schema}
	if _, err := c.Register(ctx, subject, spec); err != nil {
		var re *registry.Error
		if !errors.As(err, &re) || re.Code != registry.CodeOperationNotPermitted {
			return nil, fmt.Errorf("orders: register the schema: %w", err)
		}
		// A mode set through the API (READONLY) refuses registering, even
		// of a schema registered already: use the registered one.
		if _, lerr := c.Lookup(ctx, subject, spec); lerr != nil {
			return nil, fmt.Errorf("orders: register the schema: %w; set the mode back with: curl -X PUT -H 'Content-Type: application/json' -d '{\"mode\":\"READWRITE\"}' %s/mode", err, f.cfg.RegistryURL)
		}
		f.cfg.Logger.Warn("demo: the registry refuses registrations (mode); the demo uses its schema registered earlier", "subject", subject, "err", re.Message)
	}
	v, err := registry.NewValidator(c, registry.WithTopicNameStrategy())
	if err != nil {
		return nil, fmt.Errorf("orders: %w", err)
	}
	return v, nil
}

// produce places an order every interval: the order row and its
// demo.order.placed event commit in one transaction (the outbox).
// The first SagaOrders orders of a run also start an order saga in that
// transaction.
func (f *Flow) produce(ctx context.Context, w *outbox.Writer, orderSagas *saga.Saga[Order]) error {
	db, log := f.cfg.DB, f.cfg.Logger
	t := time.NewTicker(f.cfg.Interval)
	defer t.Stop()
	for n := 1; f.cfg.Orders == 0 || n <= f.cfg.Orders; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		o := Order{Order: fmt.Sprintf("o-%d-%d", time.Now().Unix(), n), Customer: fmt.Sprintf("c-%d", n%3), Total: float64(10 + n%7)}
		data, _ := json.Marshal(o)
		m := handoff.NewMessage("/demo/orders", "demo.order.placed", data)
		m.PartitionKey = o.Customer
		m.Subject = o.Order
		err := func() error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if _, err := tx.ExecContext(ctx, `INSERT INTO demo_orders (order_id, customer, total, created_at) VALUES (?, ?, ?, ?)`,
				o.Order, o.Customer, o.Total, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
				return err
			}
			if err := w.Add(ctx, tx, Topic, m); err != nil {
				return err
			}
			if n <= SagaOrders {
				if _, err := orderSagas.Start(ctx, tx, o, saga.WithID("demo-order-"+o.Order)); err != nil {
					return err
				}
			}
			return tx.Commit()
		}()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Error("demo: place order failed", "err", err)
			n--
			continue
		}
		log.Info("demo: order placed with its event in one transaction (outbox)", "order", o.Order, "id", m.ID, "key", m.PartitionKey)
		if n <= SagaOrders {
			log.Info("demo: order saga started in the order's transaction (stock reserved); the coordinator charges the card and confirms", "saga", "demo-order-"+o.Order)
		}
	}
	return nil
}

// consumer handles demo.order.placed with the inbox: the shipment row and
// the inbox mark commit together, so a redelivery never ships twice.
func (f *Flow) consumer(ctx context.Context, v *registry.Validator) (*consumer.Consumer, *inbox.Inbox[*sql.Tx], error) {
	db, log := f.cfg.DB, f.cfg.Logger
	// The tables are made before any part runs: SQLite has one writer.
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS demo_orders (
		order_id TEXT PRIMARY KEY, customer TEXT NOT NULL, total REAL NOT NULL, created_at TEXT NOT NULL)`); err != nil {
		return nil, nil, fmt.Errorf("orders: demo table: %w", err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS demo_shipments (
		order_id TEXT PRIMARY KEY, customer TEXT NOT NULL, message_id TEXT NOT NULL, created_at TEXT NOT NULL)`); err != nil {
		return nil, nil, fmt.Errorf("orders: demo table: %w", err)
	}
	for _, ddl := range sagaTables {
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			return nil, nil, fmt.Errorf("orders: demo table: %w", err)
		}
	}
	in, err := inbox.New(sqlite.InboxStore(db), Group)
	if err != nil {
		return nil, nil, fmt.Errorf("orders: %w", err)
	}
	var mux consumer.Mux
	mux.On("demo.order.placed", in.Handler(func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
		var o Order
		if err := json.Unmarshal(m.Data, &o); err != nil {
			return handoff.Permanent(fmt.Errorf("decode order: %w", err))
		}
		if o.Customer == Blocked {
			return handoff.Permanent(fmt.Errorf("customer %s is on hold: fix the order's customer and replay it", o.Customer))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO demo_shipments (order_id, customer, message_id, created_at) VALUES (?, ?, ?, ?)`,
			o.Order, o.Customer, m.ID, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return err
		}
		log.Info("demo: shipment created (inbox: exactly once)", "order", o.Order, "id", m.ID)
		return nil
	}))
	copts := []consumer.Option{consumer.WithLogger(log), consumer.WithSystem("nats"), consumer.WithBackoff(time.Second, time.Minute),
		consumer.WithValidator(v)}
	if f.cfg.Observe != nil {
		copts = append(copts, consumer.WithObserver(f.cfg.Observe))
	}
	c, err := consumer.New(f.cfg.Broker, Topic, Group, f.counting(&mux), f.cfg.DeadLetters, copts...)
	if err != nil {
		return nil, nil, fmt.Errorf("orders: %w", err)
	}
	return c, in, nil
}

// counting counts the orders shipped (handled without error), and closes
// f.done when a bounded run has shipped them all.
func (f *Flow) counting(next handoff.Handler) handoff.Handler {
	return handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
		if err := next.Handle(ctx, m); err != nil {
			return err
		}
		if n := f.shipped.Add(1); f.cfg.Orders > 0 && n == int64(f.cfg.Orders) {
			close(f.done)
		}
		return nil
	})
}
