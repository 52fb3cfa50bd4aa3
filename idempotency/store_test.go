package idempotency_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/idempotency"
	"github.com/handoffhq/handoff/idempotency/idempotencytest"
)

func TestMemoryStore(t *testing.T) {
	idempotencytest.Run(t, func(testing.TB) idempotency.Store { return new(idempotency.MemoryStore) })
}

// The SQL stores run the same suite in their adapters' tests
// (adapter/postgres, adapter/sqlite, adapter/mysql).

func sqliteStore(t testing.TB) idempotency.Store {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "idem.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := sqlite.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	return sqlite.IdempotencyStore(db)
}
