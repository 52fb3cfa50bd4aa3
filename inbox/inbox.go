package inbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/handoffhq/handoff"
)

// TxHandler handles a message inside the inbox's transaction. Its writes
// through tx commit together with the inbox mark. It must not commit or roll
// back tx. Like a handoff.Handler, it returns nil to acknowledge, an error
// wrapped with handoff.Permanent to dead-letter, any other error to retry.
type TxHandler func(ctx context.Context, tx *sql.Tx, msg *handoff.Message) error

// Store keeps the marks. Implementations: adapter/postgres, adapter/sqlite
// and adapter/mysql InboxStore; handofftest.RunInboxStore checks them.
type Store interface {
	// Mark inserts the mark (consumer, msgID) in tx and reports whether it
	// was new. A mark inserted by a transaction that has not ended yet
	// makes Mark wait for that transaction (or fail with a conflict the
	// store's IsConflict recognises), never report fresh for both.
	Mark(ctx context.Context, tx *sql.Tx, consumer, msgID string) (fresh bool, err error)
	// Purge deletes up to limit marks received before before, of every
	// consumer, and returns how many it deleted.
	Purge(ctx context.Context, before time.Time, limit int) (int, error)
}

// ManyMarker is implemented by stores that can mark several messages with
// one statement; HandleBatch then needs one round trip for all the marks.
// fresh[i] reports whether ids[i] was new.
type ManyMarker interface {
	MarkMany(ctx context.Context, tx *sql.Tx, consumer string, ids []string) (fresh []bool, err error)
}

// ConflictChecker is implemented by stores that can tell a transaction
// conflict (serialization failure, deadlock, busy database) from other
// errors. The inbox retries the whole transaction on a conflict.
type ConflictChecker interface {
	IsConflict(err error) bool
}

// ErrNoID is returned (wrapped with handoff.Permanent) for a message without an id.
var ErrNoID = errors.New("inbox: message has no id")

// Inbox runs handlers with exactly-once effects for one consumer group.
type Inbox struct {
	db        *sql.DB
	store     Store
	consumer  string
	retention time.Duration
	interval  time.Duration
	batch     int
	retries   int
	txOpts    *sql.TxOptions
	logger    *slog.Logger
}

// Option configures an [Inbox].
type Option func(*Inbox) error

// WithRetention sets how long marks are kept (default 7 days). It must
// exceed the longest time the broker may redeliver a message.
func WithRetention(d time.Duration) Option {
	return func(in *Inbox) error {
		if d < time.Minute {
			return fmt.Errorf("inbox: WithRetention: %v must be at least 1m", d)
		}
		in.retention = d
		return nil
	}
}

// WithCleanupInterval sets how often Run deletes expired marks (default 10 minutes).
func WithCleanupInterval(d time.Duration) Option {
	return func(in *Inbox) error {
		if d <= 0 {
			return fmt.Errorf("inbox: WithCleanupInterval: %v must be positive", d)
		}
		in.interval = d
		return nil
	}
}

// WithCleanupBatch sets how many marks one cleanup statement deletes (default 1000).
func WithCleanupBatch(n int) Option {
	return func(in *Inbox) error {
		if n <= 0 {
			return fmt.Errorf("inbox: WithCleanupBatch: %d must be positive", n)
		}
		in.batch = n
		return nil
	}
}

// WithConflictRetries sets how many times a transaction that hit a conflict
// is run again before the error is returned to the runtime (default 3).
func WithConflictRetries(n int) Option {
	return func(in *Inbox) error {
		if n < 0 {
			return fmt.Errorf("inbox: WithConflictRetries: %d must not be negative", n)
		}
		in.retries = n
		return nil
	}
}

// WithTxOptions sets the options of the handler's transaction (default: the
// database's default isolation).
func WithTxOptions(o *sql.TxOptions) Option {
	return func(in *Inbox) error {
		if o != nil && o.ReadOnly {
			return errors.New("inbox: WithTxOptions: the transaction must not be read-only")
		}
		in.txOpts = o
		return nil
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(in *Inbox) error {
		if l == nil {
			return errors.New("inbox: WithLogger: logger must not be nil")
		}
		in.logger = l
		return nil
	}
}

// New returns an inbox for consumer over db, whose marks store keeps.
func New(db *sql.DB, store Store, consumer string, opts ...Option) (*Inbox, error) {
	switch {
	case db == nil:
		return nil, errors.New("inbox: New: db must not be nil")
	case store == nil:
		return nil, errors.New("inbox: New: store must not be nil")
	case consumer == "":
		return nil, errors.New("inbox: New: consumer must not be empty")
	}
	in := &Inbox{db: db, store: store, consumer: consumer, retention: 7 * 24 * time.Hour,
		interval: 10 * time.Minute, batch: 1000, retries: 3,
		logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(in); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// Handler returns a handoff.Handler that runs h once per message id: see the
// package documentation for the guarantee. A duplicate returns nil without
// calling h. Errors from h are returned as they are, so handoff.IsPermanent
// still holds for them; when the store recognises one as a conflict (h's
// statement hit a deadlock or a serialization failure) and it is not
// permanent, the transaction is run again first, like a conflict of the
// inbox's own statements.
func (in *Inbox) Handler(h TxHandler) handoff.Handler {
	return handoff.HandlerFunc(func(ctx context.Context, msg *handoff.Message) error {
		if msg == nil || msg.ID == "" {
			return handoff.Permanent(ErrNoID)
		}
		for attempt := 0; ; attempt++ {
			err := in.once(ctx, h, msg)
			if err == nil || attempt >= in.retries || handoff.IsPermanent(err) || !in.isConflict(err) || ctx.Err() != nil {
				return err
			}
			in.logger.Debug("inbox: conflict, running the transaction again", "consumer", in.consumer,
				"message", msg.ID, "attempt", attempt+1, "err", err)
		}
	})
}

func (in *Inbox) isConflict(err error) bool {
	c, ok := in.store.(ConflictChecker)
	return ok && c.IsConflict(err)
}

// once runs one transaction. An error from h is returned untouched.
func (in *Inbox) once(ctx context.Context, h TxHandler, msg *handoff.Message) error {
	tx, err := in.db.BeginTx(ctx, in.txOpts)
	if err != nil {
		return fmt.Errorf("inbox: %s: begin: %w", msg.ID, err)
	}
	// Rolls back on every path but a commit, including a panic in h, so the
	// connection goes back to the pool; after a commit it is a no-op.
	defer func() { _ = tx.Rollback() }()
	fresh, err := in.store.Mark(ctx, tx, in.consumer, msg.ID)
	if err != nil {
		return fmt.Errorf("inbox: %s: mark: %w", msg.ID, err)
	}
	if !fresh {
		in.logger.Debug("inbox: duplicate skipped", "consumer", in.consumer, "message", msg.ID)
		return nil
	}
	if err := h(ctx, tx, msg); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("inbox: %s: commit: %w", msg.ID, err)
	}
	return nil
}

// Cleanup deletes the marks older than the retention, in batches, and
// returns how many it deleted.
func (in *Inbox) Cleanup(ctx context.Context) (int, error) {
	before := time.Now().Add(-in.retention)
	total := 0
	for {
		n, err := in.store.Purge(ctx, before, in.batch)
		total += n
		if err != nil {
			return total, fmt.Errorf("inbox: cleanup: %w", err)
		}
		if n < in.batch {
			return total, nil
		}
	}
}

// Run deletes expired marks at once and then every cleanup interval, until
// ctx is done; then it returns nil. A failed cleanup is logged and tried
// again at the next interval.
func (in *Inbox) Run(ctx context.Context) error {
	t := time.NewTicker(in.interval)
	defer t.Stop()
	for {
		n, err := in.Cleanup(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			in.logger.Warn("inbox: cleanup failed", "consumer", in.consumer, "deleted", n, "err", err)
		case n > 0:
			in.logger.Debug("inbox: cleanup", "consumer", in.consumer, "deleted", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
