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
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	natsadapter "github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/natsserver"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/examples/demo/orders"
	"github.com/handoffhq/handoff/health"
	"github.com/handoffhq/handoff/internal/httpguard"
	"github.com/handoffhq/handoff/internal/otelsetup"
	"github.com/handoffhq/handoff/topology"
	"github.com/handoffhq/handoff/topology/topologyotlp"
)

const defaultAddr = "127.0.0.1:8477"

// dev runs the embedded defaults: a SQLite file and an embedded NATS
// JetStream server under one data directory, on one port the same APIs as
// handoff serve (buildAPI: dead letters, replayed through the embedded
// NATS, the schema registry, the contract broker, the topology and its
// OTLP receiver, health, readiness and metrics), and the demo flow of
// examples/demo/orders, whose steps it logs.
func dev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", ".handoff", "directory holding the SQLite file and the NATS store")
	addr := fs.String("addr", defaultAddr, "HTTP listen address (not loopback: needs --token or --insecure)")
	token := fs.String("token", os.Getenv("HANDOFF_DEV_TOKEN"), "token every HTTP request needs, as Bearer or basic-auth password (env HANDOFF_DEV_TOKEN)")
	insecure := fs.Bool("insecure", false, "serve a non-loopback --addr without --token (every API open to the network: schemas, contracts, dead letters and their replays)")
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
			return fmt.Errorf("dev: --addr %s is not loopback: give --token (or --insecure, to open every API to the network: schemas, contracts, dead letters and their replays)", *addr)
		}
		log.Warn("dev: INSECURE: serving every API without a token to the network: schemas, contracts, dead letters and their replays", "addr", *addr)
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
	ddb := &database{DB: db, kind: sqliteDB}
	// dev runs its demo's relay itself: no check of unleased partitions.
	alertOpts, err := dbAlerts(ddb, of, false)
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	obs, err := newObservability(ctx, of, *dataDir, log, alertOpts...)
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer obs.close()
	if err := dbMetrics(obs.metrics, ddb); err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	// The observed topology is kept in the data directory's database, so
	// it survives a restart as the rest does.
	tf := topologyFlags{flush: topology.DefaultFlushInterval, cache: topology.DefaultCacheTTL, retention: topology.DefaultRetention}
	observed, err := tf.open(ddb, topology.New(), log)
	if err != nil {
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

	var flow *orders.Flow
	checks := []health.Check{
		{Name: "database", Func: db.PingContext},
		{Name: "nats", Func: func(context.Context) error {
			if !nc.IsConnected() {
				return errors.New("not connected")
			}
			return nil
		}},
	}
	if *demo {
		flow, err = orders.New(orders.Config{DB: db, NATS: nc, Broker: broker, DeadLetters: deadLetters,
			RegistryURL: "http://" + ln.Addr().String() + "/registry", RegistryToken: *token, Interval: *every, Logger: log, Observe: obs.metrics})
		if err != nil {
			return fmt.Errorf("dev: %w", err)
		}
		checks = append(checks, flow.Checks()...)
	}
	base := "http://" + ln.Addr().String()
	// The API gets a connection pool of its own on the same database file.
	// The demo's writers validate each event against the registry served
	// here while their transaction holds SQLite's one write lock; had the
	// registry's read to wait for a connection of the pool those writers
	// fill waiting for the lock, both would wait out SQLite's busy timeout
	// (TestDev_GuardsAndStartsAfterReadOnly's PUT /mode got a 500 after 5 s).
	apiSQL, err := sqlite.Open(ctx, filepath.Join(*dataDir, "handoff.db"))
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer apiSQL.Close()
	api, err := buildAPI(apiConfig{db: &database{DB: apiSQL, kind: sqliteDB}, deadLetters: deadLetters, replays: broker, obs: obs,
		checks: checks, topo: observed, otlpMax: topologyotlp.DefaultMaxBytes, addr: *addr, token: *token, base: base, log: log})
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	srv := newHTTPServer(api)

	// Every part runs in one group: the first to fail stops the others,
	// and dev returns only when all of them have stopped (the deferred
	// closes of the broker, NATS and the database run after that).
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("dev: http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return srv.shutdown(sctx)
	})
	if flow != nil {
		g.Go(func() error { return flow.Run(gctx) })
	}
	g.Go(func() error { return obs.alerts.Run(gctx) })
	g.Go(func() error { return observed.Run(gctx) })
	obs.ready.Store(true)
	// The URLs are printed once the parts are started: /readyz no
	// longer answers "starting" (it answers what the health checks say).
	printAPIs(stdout, base)
	fmt.Fprintf(stdout, "nats             %s\n", ns.URL())
	fmt.Fprintf(stdout, "data             %s\n", *dataDir)
	if flow != nil {
		log.Info("dev: the demo's order sagas (one of them stuck until you retry it): go run ./cmd/handoff saga list --server " + base +
			" --status stuck, then saga show ID, saga retry ID (or skip, abort)")
	}
	if devFault != nil {
		g.Go(func() error { return devFault(gctx) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "handoff dev: stopped")
	return nil
}

// devFault, when a test sets it, runs as one more part of handoff dev: an
// error it returns is a failure of dev.
var devFault func(ctx context.Context) error
