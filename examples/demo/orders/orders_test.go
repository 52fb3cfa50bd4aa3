package orders_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	natsadapter "github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/natsserver"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/examples/demo/orders"
	"github.com/handoffhq/handoff/registry"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The demo's events the consumer cannot handle are sent, and its stuck
// saga started, though another writer holds SQLite's one write lock past
// the busy timeout when they are: the flow waits for the lock instead of
// failing (which stopped handoff dev under load), and writes them once it
// is released.
func TestFlow_FailuresWaitForABusyDatabase(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	file := filepath.Join(dir, "demo.db")
	db, err := sqlite.Open(ctx, file+"?_pragma=busy_timeout(20)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlite.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	// The demo's tables, made as the flow makes them, so that making them
	// again is a no-op that needs no lock.
	for _, ddl := range []string{
		`CREATE TABLE IF NOT EXISTS demo_orders (order_id TEXT PRIMARY KEY, customer TEXT NOT NULL, total REAL NOT NULL, created_at TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS demo_shipments (order_id TEXT PRIMARY KEY, customer TEXT NOT NULL, message_id TEXT NOT NULL, created_at TEXT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS demo_stock (order_id TEXT PRIMARY KEY, status TEXT NOT NULL)`,
	} {
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			t.Fatal(err)
		}
	}
	regDB, err := sqlite.Open(ctx, filepath.Join(dir, "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer regDB.Close()
	if err := sqlite.Migrate(ctx, regDB); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.NewServer(sqlite.RegistryStore(regDB))
	if err != nil {
		t.Fatal(err)
	}
	regSrv := httptest.NewServer(reg)
	defer regSrv.Close()
	ns, err := natsserver.Start(filepath.Join(dir, "nats"))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := natsadapter.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	broker, err := natsadapter.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	dead, err := dlq.New(sqlite.DLQStore(db))
	if err != nil {
		t.Fatal(err)
	}

	// Another writer takes the lock and keeps it.
	other, err := sqlite.Open(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	holder, err := other.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()

	logs := &syncBuffer{}
	flow, err := orders.New(orders.Config{DB: db, NATS: nc, Broker: broker, DeadLetters: dead, RegistryURL: regSrv.URL,
		Interval: time.Hour, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- flow.Run(ctx) }()
	waitFor := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !strings.Contains(logs.String(), what); {
			select {
			case err := <-done:
				t.Fatalf("the flow stopped (%v) before it logged %q:\n%s", err, what, logs.String())
			case <-time.After(10 * time.Millisecond): // polling its log, with a deadline
			}
			if time.Now().After(deadline) {
				t.Fatalf("the flow did not log %q:\n%s", what, logs.String())
			}
		}
	}
	waitFor("the database is busy")
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	waitFor("sent three events the consumer cannot handle")
	waitFor("started an order saga whose refund fails until an operator retries it")
	var letters []*dlq.Letter
	for deadline := time.Now().Add(60 * time.Second); len(letters) < 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d dead letters, want the 3 sent:\n%s", len(letters), logs.String())
		}
		if letters, err = dead.List(ctx, dlq.Filter{Consumer: orders.Group}); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("the flow stopped with %v", err)
	}
}
