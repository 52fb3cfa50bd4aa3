package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff"
	natsadapter "github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/natsserver"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/alert"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/internal/httpguard"
	"github.com/handoffhq/handoff/internal/otelsetup"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/relay"
	"github.com/handoffhq/handoff/schema"
	"github.com/handoffhq/handoff/telemetry"
)

const defaultAddr = "127.0.0.1:8477"

// dev runs the embedded defaults: a SQLite file and an embedded NATS
// JetStream server under one data directory, an HTTP server with /healthz,
// and a demo producer and consumer (with the inbox) whose flow it logs.
func dev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", ".handoff", "directory holding the SQLite file and the NATS store")
	addr := fs.String("addr", defaultAddr, "HTTP listen address (not loopback: needs --token or --insecure)")
	token := fs.String("token", os.Getenv("HANDOFF_DEV_TOKEN"), "token every HTTP request needs, as Bearer or basic-auth password (env HANDOFF_DEV_TOKEN)")
	insecure := fs.Bool("insecure", false, "serve a non-loopback --addr without --token (schema writes and dead-letter payloads open to the network)")
	natsPort := fs.Int("nats-port", 0, "embedded NATS port (0: a free port, so a NATS already running is never disturbed)")
	demo := fs.Bool("demo", true, "run the demo producer and consumer")
	every := fs.Duration("demo-interval", 2*time.Second, "how often the demo producer publishes")
	var of observeFlags
	of.register(fs, "stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addrSet := false
	fs.Visit(func(f *flag.Flag) { addrSet = addrSet || f.Name == "addr" })
	if *every <= 0 {
		return fmt.Errorf("dev: --demo-interval %v: must be > 0", *every)
	}
	log := otelsetup.Logger(stderr, slog.LevelInfo) // records inside a span carry its trace id
	if !httpguard.IsLoopback(*addr) && *token == "" {
		if !*insecure {
			return fmt.Errorf("dev: --addr %s is not loopback: give --token (or --insecure, to open schema writes and dead-letter payloads to the network)", *addr)
		}
		log.Warn("dev: INSECURE: serving schema writes and dead-letter payloads without a token to the network", "addr", *addr)
	}

	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return fmt.Errorf("dev: data dir: %w", err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(*dataDir, "handoff.db"))
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer db.Close()
	if err := sqlite.Migrate(ctx, db); err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	obs, err := newObservability(ctx, of, *dataDir, log,
		alert.DeadLetters(sqlite.DLQStore(db), 30*time.Second), alert.Backlog("outbox", sqlite.RelayStore(db), of.backlog, 2*time.Second))
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer obs.close()
	if err := errors.Join(obs.metrics.Outbox("outbox", sqlite.RelayStore(db)), obs.metrics.DeadLetters(sqlite.DLQStore(db))); err != nil {
		return fmt.Errorf("dev: %w", err)
	}

	opts := []natsserver.Option{}
	if *natsPort != 0 {
		opts = append(opts, natsserver.WithPort(*natsPort))
	}
	ns, err := natsserver.Start(filepath.Join(*dataDir, "nats"), opts...)
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer ns.Shutdown()
	nc, err := natsadapter.Connect(ns.URL())
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer nc.Close()
	broker, err := natsadapter.New(nc, natsadapter.WithLogger(log))
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer broker.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil && !addrSet {
		// The default port is taken: any free port will do for dev.
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return fmt.Errorf("dev: listen on %s: %w", *addr, err)
	}

	deadLetters, err := dlq.New(sqlite.DLQStore(db), dlq.WithLogger(log), dlq.WithAlerter(obs.alerts))
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}

	var running atomic.Bool
	var demoRelay atomic.Pointer[relay.Relay]
	h := &health{db: db, nats: func() error {
		if !nc.IsConnected() {
			return errors.New("not connected")
		}
		return nil
	}, consumer: func() error {
		if *demo && !running.Load() {
			return errors.New("not running")
		}
		return nil
	}, relay: func() error {
		if r := demoRelay.Load(); r != nil {
			return r.Health()
		}
		return nil
	}}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", h)
	obs.mount(mux, h)
	letters, err := dlq.NewHandler(deadLetters)
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	lettersAPI := obs.metrics.Handler("/dead-letters", http.StripPrefix("/dead-letters", letters))
	mux.Handle("GET /dead-letters", lettersAPI)
	mux.Handle("GET /dead-letters/", lettersAPI)
	reg, err := registry.NewServer(sqlite.RegistryStore(db), registry.WithLogger(log))
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	mux.Handle("/registry/", obs.metrics.Handler("/registry/", http.StripPrefix("/registry", reg)))
	srv := httpguard.NewServer(guard(*addr, *token).Wrap(mux), httpguard.Timeouts{})

	base := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "health           %s/healthz\n", base)
	fmt.Fprintf(stdout, "ready            %s/readyz\n", base)
	fmt.Fprintf(stdout, "metrics          %s/metrics\n", base)
	fmt.Fprintf(stdout, "dead letters     %s/dead-letters\n", base)
	fmt.Fprintf(stdout, "schema registry  %s/registry\n", base)
	fmt.Fprintf(stdout, "nats             %s\n", ns.URL())
	fmt.Fprintf(stdout, "data             %s\n", *dataDir)

	var wg sync.WaitGroup
	errc := make(chan error, 4)
	goRun := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errc <- fmt.Errorf("dev: %s: %w", name, err)
			}
		}()
	}
	goRun("http", func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if *demo {
		validator, err := demoSchema(ctx, base+"/registry", *token, log)
		if err != nil {
			return err
		}
		c, in, err := demoConsumer(db, broker, deadLetters, validator, log, consumer.WithObserver(obs.metrics))
		if err != nil {
			return err
		}
		running.Store(true)
		goRun("inbox cleanup", func() error { return in.Run(ctx) })
		goRun("demo consumer", func() error { defer running.Store(false); return c.Run(ctx) })
		w, err := outbox.New(sqlite.OutboxStore(db), outbox.WithValidator(validator), outbox.WithBrokerLimit(broker))
		if err != nil {
			return fmt.Errorf("dev: %w", err)
		}
		r, err := relay.New(sqlite.RelayStore(db), obs.metrics.Publisher(telemetry.Publisher(broker, telemetry.WithSystem("nats")), "nats"),
			relay.WithWakeups(w.Wakeups()), relay.WithDeadLetters(deadLetters), relay.WithLogger(log), relay.WithObserver(obs.metrics))
		if err != nil {
			return fmt.Errorf("dev: %w", err)
		}
		demoRelay.Store(r)
		goRun("relay", func() error { return r.Run(ctx) })
		goRun("demo producer", func() error { return demoProducer(ctx, db, w, *every, log) })
		goRun("demo failures", func() error { return demoFailures(ctx, nc, broker, db, w, deadLetters, log) })
	}
	goRun("alerts", func() error { return obs.alerts.Run(ctx) })
	obs.ready.Store(true)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if runErr != nil {
		// Stop the rest before reporting.
		return runErr
	}
	wg.Wait()
	fmt.Fprintln(stderr, "handoff dev: stopped")
	return nil
}

// health answers 200 when every part is up, 503 naming the parts that are not.
type health struct {
	db       *sql.DB
	nats     func() error
	consumer func() error
	relay    func() error
}

func (h *health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	ok := true
	add := func(name string, err error) {
		if err != nil {
			checks[name] = err.Error()
			ok = false
			return
		}
		checks[name] = "ok"
	}
	add("database", h.db.PingContext(ctx))
	add("nats", h.nats())
	add("consumer", h.consumer())
	add("relay", h.relay())
	w.Header().Set("Content-Type", "application/json")
	status := "ok"
	if !ok {
		status = "unavailable"
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(map[string]any{"status": status, "checks": checks})
}

const demoTopic = "demo.orders"

// demoOrderSchema is the JSON Schema of the demo's order events, registered
// under demo.orders-value; the outbox refuses an order event that breaks it,
// and the consumer dead-letters one (class "schema").
const demoOrderSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "order": {"type": "string", "minLength": 1},
    "customer": {"type": "string"},
    "total": {"type": "number", "minimum": 0}
  },
  "required": ["order", "customer", "total"]
}`

// demoSchema registers the demo's schema in the dev registry and returns
// the validator the demo's producer and consumer use.
func demoSchema(ctx context.Context, registryURL, token string, log *slog.Logger) (*registry.Validator, error) {
	var opts []registry.ClientOption
	if token != "" {
		opts = append(opts, registry.WithToken(token))
	}
	c, err := registry.NewClient(registryURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	subject, spec := demoTopic+"-value", registry.SchemaSpec{Type: schema.JSON, Text: demoOrderSchema}
	if _, err := c.Register(ctx, subject, spec); err != nil {
		var re *registry.Error
		if !errors.As(err, &re) || re.Code != registry.CodeOperationNotPermitted {
			return nil, fmt.Errorf("dev: register the demo schema: %w", err)
		}
		// A mode set through the API (READONLY) refuses registering, even
		// of a schema registered already: use the registered one.
		if _, lerr := c.Lookup(ctx, subject, spec); lerr != nil {
			return nil, fmt.Errorf("dev: register the demo schema: %w; set the mode back with: curl -X PUT -H 'Content-Type: application/json' -d '{\"mode\":\"READWRITE\"}' %s/mode", err, registryURL)
		}
		log.Warn("dev: the registry refuses registrations (mode); the demo uses its schema registered earlier", "subject", subject, "err", re.Message)
	}
	v, err := registry.NewValidator(c, registry.WithTopicNameStrategy())
	if err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	return v, nil
}

type demoOrder struct {
	Order    string  `json:"order"`
	Customer string  `json:"customer"`
	Total    float64 `json:"total"`
}

// demoProducer places an order every interval: the order row and its
// order.placed event commit in one transaction (the outbox); the relay
// publishes the event.
func demoProducer(ctx context.Context, db *sql.DB, w *outbox.Writer, every time.Duration, log *slog.Logger) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS demo_orders (
		order_id TEXT PRIMARY KEY, customer TEXT NOT NULL, total REAL NOT NULL, created_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("demo table: %w", err)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		o := demoOrder{Order: fmt.Sprintf("o-%d-%d", time.Now().Unix(), n), Customer: fmt.Sprintf("c-%d", n%3), Total: float64(10 + n%7)}
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
			if err := w.Add(ctx, tx, demoTopic, m); err != nil {
				return err
			}
			return tx.Commit()
		}()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Error("demo: place order failed", "err", err)
			continue
		}
		log.Info("demo: order placed with its event in one transaction (outbox)", "order", o.Order, "id", m.ID, "key", m.PartitionKey)
	}
}

// demoConsumer handles order.placed with the inbox: the shipment row and the
// inbox mark commit together, so a redelivery never ships twice.
func demoConsumer(db *sql.DB, sub handoff.Subscriber, dead *dlq.Queue, v *registry.Validator, log *slog.Logger, extra ...consumer.Option) (*consumer.Consumer, *inbox.Inbox[*sql.Tx], error) {
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS demo_shipments (
		order_id TEXT PRIMARY KEY, customer TEXT NOT NULL, message_id TEXT NOT NULL, created_at TEXT NOT NULL)`); err != nil {
		return nil, nil, fmt.Errorf("dev: demo table: %w", err)
	}
	in, err := inbox.New(sqlite.InboxStore(db), demoGroup)
	if err != nil {
		return nil, nil, fmt.Errorf("dev: %w", err)
	}
	var mux consumer.Mux
	mux.On("demo.order.placed", in.Handler(func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
		var o demoOrder
		if err := json.Unmarshal(m.Data, &o); err != nil {
			return handoff.Permanent(fmt.Errorf("decode order: %w", err))
		}
		if o.Customer == demoBlocked {
			return handoff.Permanent(fmt.Errorf("customer %s is on hold: fix the order's customer and replay it", o.Customer))
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO demo_shipments (order_id, customer, message_id, created_at) VALUES (?, ?, ?, ?)`,
			o.Order, o.Customer, m.ID, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return err
		}
		log.Info("demo: shipment created (inbox: exactly once)", "order", o.Order, "id", m.ID)
		return nil
	}))
	c, err := consumer.New(sub, demoTopic, demoGroup, &mux, dead, append([]consumer.Option{
		consumer.WithLogger(log), consumer.WithSystem("nats"), consumer.WithBackoff(time.Second, time.Minute),
		consumer.WithValidator(v)}, extra...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("dev: %w", err)
	}
	return c, in, nil
}
