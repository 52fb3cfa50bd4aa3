package mysql_test

import (
	"database/sql"
	"testing"

	"github.com/handoffhq/handoff/adapter/mysql"
	"github.com/handoffhq/handoff/alert/alertstate"
	"github.com/handoffhq/handoff/handofftest"
	"github.com/handoffhq/handoff/idempotency"
	"github.com/handoffhq/handoff/idempotency/idempotencytest"
	"github.com/handoffhq/handoff/internal/sqlstore"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/topology/topologystore"
)

func adapter(t testing.TB) handofftest.SQL {
	t.Helper()
	ms, err := sqlstore.Migrations(sqlstore.MySQL())
	if err != nil {
		t.Fatal(err)
	}
	return handofftest.SQL{
		DSN:  func(t testing.TB) string { return testenv.MySQLDSN(t) },
		Open: mysql.Open, Migrate: mysql.Migrate, DLQStore: mysql.DLQStore, InboxStore: mysql.InboxStore,
		Migrations: len(ms), LastVersion: ms[len(ms)-1].Version,
	}
}

func TestStores(t *testing.T) { handofftest.RunSQL(t, adapter(t)) }

func TestInboxStore_ReadCommitted(t *testing.T) {
	a := adapter(t)
	handofftest.RunInboxIsolation(t, func(t testing.TB) handofftest.InboxDB[*sql.Tx] {
		db := a.DB(t)
		return handofftest.SQLInbox(db, mysql.InboxStore(db))
	}, sql.LevelReadCommitted)
}

func TestInboxStore_Serializable(t *testing.T) {
	a := adapter(t)
	handofftest.RunInboxIsolation(t, func(t testing.TB) handofftest.InboxDB[*sql.Tx] {
		db := a.DB(t)
		return handofftest.SQLInbox(db, mysql.InboxStore(db))
	}, sql.LevelSerializable)
}
func BenchmarkInbox(b *testing.B) { handofftest.BenchmarkInbox(b, adapter(b)) }

func TestIdempotencyStore(t *testing.T) {
	a := adapter(t)
	idempotencytest.Run(t, func(t testing.TB) idempotency.Store { return mysql.IdempotencyStore(a.DB(t)) })
}

func TestTopologyStore(t *testing.T) {
	a := adapter(t)
	handofftest.RunTopologyStore(t, func(t testing.TB) topologystore.Store { return mysql.TopologyStore(a.DB(t)) })
}

func TestAlertState(t *testing.T) {
	a := adapter(t)
	handofftest.RunAlertState(t, func(t testing.TB) alertstate.Store { return mysql.AlertState(a.DB(t)) })
}
