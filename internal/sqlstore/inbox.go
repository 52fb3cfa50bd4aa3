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

// InboxStore implements inbox.Store and inbox.ConflictChecker.
type InboxStore struct {
	db  *sql.DB
	d   *Dialect
	now func() time.Time
}

var (
	_ inbox.Store           = (*InboxStore)(nil)
	_ inbox.ConflictChecker = (*InboxStore)(nil)
)

// NewInboxStore returns the inbox store of db in dialect d.
func NewInboxStore(db *sql.DB, d *Dialect) *InboxStore {
	return &InboxStore{db: db, d: d, now: time.Now}
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

// Mark implements inbox.Store. The insert ignores a duplicate key: when
// another transaction holds an uncommitted mark with the same key, the
// database makes this insert wait for it, and then either skips (it
// committed) or inserts (it rolled back).
func (s *InboxStore) Mark(ctx context.Context, tx *sql.Tx, consumer, msgID string) (bool, error) {
	// A key that cannot be stored never will be: the error is permanent.
	if err := checkKey("consumer", consumer); err != nil {
		return false, handoff.Permanent(err)
	}
	if err := checkKey("message id", msgID); err != nil {
		return false, handoff.Permanent(err)
	}
	res, err := tx.ExecContext(ctx, s.d.q(s.d.markSQL), consumer, msgID, s.d.timeArg(s.now()))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// Purge implements inbox.Store.
func (s *InboxStore) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, errors.New("sqlstore: inbox purge: limit must be positive")
	}
	var n int64
	err := inTx(ctx, s.db, s.d, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.q(s.d.purgeInbox), s.d.timeArg(before), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlstore: inbox purge: %w", err)
	}
	return int(n), nil
}

// IsConflict implements inbox.ConflictChecker.
func (s *InboxStore) IsConflict(err error) bool { return s.d.conflict(err) }

// maxTxAttempts bounds how often the stores run one of their own
// transactions when it hits a conflict.
const maxTxAttempts = 10

// inTx runs fn in a transaction, again on a conflict.
func inTx(ctx context.Context, db *sql.DB, d *Dialect, fn func(tx *sql.Tx) error) error {
	var err error
	for attempt := 0; attempt < maxTxAttempts; attempt++ {
		err = txOnce(ctx, db, d, fn)
		if err == nil || !d.conflict(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

func txOnce(ctx context.Context, db *sql.DB, d *Dialect, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, d.TxOptions)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
