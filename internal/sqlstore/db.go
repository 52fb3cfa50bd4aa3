package sqlstore

import (
	"context"
	"database/sql"
)

// Querier runs statements: on a database, or in a transaction. The stores
// are written against it once, so that the same SQL runs over database/sql
// ([SQL]) and over a pgx pool (adapter/postgres), without the driver's
// types showing here.
type Querier interface {
	// Exec runs a statement and returns the number of rows it affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// QueryRow returns a row whose Scan reports sql.ErrNoRows (which
	// pgx.ErrNoRows matches) when there is none.
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Rows is the result of Query.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Row is the result of QueryRow.
type Row interface {
	Scan(dest ...any) error
}

// DB is a database the stores run their own statements and transactions on.
type DB interface {
	Querier
	// InTx runs fn in a new transaction with opts (nil: the database's
	// defaults): it commits when fn returns nil and rolls back otherwise,
	// also when fn panics.
	InTx(ctx context.Context, opts *sql.TxOptions, fn func(q Querier) error) error
}

// TxDB is a DB whose transactions other code works in too, typed Tx
// (*sql.Tx, pgx.Tx): the inbox hands them to its handlers.
type TxDB[Tx any] interface {
	DB
	Begin(ctx context.Context, opts *sql.TxOptions) (Tx, error)
	Commit(ctx context.Context, tx Tx) error
	// Rollback ends tx; after a commit it does nothing.
	Rollback(ctx context.Context, tx Tx) error
	// In returns the Querier that runs statements in tx.
	In(tx Tx) Querier
}

// SQL returns db as a TxDB over database/sql.
func SQL(db *sql.DB) *SQLDB { return &SQLDB{db: db} }

// SQLDB is a *sql.DB as a [TxDB] of *sql.Tx.
type SQLDB struct{ db *sql.DB }

var _ TxDB[*sql.Tx] = (*SQLDB)(nil)

// DB returns the database.
func (s *SQLDB) DB() *sql.DB { return s.db }

func (s *SQLDB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return execSQL(ctx, s.db, query, args)
}

func (s *SQLDB) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return querySQL(ctx, s.db, query, args)
}

func (s *SQLDB) QueryRow(ctx context.Context, query string, args ...any) Row {
	return s.db.QueryRowContext(ctx, query, args...)
}

func (s *SQLDB) InTx(ctx context.Context, opts *sql.TxOptions, fn func(q Querier) error) error {
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // a no-op after the commit, and on a panic
	if err := fn(sqlQuerier{tx}); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *SQLDB) Begin(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	return s.db.BeginTx(ctx, opts)
}

func (s *SQLDB) Commit(_ context.Context, tx *sql.Tx) error { return tx.Commit() }

func (s *SQLDB) Rollback(_ context.Context, tx *sql.Tx) error {
	if err := tx.Rollback(); err != nil && err != sql.ErrTxDone {
		return err
	}
	return nil
}

func (s *SQLDB) In(tx *sql.Tx) Querier { return sqlQuerier{tx} }

// sqlQueryer is what *sql.DB, *sql.Tx and *sql.Conn share.
type sqlQueryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// sqlQuerier is a *sql.Tx or *sql.Conn as a Querier.
type sqlQuerier struct{ q sqlQueryer }

func (t sqlQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return execSQL(ctx, t.q, query, args)
}

func (t sqlQuerier) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return querySQL(ctx, t.q, query, args)
}

func (t sqlQuerier) QueryRow(ctx context.Context, query string, args ...any) Row {
	return t.q.QueryRowContext(ctx, query, args...)
}

func execSQL(ctx context.Context, q sqlQueryer, query string, args []any) (int64, error) {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func querySQL(ctx context.Context, q sqlQueryer, query string, args []any) (Rows, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }
