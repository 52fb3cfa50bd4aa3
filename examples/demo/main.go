// Command demo runs handoff's demo flow on its own (the one `handoff dev`
// runs beside its HTTP APIs): a SQLite file and an embedded NATS JetStream
// server under one data directory, a schema registry on a loopback port,
// and the orders flow of package orders: orders placed with their events
// through the outbox, the relay, a shipping consumer with the inbox, and
// three events it cannot handle, dead-lettered.
//
//	go run ./examples/demo -orders 10
//
// It stops after -orders shipments (0: on Ctrl-C). Its data survives a
// restart; `go run ./cmd/handoff dlq list --db DIR/handoff.db` shows the
// dead letters.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	natsadapter "github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/natsserver"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/examples/demo/orders"
	"github.com/handoffhq/handoff/registry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", ".handoff-demo", "directory holding the SQLite file and the NATS store")
	n := fs.Int("orders", 10, "stop after this many orders are shipped (0: run until interrupted)")
	every := fs.Duration("interval", 500*time.Millisecond, "how often an order is placed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return err
	}
	db, err := sqlite.Open(ctx, filepath.Join(*dataDir, "handoff.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	if err := sqlite.Migrate(ctx, db); err != nil {
		return err
	}
	ns, err := natsserver.Start(filepath.Join(*dataDir, "nats"))
	if err != nil {
		return err
	}
	defer ns.Shutdown()
	nc, err := natsadapter.Connect(ns.URL())
	if err != nil {
		return err
	}
	defer nc.Close()
	broker, err := natsadapter.New(nc, natsadapter.WithLogger(log))
	if err != nil {
		return err
	}
	defer broker.Close()
	dead, err := dlq.New(sqlite.DLQStore(db), dlq.WithLogger(log))
	if err != nil {
		return err
	}
	reg, err := registry.NewServer(sqlite.RegistryStore(db), registry.WithLogger(log))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: reg, ReadHeaderTimeout: 5 * time.Second}
	flow, err := orders.New(orders.Config{DB: db, NATS: nc, Broker: broker, DeadLetters: dead,
		RegistryURL: "http://" + ln.Addr().String(), Interval: *every, Orders: *n, Logger: log})
	if err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		// The flow stops after its orders, or when interrupted; then the
		// registry does.
		err := flow.Run(gctx)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		return err
	})
	if err := g.Wait(); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "demo: %d orders shipped; data in %s\n", flow.Shipped(), *dataDir)
	return nil
}
