// Package postgres holds handoff's PostgreSQL stores: the inbox and the
// dead-letter store, over database/sql with the pgx driver. The SQL itself
// is shared with adapter/sqlite and adapter/mysql (internal/sqlstore).
//
//	db, err := postgres.Open(ctx, "postgres://app@db/app")
//	err = postgres.Migrate(ctx, db)  // idempotent; safe from several processes
//	in, err := inbox.New(db, postgres.InboxStore(db), "billing")
//	q, err := dlq.New(postgres.DLQStore(db))
//
// Tables are named handoff_*, in the connection's search_path schema.
// Migrate applies the numbered migrations in one transaction under a
// transaction-scoped advisory lock. Serialization failures and deadlocks
// (SQLSTATE 40001, 40P01) are reported as conflicts, so the inbox runs the
// transaction again.
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
