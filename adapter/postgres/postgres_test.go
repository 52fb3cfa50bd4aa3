package postgres_test

import (
	"database/sql"
	"testing"

	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/handofftest"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/internal/sqlstore"
	"github.com/handoffhq/handoff/internal/testenv"
)

func adapter(t testing.TB) handofftest.SQL {
	t.Helper()
	ms, err := sqlstore.Migrations(sqlstore.Postgres())
	if err != nil {
		t.Fatal(err)
	}
	return handofftest.SQL{
		DSN:  func(t testing.TB) string { return testenv.PostgresURL(t) },
		Open: postgres.Open, Migrate: postgres.Migrate, DLQStore: postgres.DLQStore, InboxStore: postgres.InboxStore,
		Migrations: len(ms), LastVersion: ms[len(ms)-1].Version,
	}
}

func TestStores(t *testing.T) { handofftest.RunSQL(t, adapter(t)) }

func TestInboxStore_RepeatableRead(t *testing.T) {
	a := adapter(t)
	handofftest.RunInboxIsolation(t, func(t testing.TB) (*sql.DB, inbox.Store) {
		db := a.DB(t)
		return db, postgres.InboxStore(db)
	}, sql.LevelRepeatableRead)
}

func TestInboxStore_Serializable(t *testing.T) {
	a := adapter(t)
	handofftest.RunInboxIsolation(t, func(t testing.TB) (*sql.DB, inbox.Store) {
		db := a.DB(t)
		return db, postgres.InboxStore(db)
	}, sql.LevelSerializable)
}
func BenchmarkInbox(b *testing.B) { handofftest.BenchmarkInbox(b, adapter(b)) }
