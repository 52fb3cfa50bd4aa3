package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/handoffhq/handoff/internal/sqlstore"
)

// DB is what the stores and Migrate are built on: a database/sql pool (with
// the pgx driver, see [Open]) or a pgx pool, used as it is.
type DB interface {
	*sql.DB | *pgxpool.Pool
}

// conn returns db as the stores' view of a database.
func conn[D DB](db D) sqlstore.DB {
	switch h := any(db).(type) {
	case *sql.DB:
		return sqlstore.SQL(h)
	case *pgxpool.Pool:
		return pgxDB{h}
	}
	panic("unreachable")
}

// pgxDB is a pgx pool as a sqlstore.TxDB of pgx.Tx.
type pgxDB struct{ pool *pgxpool.Pool }

var _ sqlstore.TxDB[pgx.Tx] = pgxDB{}

func (p pgxDB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := p.pool.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

func (p pgxDB) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return p.pool.Query(ctx, query, args...)
}

func (p pgxDB) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return p.pool.QueryRow(ctx, query, args...)
}

func (p pgxDB) InTx(ctx context.Context, opts *sql.TxOptions, fn func(q sqlstore.Querier) error) error {
	tx, err := p.Begin(ctx, opts)
	if err != nil {
		return err
	}
	defer func() { _ = p.Rollback(context.WithoutCancel(ctx), tx) }() // a no-op after the commit
	if err := fn(pgxQuerier{tx}); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (p pgxDB) Begin(ctx context.Context, opts *sql.TxOptions) (pgx.Tx, error) {
	o, err := txOptions(opts)
	if err != nil {
		return nil, err
	}
	return p.pool.BeginTx(ctx, o)
}

func (p pgxDB) Commit(ctx context.Context, tx pgx.Tx) error { return tx.Commit(ctx) }

func (p pgxDB) Rollback(ctx context.Context, tx pgx.Tx) error {
	if err := tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return err
	}
	return nil
}

func (p pgxDB) In(tx pgx.Tx) sqlstore.Querier { return pgxQuerier{tx} }

// txOptions maps database/sql's transaction options to pgx's.
func txOptions(o *sql.TxOptions) (pgx.TxOptions, error) {
	var out pgx.TxOptions
	if o == nil {
		return out, nil
	}
	switch o.Isolation {
	case sql.LevelDefault:
	case sql.LevelReadUncommitted:
		out.IsoLevel = pgx.ReadUncommitted
	case sql.LevelReadCommitted:
		out.IsoLevel = pgx.ReadCommitted
	case sql.LevelRepeatableRead:
		out.IsoLevel = pgx.RepeatableRead
	case sql.LevelSerializable:
		out.IsoLevel = pgx.Serializable
	default:
		return out, fmt.Errorf("postgres: isolation level %v: PostgreSQL has no such level", o.Isolation)
	}
	if o.ReadOnly {
		out.AccessMode = pgx.ReadOnly
	}
	return out, nil
}

// pgxQuerier runs statements in a pgx transaction.
type pgxQuerier struct{ tx pgx.Tx }

func (q pgxQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.tx.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

func (q pgxQuerier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return q.tx.Query(ctx, query, args...)
}

func (q pgxQuerier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return q.tx.QueryRow(ctx, query, args...)
}
