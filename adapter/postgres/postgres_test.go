package postgres_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/alert/alertstate"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/handofftest"
	"github.com/handoffhq/handoff/idempotency"
	"github.com/handoffhq/handoff/idempotency/idempotencytest"
	"github.com/handoffhq/handoff/internal/sqlstore"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/topology/topologystore"
)

func adapter(t testing.TB) handofftest.SQL {
	t.Helper()
	ms, err := sqlstore.Migrations(sqlstore.Postgres())
	if err != nil {
		t.Fatal(err)
	}
	return handofftest.SQL{
		DSN:  func(t testing.TB) string { return testenv.PostgresURL(t) },
		Open: postgres.Open, Migrate: postgres.Migrate[*sql.DB], DLQStore: postgres.DLQStore[*sql.DB], InboxStore: postgres.InboxStore,
		Migrations: len(ms), LastVersion: ms[len(ms)-1].Version,
	}
}

func TestStores(t *testing.T) { handofftest.RunSQL(t, adapter(t)) }

func TestInboxStore_RepeatableRead(t *testing.T) {
	a := adapter(t)
	handofftest.RunInboxIsolation(t, func(t testing.TB) handofftest.InboxDB[*sql.Tx] {
		db := a.DB(t)
		return handofftest.SQLInbox(db, postgres.InboxStore(db))
	}, sql.LevelRepeatableRead)
}

func TestInboxStore_Serializable(t *testing.T) {
	a := adapter(t)
	handofftest.RunInboxIsolation(t, func(t testing.TB) handofftest.InboxDB[*sql.Tx] {
		db := a.DB(t)
		return handofftest.SQLInbox(db, postgres.InboxStore(db))
	}, sql.LevelSerializable)
}

// pool returns a pgx pool on a fresh schema, migrated through the pool
// itself: no database/sql anywhere.
func pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	p, err := pgxpool.New(ctx, testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if err := postgres.Migrate(ctx, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// pgxInbox is the inbox suite's view of a pgx pool.
func pgxInbox(p *pgxpool.Pool) handofftest.InboxDB[pgx.Tx] {
	return handofftest.InboxDB[pgx.Tx]{
		Store: postgres.PgxInboxStore(p),
		Exec: func(ctx context.Context, q string) error {
			_, err := p.Exec(ctx, q)
			return err
		},
		ExecTx: func(ctx context.Context, tx pgx.Tx, q string) error {
			_, err := tx.Exec(ctx, q)
			return err
		},
		Ints: func(ctx context.Context, q string) ([]int, error) {
			rows, err := p.Query(ctx, q)
			if err != nil {
				return nil, err
			}
			return pgx.CollectRows(rows, pgx.RowTo[int])
		},
	}
}

// The same suites over a pgx pool: handlers get a pgx.Tx.
func TestPgx_InboxStore(t *testing.T) {
	handofftest.RunInboxStore(t, func(t testing.TB) handofftest.InboxDB[pgx.Tx] { return pgxInbox(pool(t)) })
}

func TestPgx_InboxStore_Serializable(t *testing.T) {
	handofftest.RunInboxIsolation(t, func(t testing.TB) handofftest.InboxDB[pgx.Tx] { return pgxInbox(pool(t)) },
		sql.LevelSerializable)
}

func TestPgx_DLQStore(t *testing.T) {
	handofftest.RunDLQStore(t, func(t testing.TB) dlq.Store { return postgres.DLQStore(pool(t)) })
}

func TestPgx_MigrateAgainIsNoOp(t *testing.T) {
	p := pool(t)
	ctx := context.Background()
	if err := postgres.Migrate(ctx, p); err != nil {
		t.Fatal(err)
	}
	ms, _ := sqlstore.Migrations(sqlstore.Postgres())
	var n int
	if err := p.QueryRow(ctx, "SELECT COUNT(*) FROM handoff_schema_migrations").Scan(&n); err != nil || n != len(ms) {
		t.Fatalf("%d migrations recorded (%v), want %d", n, err, len(ms))
	}
}

func BenchmarkInbox(b *testing.B) { handofftest.BenchmarkInbox(b, adapter(b)) }

func TestIdempotencyStore(t *testing.T) {
	a := adapter(t)
	idempotencytest.Run(t, func(t testing.TB) idempotency.Store { return postgres.IdempotencyStore(a.DB(t)) })
}

func TestPgx_IdempotencyStore(t *testing.T) {
	idempotencytest.Run(t, func(t testing.TB) idempotency.Store { return postgres.IdempotencyStore(pool(t)) })
}

func TestTopologyStore(t *testing.T) {
	a := adapter(t)
	handofftest.RunTopologyStore(t, func(t testing.TB) topologystore.Store { return postgres.TopologyStore(a.DB(t)) })
}

func TestAlertState(t *testing.T) {
	a := adapter(t)
	handofftest.RunAlertState(t, func(t testing.TB) alertstate.Store { return postgres.AlertState(a.DB(t)) })
}
