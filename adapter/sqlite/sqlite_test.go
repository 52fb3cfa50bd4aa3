package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/handofftest"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/internal/sqlstore"
)

// dsn returns the address of a fresh, empty database.
func dsn(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "handoff.db")
}

func open(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newDB(t testing.TB) *sql.DB {
	t.Helper()
	db := open(t, dsn(t))
	if err := sqlite.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestDLQStore(t *testing.T) {
	handofftest.RunDLQStore(t, func(t testing.TB) dlq.Store { return sqlite.DLQStore(newDB(t)) })
}

func TestInboxStore(t *testing.T) {
	handofftest.RunInboxStore(t, func(t testing.TB) (*sql.DB, inbox.Store) {
		db := newDB(t)
		return db, sqlite.InboxStore(db)
	})
}

func checkVersions(t testing.TB, db *sql.DB) {
	t.Helper()
	ms, err := sqlstore.Migrations(sqlstore.SQLite())
	if err != nil {
		t.Fatal(err)
	}
	var n, max int
	if err := db.QueryRow("SELECT COUNT(*), COALESCE(MAX(version), 0) FROM handoff_schema_migrations").Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || max != ms[len(ms)-1].Version {
		t.Errorf("handoff_schema_migrations has %d rows up to version %d, want %d up to %d", n, max, len(ms), ms[len(ms)-1].Version)
	}
}

func TestMigrate_AgainIsNoOp(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	s := sqlite.DLQStore(db)
	l := &dlq.Letter{ID: handoff.NewID(), Consumer: "c", Topic: "t", Class: dlq.ClassHandler,
		Message: handoff.NewMessage("/test", "com.example.test", []byte(`{}`)), FirstFailure: time.Now(), LastFailure: time.Now()}
	if _, err := s.Add(ctx, l); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.Migrate(ctx, db); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	checkVersions(t, db)
	ls, err := s.List(ctx, dlq.Filter{})
	if err != nil || len(ls) != 1 {
		t.Errorf("after migrating again: %d letters, %v; want the 1 stored before", len(ls), err)
	}
}

func TestMigrate_ConcurrentCallsAllSucceed(t *testing.T) {
	d := dsn(t)
	const n = 4
	dbs := make([]*sql.DB, n)
	for i := range dbs {
		dbs[i] = open(t, d) // separate pools, as separate processes would have
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i, db := range dbs {
		wg.Go(func() {
			<-start
			errs[i] = sqlite.Migrate(context.Background(), db)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate #%d: %v", i, err)
		}
	}
	checkVersions(t, dbs[0])
}

// BenchmarkInbox measures one message through Inbox.Handler (a mark and one
// counter update in one transaction) and through HandleBatch, 50 at a time.
func BenchmarkInbox(b *testing.B) {
	db := newDB(b)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE TABLE bench_counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO bench_counter (id, n) VALUES (1, 0)"); err != nil {
		b.Fatal(err)
	}
	in, err := inbox.New(db, sqlite.InboxStore(db), "bench")
	if err != nil {
		b.Fatal(err)
	}
	h := func(ctx context.Context, tx *sql.Tx, msg *handoff.Message) error {
		_, err := tx.ExecContext(ctx, "UPDATE bench_counter SET n = n + 1 WHERE id = 1")
		return err
	}
	b.Run("Handler", func(b *testing.B) {
		handler := in.Handler(h)
		for b.Loop() {
			if err := handler.Handle(ctx, handoff.NewMessage("/bench", "t", nil)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("HandleBatch50", func(b *testing.B) {
		msgs := make([]*handoff.Message, 50)
		for b.Loop() {
			for i := range msgs {
				msgs[i] = handoff.NewMessage("/bench", "t", nil)
			}
			for _, err := range in.HandleBatch(ctx, msgs, h) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/msg")
	})
}
