package sqlite_test

import (
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/alert/alertstate"
	"github.com/handoffhq/handoff/handofftest"
	"github.com/handoffhq/handoff/idempotency"
	"github.com/handoffhq/handoff/idempotency/idempotencytest"
	"github.com/handoffhq/handoff/internal/sqlstore"
	"github.com/handoffhq/handoff/topology/topologystore"
	"path/filepath"
	"testing"
)

func adapter(t testing.TB) handofftest.SQL {
	t.Helper()
	ms, err := sqlstore.Migrations(sqlstore.SQLite())
	if err != nil {
		t.Fatal(err)
	}
	return handofftest.SQL{
		DSN:  func(t testing.TB) string { return filepath.Join(t.TempDir(), "handoff.db") },
		Open: sqlite.Open, Migrate: sqlite.Migrate, DLQStore: sqlite.DLQStore, InboxStore: sqlite.InboxStore,
		Migrations: len(ms), LastVersion: ms[len(ms)-1].Version,
	}
}

func TestStores(t *testing.T) { handofftest.RunSQL(t, adapter(t)) }

func BenchmarkInbox(b *testing.B) { handofftest.BenchmarkInbox(b, adapter(b)) }

func TestIdempotencyStore(t *testing.T) {
	a := adapter(t)
	idempotencytest.Run(t, func(t testing.TB) idempotency.Store { return sqlite.IdempotencyStore(a.DB(t)) })
}

func TestTopologyStore(t *testing.T) {
	a := adapter(t)
	handofftest.RunTopologyStore(t, func(t testing.TB) topologystore.Store { return sqlite.TopologyStore(a.DB(t)) })
}

func TestAlertState(t *testing.T) {
	a := adapter(t)
	handofftest.RunAlertState(t, func(t testing.TB) alertstate.Store { return sqlite.AlertState(a.DB(t)) })
}
