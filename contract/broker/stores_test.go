package broker_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/adapter/mysql"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/contract/broker"
	"github.com/handoffhq/handoff/internal/testenv"
)

// eachStore runs f on every store: memory, SQLite, PostgreSQL and
// MySQL/MariaDB (the last two skip, or fail under HANDOFF_TEST_REQUIRE=1,
// when their server is not there).
func eachStore(t *testing.T, f func(t *testing.T, newStore func(t *testing.T) broker.Store)) {
	ctx := context.Background()
	t.Run("memory", func(t *testing.T) {
		f(t, func(t *testing.T) broker.Store { return memory.NewContractStore() })
	})
	t.Run("sqlite", func(t *testing.T) {
		f(t, reuse(t, func(t *testing.T) (*sql.DB, broker.Store) {
			db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "broker.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if err := sqlite.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			return db, sqlite.ContractStore(db)
		}))
	})
	t.Run("postgres", func(t *testing.T) {
		f(t, reuse(t, func(t *testing.T) (*sql.DB, broker.Store) {
			db, err := postgres.Open(ctx, testenv.PostgresURL(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if err := postgres.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			return db, postgres.ContractStore(db)
		}))
	})
	t.Run("mysql", func(t *testing.T) {
		f(t, reuse(t, func(t *testing.T) (*sql.DB, broker.Store) {
			db, err := mysql.Open(ctx, testenv.MySQLDSN(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if err := mysql.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			return db, mysql.ContractStore(db)
		}))
	})
}

// reuse opens one database for the store's subtests (creating a schema is
// slow) and empties the broker's tables before each.
func reuse(parent *testing.T, open func(t *testing.T) (*sql.DB, broker.Store)) func(t *testing.T) broker.Store {
	db, store := open(parent)
	return func(t *testing.T) broker.Store {
		for _, table := range []string{"pacticipants", "versions", "branches", "tags", "contents", "publications", "verifications", "environments", "deployments"} {
			if _, err := db.Exec("DELETE FROM handoff_contract_" + table); err != nil {
				t.Fatal(err)
			}
		}
		return store
	}
}
