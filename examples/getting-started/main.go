// Command getting-started is a small service on PostgreSQL and NATS
// JetStream that uses each part of handoff a service needs first:
//
//  1. an HTTP handler (POST /orders) writes the order row and its
//     order.placed event in one transaction, through the outbox;
//  2. the relay publishes the outbox's events to NATS (woken by
//     PostgreSQL's LISTEN/NOTIFY, polling as a safety net);
//  3. a consumer with the inbox writes one shipment row per order, in one
//     transaction with the inbox mark, so a redelivered event never ships
//     twice;
//  4. before shipping, it reserves the goods at a warehouse that fails
//     every other call, through a resilient HTTP client (retry with a
//     budget, a breaker, a per-attempt timeout).
//
// It places -orders orders through its own HTTP handler, waits until each
// is shipped, prints the rows, and exits:
//
//	go run ./examples/getting-started -db postgres://postgres@127.0.0.1:5432/test -nats nats://127.0.0.1:4222
//
// The README's "Getting started on PostgreSQL and NATS" walks through it.
package main

import (
	"bytes"
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
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/handoffhq/handoff"
	natsadapter "github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/relay"
	"github.com/handoffhq/handoff/resilience"
	"github.com/handoffhq/handoff/resiliencehttp"
	"github.com/handoffhq/handoff/retry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "getting-started:", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// config is the program's flags.
type config struct {
	db, nats, topic string
	orders          int
	timeout         time.Duration
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("getting-started", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.StringVar(&c.db, "db", env("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL URL (env DATABASE_URL)")
	fs.StringVar(&c.nats, "nats", env("NATS_URL", "nats://127.0.0.1:4222"), "NATS URL (env NATS_URL)")
	fs.StringVar(&c.topic, "topic", "getting-started.orders", "topic of the order events")
	fs.IntVar(&c.orders, "orders", 5, "orders to place before exiting")
	fs.DurationVar(&c.timeout, "timeout", time.Minute, "give up when the orders are not all shipped within this")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.orders < 1 {
		return fmt.Errorf("-orders %d: must be >= 1", c.orders)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	// PostgreSQL: handoff's tables (outbox, inbox, dead letters, ...) and
	// the service's own.
	db, err := postgres.Open(ctx, c.db)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `
		CREATE TABLE IF NOT EXISTS orders (id text PRIMARY KEY, customer text NOT NULL, total numeric NOT NULL);
		CREATE TABLE IF NOT EXISTS shipments (order_id text PRIMARY KEY, message_id text NOT NULL, reservation text NOT NULL)`); err != nil {
		return err
	}

	// NATS JetStream.
	nc, err := natsadapter.Connect(c.nats)
	if err != nil {
		return err
	}
	defer nc.Close()
	broker, err := natsadapter.New(nc, natsadapter.WithLogger(log))
	if err != nil {
		return err
	}
	defer broker.Close()

	// 1. The order service: its HTTP handler writes the row and the event
	// in one transaction.
	w, err := outbox.New(postgres.OutboxStore(db))
	if err != nil {
		return err
	}
	orders := http.NewServeMux()
	orders.Handle("POST /orders", placeOrder(db, w, c.topic))

	// 2. The relay.
	dead, err := dlq.New(postgres.DLQStore(db), dlq.WithLogger(log))
	if err != nil {
		return err
	}
	r, err := relay.New(postgres.RelayStore(db), broker, relay.WithDeadLetters(dead),
		relay.WithWakeups(postgres.Wakeups(ctx, c.db, log)), relay.WithLogger(log))
	if err != nil {
		return err
	}

	// 4. The flaky warehouse, and a resilient client to it.
	warehouse, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var calls atomic.Int64
	warehouseSrv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%2 == 1 {
			http.Error(w, "warehouse busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "R-%s", strings.TrimPrefix(r.URL.Path, "/reservations/"))
	})}
	client, err := resilientClient(warehouse.Addr().String())
	if err != nil {
		return err
	}

	// 3. The shipping service: a consumer with the inbox.
	in, err := inbox.New(postgres.InboxStore(db), "shipping")
	if err != nil {
		return err
	}
	ship := in.Handler(func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
		var o order
		if err := json.Unmarshal(m.Data, &o); err != nil {
			return handoff.Permanent(fmt.Errorf("decode order: %w", err))
		}
		reservation, err := reserve(ctx, client, "http://"+warehouse.Addr().String(), o.ID)
		if err != nil {
			return err // retried by the consumer, after the client's own retries
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO shipments (order_id, message_id, reservation) VALUES ($1, $2, $3)`, o.ID, m.ID, reservation)
		return err
	})
	cons, err := consumer.New(broker, c.topic, "shipping", ship, dead,
		consumer.WithLogger(log), consumer.WithSystem("nats"), consumer.WithBackoff(100*time.Millisecond, 5*time.Second))
	if err != nil {
		return err
	}

	ordersLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ordersSrv := &http.Server{Handler: orders, ReadHeaderTimeout: 5 * time.Second}

	// Run every part; the first to fail stops the others.
	g, gctx := errgroup.WithContext(ctx)
	serve := func(srv *http.Server, ln net.Listener) {
		g.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			return srv.Shutdown(context.WithoutCancel(gctx))
		})
	}
	serve(ordersSrv, ordersLn)
	serve(warehouseSrv, warehouse)
	g.Go(func() error { return r.Run(gctx) })
	g.Go(func() error { return cons.Run(gctx) })
	g.Go(func() error { return in.Run(gctx) })
	var shipped []shipment
	g.Go(func() error {
		// The demo: place the orders, wait for their shipments, stop.
		defer func() { ordersSrv.Shutdown(context.WithoutCancel(gctx)) }()
		var err error
		shipped, err = demo(gctx, db, "http://"+ordersLn.Addr().String(), c)
		if err != nil {
			return err
		}
		return errStop
	})
	if err := g.Wait(); !errors.Is(err, errStop) {
		if err == nil {
			err = ctx.Err()
		}
		return err
	}
	for _, s := range shipped {
		fmt.Fprintf(stdout, "order %s shipped once (message %s, reservation %s)\n", s.order, s.message, s.reservation)
	}
	fmt.Fprintf(stdout, "warehouse calls: %d for %d reservations (every other one failed and was retried)\n", calls.Load(), len(shipped))
	return nil
}

// errStop ends the run once the demo is done.
var errStop = errors.New("demo done")

type order struct {
	ID       string  `json:"id"`
	Customer string  `json:"customer"`
	Total    float64 `json:"total"`
}

// placeOrder is the order service's handler: the order row and its event
// commit together, or neither does.
func placeOrder(db *sql.DB, w *outbox.Writer, topic string) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var o order
		if err := json.NewDecoder(http.MaxBytesReader(rw, r.Body, 1<<16)).Decode(&o); err != nil || o.ID == "" {
			http.Error(rw, "body: want {\"id\":..., \"customer\":..., \"total\":...}", http.StatusBadRequest)
			return
		}
		data, _ := json.Marshal(o)
		m := handoff.NewMessage("/orders", "order.placed", data)
		m.PartitionKey = o.Customer // per-customer order
		m.Subject = o.ID
		err := func() error {
			tx, err := db.BeginTx(r.Context(), nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if _, err := tx.ExecContext(r.Context(), `INSERT INTO orders (id, customer, total) VALUES ($1, $2, $3)`, o.ID, o.Customer, o.Total); err != nil {
				return err
			}
			if err := w.Add(r.Context(), tx, topic, m); err != nil {
				return err
			}
			return tx.Commit()
		}()
		if err != nil {
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		rw.WriteHeader(http.StatusCreated)
	})
}

// resilientClient calls the warehouse at addr with retries (within a
// budget), a breaker and a timeout per attempt. A call the client gives up
// on fails the handler, and the consumer retries the message later.
func resilientClient(addr string) (*http.Client, error) {
	budget, err := retry.NewBudget(0.5)
	if err != nil {
		return nil, err
	}
	// The warehouse fails half its calls: open only above that.
	br, err := breaker.New("warehouse", breaker.WithFailureRate(75))
	if err != nil {
		return nil, err
	}
	tr, err := resiliencehttp.NewTransport(nil, resiliencehttp.WithPolicy(addr, resiliencehttp.Policy{
		Policy: resilience.Policy{
			Retry:   &retry.Policy{MaxAttempts: 3, Budget: budget},
			Breaker: br,
			Timeout: 2 * time.Second,
		},
	}))
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: tr}, nil
}

// reserve reserves an order's goods; PUT, so the client may repeat it.
func reserve(ctx context.Context, c *http.Client, base, id string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/reservations/"+id, nil)
	if err != nil {
		return "", err
	}
	res, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<10))
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("warehouse: %s: %s", res.Status, body)
	}
	return string(body), nil
}

type shipment struct{ order, message, reservation string }

// demo places c.orders orders through the HTTP handler and waits until
// each has its shipment row.
func demo(ctx context.Context, db *sql.DB, base string, c config) ([]shipment, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	run := time.Now().UnixNano()
	ids := make([]string, c.orders)
	for i := range ids {
		ids[i] = fmt.Sprintf("o-%d-%d", run, i+1)
		body, _ := json.Marshal(order{ID: ids[i], Customer: fmt.Sprintf("c-%d", i%3), Total: float64(10 + i)})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/orders", bytes.NewReader(body))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			return nil, fmt.Errorf("POST /orders: %s", res.Status)
		}
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var out []shipment
		rows, err := db.QueryContext(ctx, `SELECT order_id, message_id, reservation FROM shipments WHERE order_id = ANY($1) ORDER BY order_id`, ids)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var s shipment
			if err := rows.Scan(&s.order, &s.message, &s.reservation); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, s)
		}
		rows.Close()
		if len(out) == len(ids) {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d orders shipped within %v", len(out), len(ids), c.timeout)
		case <-tick.C:
		}
	}
}
