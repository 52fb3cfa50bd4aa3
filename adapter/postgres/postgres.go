// Package postgres holds handoff's PostgreSQL stores, all of them: the
// outbox (OutboxStore) and the relay's view of it (RelayStore), the inbox
// (InboxStore, PgxInboxStore), dead letters (DLQStore), Idempotency-Key
// records (IdempotencyStore), the schema registry's store (RegistryStore),
// the migrations of their tables (Migrate), LISTEN/NOTIFY wake-ups for the
// relay (Wakeups), and Tx, which lets outbox.Writer.Add write in a pgx
// transaction. The SQL is shared with adapter/sqlite and adapter/mysql
// (internal/sqlstore).
//
// The stores take a database/sql pool opened with the pgx driver ([Open]),
// or a pgx pool as it is (*pgxpool.Pool: no database/sql on the way; inbox
// handlers then get a pgx.Tx). The package examples show both:
//
//	db, err := postgres.Open(ctx, "postgres://app@db/app")
//	err = postgres.Migrate(ctx, db) // idempotent; safe from several processes
//	w, err := outbox.New(postgres.OutboxStore(db))
//	in, err := inbox.New(postgres.InboxStore(db), "billing")
//	q, err := dlq.New(postgres.DLQStore(db))
//
// Importing it links pgx and the stores' own packages, not the schema
// engine (deps_test.go holds that).
//
// Tables are named handoff_*, in the connection's search_path schema.
// Migrate applies the numbered migrations in one transaction under a
// transaction-scoped advisory lock.
//
// WAL mode (WithWAL, WALRelay, SetupWAL) replaces the relay's table polling
// with a logical replication slot: see WALRelay for its guarantees, the
// slot's lag and retained WAL, max_slot_wal_keep_size and a lost slot. Serialization failures, deadlocks and
// lock timeouts (SQLSTATE 40001, 40P01, 55P03) are reported as conflicts,
// so the inbox runs the transaction again.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/internal/sqlstore"
)

// Open opens a pool on dsn (a postgres:// URL or key=value string) with the
// pgx driver and pings it.
func Open(ctx context.Context, dsn string) (*sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: ping: %w", err)
	}
	return db, nil
}

func dialect() *sqlstore.Dialect {
	d := sqlstore.Postgres()
	d.IsConflict = IsConflict
	return d
}

// Migrate creates or upgrades handoff's tables in db (a *sql.DB or a
// *pgxpool.Pool).
func Migrate[D DB](ctx context.Context, db D) error {
	if err := sqlstore.MigrateDB(ctx, conn(db), dialect()); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// InboxStore returns the inbox store of db, whose handlers get a *sql.Tx.
func InboxStore(db *sql.DB) inbox.Store[*sql.Tx] {
	return sqlstore.NewInboxStore(sqlstore.SQL(db), dialect())
}

// PgxInboxStore returns the inbox store of a pgx pool, whose handlers get a
// pgx.Tx.
func PgxInboxStore(pool *pgxpool.Pool) inbox.Store[pgx.Tx] {
	return sqlstore.NewInboxStore[pgx.Tx](pgxDB{pool}, dialect())
}

// DLQStore returns the dead-letter store of db (a *sql.DB or a *pgxpool.Pool).
func DLQStore[D DB](db D) dlq.Store { return sqlstore.NewDLQStore(conn(db), dialect()) }

// IsConflict reports whether err is a serialization failure (40001), a
// deadlock (40P01) or a lock that was not available (55P03): running the
// transaction again may succeed.
func IsConflict(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "40001", "40P01", "55P03":
		return true
	}
	return false
}
