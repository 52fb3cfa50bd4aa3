// Package mysql holds handoff's MySQL and MariaDB stores: the inbox and the
// dead-letter store, over database/sql with go-sql-driver/mysql. The SQL is
// shared with adapter/postgres and adapter/sqlite (internal/sqlstore).
// MySQL 8 or MariaDB 10.6 and later.
//
//	db, err := mysql.Open(ctx, "app:secret@tcp(db:3306)/app")
//	err = mysql.Migrate(ctx, db)
//	in, err := inbox.New(mysql.InboxStore(db), "billing",
//		inbox.WithTxOptions(&sql.TxOptions{Isolation: sql.LevelReadCommitted}))
//
// Open sets parseTime. The stores' own transactions run under READ
// COMMITTED, so their range deletes take no gap locks; READ COMMITTED is
// also the better choice for inbox handlers (pass it with
// inbox.WithTxOptions) unless a handler needs REPEATABLE READ. Keys are
// stored as VARBINARY and compare byte for byte. Migrations hold GET_LOCK
// named after the database; MySQL DDL commits implicitly, so migration files
// use CREATE ... IF NOT EXISTS and can be re-run. Deadlocks (1213) and lock
// wait timeouts (1205) are reported as conflicts, so the inbox runs the
// transaction again.
package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/internal/sqlstore"
)

// Open opens a pool on a go-sql-driver DSN (user:pass@tcp(host:3306)/db),
// with parseTime on, and pings it.
func Open(ctx context.Context, dsn string) (*sql.DB, error) {
	cfg, err := driver.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysql: parse dsn: %w", err)
	}
	cfg.ParseTime = true
	conn, err := driver.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql: open: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(30 * time.Minute) // below the server's wait_timeout
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("mysql: ping: %w", err)
	}
	return db, nil
}

func dialect() *sqlstore.Dialect {
	d := sqlstore.MySQL()
	d.IsConflict = IsConflict
	return d
}

// Migrate creates or upgrades handoff's tables.
func Migrate(ctx context.Context, db *sql.DB) error {
	if err := sqlstore.Migrate(ctx, db, dialect()); err != nil {
		return fmt.Errorf("mysql: %w", err)
	}
	return nil
}

// InboxStore returns the inbox store of db, whose handlers get a *sql.Tx.
func InboxStore(db *sql.DB) inbox.Store[*sql.Tx] {
	return sqlstore.NewInboxStore(sqlstore.SQL(db), dialect())
}

// DLQStore returns the dead-letter store of db.
func DLQStore(db *sql.DB) dlq.Store { return sqlstore.NewDLQStore(sqlstore.SQL(db), dialect()) }

// IsConflict reports whether err is a deadlock (1213) or a lock wait
// timeout (1205): running the transaction again may succeed.
func IsConflict(err error) bool {
	var me *driver.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}
