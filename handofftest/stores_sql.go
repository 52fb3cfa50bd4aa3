package handofftest

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
)

// SQL describes one SQL adapter for RunSQL and BenchmarkInbox.
type SQL struct {
	// DSN returns the address of a fresh, empty database.
	DSN func(t testing.TB) string
	// Open opens dsn (a new pool each call, as a separate process would).
	Open       func(ctx context.Context, dsn string) (*sql.DB, error)
	Migrate    func(ctx context.Context, db *sql.DB) error
	DLQStore   func(db *sql.DB) dlq.Store
	InboxStore func(db *sql.DB) inbox.Store[*sql.Tx]
	// Migrations is how many migrations the adapter has, and LastVersion
	// the highest version among them.
	Migrations, LastVersion int
}

func (s SQL) open(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := s.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// DB opens a fresh, migrated database.
func (s SQL) DB(t testing.TB) *sql.DB {
	t.Helper()
	db := s.open(t, s.DSN(t))
	if err := s.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db
}

// RunSQL runs the DLQ and inbox store suites on the adapter, and checks its
// migrations: applying them again is a no-op that keeps the data, and
// concurrent Migrate calls from separate pools all succeed.
func RunSQL(t *testing.T, s SQL) {
	t.Run("DLQStore", func(t *testing.T) {
		RunDLQStore(t, func(t testing.TB) dlq.Store { return s.DLQStore(s.DB(t)) })
	})
	t.Run("InboxStore", func(t *testing.T) {
		RunInboxStore(t, func(t testing.TB) InboxDB[*sql.Tx] {
			db := s.DB(t)
			return SQLInbox(db, s.InboxStore(db))
		})
	})
	t.Run("MigrateAgainIsNoOp", func(t *testing.T) {
		db := s.DB(t)
		ctx := context.Background()
		st := s.DLQStore(db)
		l := &dlq.Letter{ID: handoff.NewID(), Consumer: "c", Topic: "t", Class: dlq.ClassHandler,
			Message: handoff.NewMessage("/test", "com.example.test", []byte(`{}`)), FirstFailure: time.Now(), LastFailure: time.Now()}
		if _, err := st.Add(ctx, l); err != nil {
			t.Fatal(err)
		}
		if err := s.Migrate(ctx, db); err != nil {
			t.Fatalf("second Migrate: %v", err)
		}
		s.checkVersions(t, db)
		ls, err := st.List(ctx, dlq.Filter{})
		if err != nil || len(ls) != 1 {
			t.Errorf("after migrating again: %d letters, %v; want the 1 stored before", len(ls), err)
		}
	})
	t.Run("MigrateConcurrentCallsAllSucceed", func(t *testing.T) {
		d := s.DSN(t)
		const n = 4
		dbs := make([]*sql.DB, n)
		for i := range dbs {
			dbs[i] = s.open(t, d)
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		start := make(chan struct{})
		for i, db := range dbs {
			wg.Go(func() {
				<-start
				errs[i] = s.Migrate(context.Background(), db)
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Migrate #%d: %v", i, err)
			}
		}
		s.checkVersions(t, dbs[0])
	})
}

func (s SQL) checkVersions(t testing.TB, db *sql.DB) {
	t.Helper()
	var n, max int
	if err := db.QueryRow("SELECT COUNT(*), COALESCE(MAX(version), 0) FROM handoff_schema_migrations").Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != s.Migrations || max != s.LastVersion {
		t.Errorf("handoff_schema_migrations has %d rows up to version %d, want %d up to %d", n, max, s.Migrations, s.LastVersion)
	}
}

// BenchmarkInbox measures one message through an inbox handler (a mark and
// one counter update in one transaction) and through its HandleBatch, 50 at
// a time.
func BenchmarkInbox(b *testing.B, s SQL) {
	db := s.DB(b)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE TABLE bench_counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO bench_counter (id, n) VALUES (1, 0)"); err != nil {
		b.Fatal(err)
	}
	in, err := inbox.New(s.InboxStore(db), "bench")
	if err != nil {
		b.Fatal(err)
	}
	h := func(ctx context.Context, tx *sql.Tx, msg *handoff.Message) error {
		_, err := tx.ExecContext(ctx, "UPDATE bench_counter SET n = n + 1 WHERE id = 1")
		return err
	}
	handler := in.Handler(h)
	b.Run("Handler", func(b *testing.B) {
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
			for _, err := range handler.HandleBatch(ctx, msgs) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/msg")
	})
}
