// Package sqlite holds handoff's SQLite stores: the inbox and the
// dead-letter store, over database/sql with the pure-Go modernc.org/sqlite
// driver (driver name "sqlite"). It is the embedded default: one file, no
// server. The SQL is shared with adapter/postgres and adapter/mysql
// (internal/sqlstore).
//
//	db, err := sqlite.Open(ctx, filepath.Join(dir, "handoff.db"))
//	err = sqlite.Migrate(ctx, db)
//	in, err := inbox.New(sqlite.InboxStore(db), "billing")
//
// # One writer
//
// SQLite lets one transaction write at a time. Open turns on WAL (readers
// do not block the writer), a busy_timeout of 5s (a writer waits for the
// lock instead of failing), foreign keys, and _txlock=immediate: every
// transaction takes the write lock when it begins, so a transaction that
// reads and then writes cannot fail on a lock upgrade. Keep transactions
// short (an inbox handler's transaction holds the lock while the handler
// runs), and inside a handler use its tx, not the *sql.DB: the pool is small
// (4 connections) to keep writers queueing in Go rather than polling the
// file lock. Times are stored as INTEGER microseconds since the epoch.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	msqlite "modernc.org/sqlite"

	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/internal/sqlstore"
)

// Open opens the database file at dsn (a path, or a "file:" URI) and pings
// it. Unless dsn sets them already, it adds busy_timeout(5000),
// journal_mode(WAL), foreign_keys(1), synchronous(NORMAL) and
// _txlock=immediate. ":memory:" gets a pool of one connection, since each
// connection would otherwise see its own empty database.
func Open(ctx context.Context, dsn string) (*sql.DB, error) {
	if dsn == "" {
		return nil, errors.New("sqlite: open: dsn must not be empty")
	}
	full := withParams(dsn)
	db, err := sql.Open("sqlite", full)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", dsn, err)
	}
	if strings.Contains(dsn, ":memory:") || strings.Contains(dsn, "mode=memory") {
		db.SetMaxOpenConns(1)
	} else {
		db.SetMaxOpenConns(4)
	}
	db.SetMaxIdleConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: ping %s: %w", dsn, err)
	}
	return db, nil
}

func withParams(dsn string) string {
	var add []string
	want := func(key, param string) {
		if !strings.Contains(dsn, key) {
			add = append(add, param)
		}
	}
	want("busy_timeout", "_pragma=busy_timeout(5000)")
	want("journal_mode", "_pragma=journal_mode(WAL)")
	want("foreign_keys", "_pragma=foreign_keys(1)")
	want("synchronous", "_pragma=synchronous(NORMAL)")
	want("_txlock", "_txlock=immediate")
	if len(add) == 0 {
		return dsn
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + strings.Join(add, "&")
}

func dialect() *sqlstore.Dialect {
	d := sqlstore.SQLite()
	d.IsConflict = IsConflict
	return d
}

// Migrate creates or upgrades handoff's tables.
func Migrate(ctx context.Context, db *sql.DB) error {
	if err := sqlstore.Migrate(ctx, db, dialect()); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}

// InboxStore returns the inbox store of db, whose handlers get a *sql.Tx.
func InboxStore(db *sql.DB) inbox.Store[*sql.Tx] {
	return sqlstore.NewInboxStore(sqlstore.SQL(db), dialect())
}

// DLQStore returns the dead-letter store of db.
func DLQStore(db *sql.DB) dlq.Store { return sqlstore.NewDLQStore(sqlstore.SQL(db), dialect()) }

// IsConflict reports whether err is SQLITE_BUSY or SQLITE_LOCKED (with any
// extended code): the write lock was not had in time, and running the
// transaction again may succeed.
func IsConflict(err error) bool {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
		return true
	}
	return false
}
