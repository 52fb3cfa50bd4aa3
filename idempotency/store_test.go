package idempotency_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/handoffhq/handoff/idempotency"
	"github.com/handoffhq/handoff/idempotency/idempotencytest"
	"github.com/handoffhq/handoff/internal/testenv"
	_ "modernc.org/sqlite"
)

func TestMemoryStore(t *testing.T) {
	idempotencytest.Run(t, func(testing.TB) idempotency.Store { return new(idempotency.MemoryStore) })
}

func TestSQLStore_SQLite(t *testing.T) {
	idempotencytest.Run(t, func(t testing.TB) idempotency.Store {
		t.Helper()
		path := filepath.Join(t.TempDir(), "idem.db")
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return migrated(t, db, idempotency.SQLite)
	})
}

func TestSQLStore_PostgreSQL(t *testing.T) {
	idempotencytest.Run(t, func(t testing.TB) idempotency.Store {
		t.Helper()
		return migrated(t, testenv.Postgres(t), idempotency.PostgreSQL)
	})
}

func migrated(t testing.TB, db *sql.DB, d idempotency.Dialect) *idempotency.SQLStore {
	t.Helper()
	s, err := idempotency.NewSQLStore(db, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}
