package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/inbox"
)

// MaxKeyLen is the longest consumer name or message id the tables hold.
const MaxKeyLen = 255

// InboxStore implements inbox.Store[Tx] over a TxDB of Tx.
type InboxStore[Tx any] struct {
	db  TxDB[Tx]
	d   *Dialect
	now func() time.Time
}

var (
	_ inbox.Store[*sql.Tx] = (*InboxStore[*sql.Tx])(nil)
)

// NewInboxStore returns the inbox store of db in dialect d.
func NewInboxStore[Tx any](db TxDB[Tx], d *Dialect) *InboxStore[Tx] {
	return &InboxStore[Tx]{db: db, d: d, now: time.Now}
}

func checkKey(what, v string) error { return checkLen(what, v, MaxKeyLen) }

func checkLen(what, v string, max int) error {
	if v == "" {
		return fmt.Errorf("sqlstore: %s must not be empty", what)
	}
	if len(v) > max {
		return fmt.Errorf("sqlstore: %s is %d bytes, over the limit of %d", what, len(v), max)
	}
	return nil
}

// InTx implements inbox.Store.
func (s *InboxStore[Tx]) InTx(ctx context.Context, opts *sql.TxOptions, fn func(tx Tx) error) error {
	tx, err := s.db.Begin(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	// Rolls back on every path but a commit, including a panic in fn, so
	// the connection goes back to the pool; after a commit it is a no-op.
	defer func() { _ = s.db.Rollback(context.WithoutCancel(ctx), tx) }()
	if err := fn(tx); err != nil {
		return err
	}
	if err := s.db.Commit(ctx, tx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

const savepoint = "handoff_inbox_msg"

// Savepoint implements inbox.Store.
func (s *InboxStore[Tx]) Savepoint(ctx context.Context, tx Tx, fn func() error) error {
	q := s.db.In(tx)
	if _, err := q.Exec(ctx, "SAVEPOINT "+savepoint); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	if ferr := fn(); ferr != nil {
		if _, err := q.Exec(ctx, "ROLLBACK TO SAVEPOINT "+savepoint); err != nil {
			return fmt.Errorf("rollback to savepoint: %w", err)
		}
		if _, err := q.Exec(ctx, "RELEASE SAVEPOINT "+savepoint); err != nil {
			return fmt.Errorf("release savepoint: %w", err)
		}
		return ferr
	}
	if _, err := q.Exec(ctx, "RELEASE SAVEPOINT "+savepoint); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

// Mark implements inbox.Store. The insert ignores a duplicate key: when
// another transaction holds an uncommitted mark with the same key, the
// database makes this insert wait for it, and then either skips (it
// committed) or inserts (it rolled back). Several ids on PostgreSQL and
// SQLite are one multi-row insert returning the ids it inserted; on MySQL
// they are marked one at a time (INSERT IGNORE cannot say which rows it
// skipped). PostgreSQL's multi-row insert takes the ids as one array.
func (s *InboxStore[Tx]) Mark(ctx context.Context, tx Tx, consumer string, ids ...string) ([]bool, error) {
	// A key that cannot be stored never will be: the error is permanent.
	if err := checkKey("consumer", consumer); err != nil {
		return nil, handoff.Permanent(err)
	}
	for _, id := range ids {
		if err := checkKey("message id", id); err != nil {
			return nil, handoff.Permanent(err)
		}
	}
	q := s.db.In(tx)
	now := s.d.timeArg(s.now())
	fresh := make([]bool, len(ids))
	if len(ids) == 1 || s.d.Name == "mysql" {
		seen := make(map[string]bool, len(ids))
		for i, id := range ids {
			if seen[id] {
				continue
			}
			seen[id] = true
			n, err := q.Exec(ctx, s.d.q(s.d.markSQL), consumer, id, now)
			if err != nil {
				return nil, err
			}
			fresh[i] = n == 1
		}
		return fresh, nil
	}
	var stmt string
	var args []any
	if s.d.markManySQL != "" {
		stmt, args = s.d.markManySQL, []any{consumer, now, ids}
	} else {
		args = make([]any, 0, 3*len(ids))
		for _, id := range ids {
			args = append(args, consumer, id, now)
		}
		stmt = `INSERT INTO handoff_inbox (consumer, message_id, received_at) VALUES ` + placeholders(len(ids), 3) +
			` ON CONFLICT (consumer, message_id) DO NOTHING RETURNING message_id`
	}
	rows, err := q.Query(ctx, s.d.q(stmt), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	inserted := make(map[string]bool, len(ids))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		inserted[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, id := range ids {
		// A duplicate id within one call counts once.
		if inserted[id] {
			fresh[i] = true
			delete(inserted, id)
		}
	}
	return fresh, nil
}

// Purge implements inbox.Store.
func (s *InboxStore[Tx]) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, errors.New("sqlstore: inbox purge: limit must be positive")
	}
	var n int64
	err := inTx(ctx, s.db, s.d, func(tx Querier) error {
		var err error
		n, err = tx.Exec(ctx, s.d.q(s.d.purgeInbox), s.d.timeArg(before), limit)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlstore: inbox purge: %w", err)
	}
	return int(n), nil
}

// IsConflict implements inbox.Store.
func (s *InboxStore[Tx]) IsConflict(err error) bool { return s.d.conflict(err) }

// maxTxAttempts bounds how often the stores run one of their own
// transactions when it hits a conflict.
const maxTxAttempts = 10

// inTx runs fn in a transaction, again on a conflict.
func inTx(ctx context.Context, db DB, d *Dialect, fn func(tx Querier) error) error {
	var err error
	for attempt := 0; attempt < maxTxAttempts; attempt++ {
		err = db.InTx(ctx, d.TxOptions, fn)
		if err == nil || !d.conflict(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}
