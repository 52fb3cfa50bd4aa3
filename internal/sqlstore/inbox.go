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

// MarkMany implements inbox.ManyMarker on PostgreSQL and SQLite: one
// multi-row insert that ignores duplicates and returns the ids it inserted.
// On MySQL it marks one at a time (INSERT IGNORE cannot say which rows it
// skipped).
func (s *InboxStore) MarkMany(ctx context.Context, tx *sql.Tx, consumer string, ids []string) ([]bool, error) {
	fresh := make([]bool, len(ids))
	if s.d.Name == "mysql" {
		for i, id := range ids {
			ok, err := s.Mark(ctx, tx, consumer, id)
			if err != nil {
				return nil, err
			}
			fresh[i] = ok
		}
		return fresh, nil
	}
	if err := checkKey("consumer", consumer); err != nil {
		return nil, handoff.Permanent(err)
	}
	now := s.d.timeArg(s.now())
	args := make([]any, 0, 3*len(ids))
	for _, id := range ids {
		if err := checkKey("message id", id); err != nil {
			return nil, handoff.Permanent(err)
		}
		args = append(args, consumer, id, now)
	}
	q := `INSERT INTO handoff_inbox (consumer, message_id, received_at) VALUES ` + placeholders(len(ids), 3) +
		` ON CONFLICT (consumer, message_id) DO NOTHING RETURNING message_id`
	rows, err := tx.QueryContext(ctx, s.d.q(q), args...)
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
