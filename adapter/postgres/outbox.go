package postgres

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/handoffhq/handoff/internal/backoff"
	"github.com/handoffhq/handoff/internal/sqlstore"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/relay"
)

// OutboxStore returns the outbox store of db (a *sql.DB or a
// *pgxpool.Pool) for outbox.New. Writer.Add takes the caller's *sql.Tx, or
// a pgx transaction through [Tx]. Each write also runs NOTIFY
// handoff_outbox, delivered at commit, which Wakeups turns into an
// immediate relay poll. That is table mode, read by relay.New over
// [RelayStore]; with [WithWAL] the store writes for a [WALRelay] instead.
func OutboxStore[D DB](db D, opts ...StoreOption) outbox.Store {
	var o storeOptions
	for _, f := range opts {
		f(&o)
	}
	inner := sqlstore.NewOutboxStore(conn(db), dialect(), true)
	if o.wal == WALMessages || o.wal == WALRows {
		return &walStore{form: o.wal, inner: inner, prefix: WALPrefix}
	}
	return inner
}

// RelayStore returns the relay's view of db's outbox (a *sql.DB or a
// *pgxpool.Pool) for relay.New.
func RelayStore[D DB](db D) relay.Store { return sqlstore.NewOutboxStore(conn(db), dialect(), true) }

// Tx adapts a pgx transaction to outbox.Execer, so outbox.Writer.Add can
// write in a transaction begun with pgx or pgxpool.
func Tx(tx pgx.Tx) outbox.Execer { return pgxTx{tx} }

type pgxTx struct{ tx pgx.Tx }

func (t pgxTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	tag, err := t.tx.Exec(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return result{tag}, nil
}

type result struct{ tag pgconn.CommandTag }

func (r result) LastInsertId() (int64, error) {
	return 0, errors.New("postgres: LastInsertId is not supported")
}
func (r result) RowsAffected() (int64, error) { return r.tag.RowsAffected(), nil }

// Wakeups listens on the outbox's notification channel with a connection of
// its own and signals the returned channel on every notification, and once
// after every (re)connection, since notifications sent while the connection
// was down are lost. It reconnects with backoff until ctx is done, then
// closes the channel. Pass it to relay.WithWakeups; keep the relay's slow
// poll as the safety net: a notification is a hint, not a queue.
func Wakeups(ctx context.Context, dsn string, log *slog.Logger) <-chan struct{} {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ch := make(chan struct{}, 1)
	signal := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	go func() {
		defer close(ch)
		b := backoff.Exponential{Initial: 100 * time.Millisecond, Max: 10 * time.Second}
		for failures := 0; ctx.Err() == nil; {
			err := listen(ctx, dsn, signal)
			if ctx.Err() != nil {
				return
			}
			failures++
			log.Warn("postgres: outbox listener lost its connection; reconnecting", "err", err, "attempt", failures)
			t := time.NewTimer(b.Delay(failures))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
	return ch
}

func listen(ctx context.Context, dsn string, signal func()) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+sqlstore.NotifyChannel); err != nil {
		return err
	}
	signal() // poll once after (re)connecting: what was sent meanwhile is lost
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		signal()
	}
}
