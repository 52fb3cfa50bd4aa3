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

// TxHandler handles a message inside the inbox's transaction, of type Tx
// (*sql.Tx for a database/sql store, pgx.Tx for a pgx pool). Its writes
// through tx commit together with the inbox mark. It must not commit or
// roll back tx. Like a handoff.Handler, it returns nil to acknowledge, an
// error wrapped with handoff.Permanent to dead-letter, any other error to
// retry.
type TxHandler[Tx any] func(ctx context.Context, tx Tx, msg *handoff.Message) error

// Store keeps the marks in the handler's database and runs the transactions
// the handlers write in. adapter/postgres (over database/sql or a pgx pool),
// adapter/sqlite and adapter/mysql have one (InboxStore);
// handofftest.RunInboxStore checks them.
type Store[Tx any] interface {
	// InTx runs fn in a new transaction with opts (nil: the database's
	// defaults). It commits when fn returns nil and returns the commit's
	// error; when fn returns an error or panics, it rolls back and returns
	// fn's error untouched (or lets the panic go on).
	InTx(ctx context.Context, opts *sql.TxOptions, fn func(tx Tx) error) error
	// Savepoint runs fn inside a savepoint of tx. When fn returns an error,
	// tx is rolled back to the savepoint (fn's writes are undone, tx stays
	// usable) and fn's error is returned untouched; an error of the
	// savepoint statements themselves is returned instead (tx is then
	// likely unusable).
	Savepoint(ctx context.Context, tx Tx, fn func() error) error
	// Mark inserts the marks (consumer, id) in tx and reports, per id, whether
	// it was new (an id given twice is new once). A mark inserted by a
	// transaction that has not ended yet makes Mark wait for that
	// transaction (or fail with a conflict IsConflict recognises), never
	// report fresh for both. A consumer or id the table cannot hold is an
	// error marked handoff.Permanent.
	Mark(ctx context.Context, tx Tx, consumer string, ids ...string) (fresh []bool, err error)
	// Purge deletes up to limit marks received before before, of every
	// consumer, and returns how many it deleted.
	Purge(ctx context.Context, before time.Time, limit int) (int, error)
	// IsConflict reports a transaction conflict (serialization failure,
	// deadlock, busy database): running the transaction again may succeed.
	IsConflict(err error) bool
}

// ErrNoID is returned (wrapped with handoff.Permanent) for a message without an id.
var ErrNoID = errors.New("inbox: message has no id")

// Inbox runs handlers with exactly-once effects for one consumer group.
type Inbox[Tx any] struct {
	store     Store[Tx]
	consumer  string
	retention time.Duration
	interval  time.Duration
	batch     int
	retries   int
	txOpts    *sql.TxOptions
	logger    *slog.Logger
}

// config holds the options; it is not generic, so neither are options.
type config struct {
	retention time.Duration
	interval  time.Duration
	batch     int
	retries   int
	txOpts    *sql.TxOptions
	logger    *slog.Logger
}

// Option configures an [Inbox].
type Option func(*config) error

// WithRetention sets how long marks are kept (default 7 days). It must
// exceed the longest time the broker may redeliver a message.
func WithRetention(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Minute {
			return fmt.Errorf("inbox: WithRetention: %v must be at least 1m", d)
		}
		c.retention = d
		return nil
	}
}

// WithCleanupInterval sets how often Run deletes expired marks (default 10 minutes).
func WithCleanupInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("inbox: WithCleanupInterval: %v must be positive", d)
		}
		c.interval = d
		return nil
	}
}

// WithCleanupBatch sets how many marks one cleanup statement deletes (default 1000).
func WithCleanupBatch(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("inbox: WithCleanupBatch: %d must be positive", n)
		}
		c.batch = n
		return nil
	}
}

// WithConflictRetries sets how many times a transaction that hit a conflict
// is run again before the error is returned to the runtime (default 3).
func WithConflictRetries(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("inbox: WithConflictRetries: %d must not be negative", n)
		}
		c.retries = n
		return nil
	}
}

// WithTxOptions sets the options of the handler's transaction (default: the
// database's default isolation). A pgx store maps the isolation level to
// PostgreSQL's and refuses one PostgreSQL does not have.
func WithTxOptions(o *sql.TxOptions) Option {
	return func(c *config) error {
		if o != nil && o.ReadOnly {
			return errors.New("inbox: WithTxOptions: the transaction must not be read-only")
		}
		c.txOpts = o
		return nil
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("inbox: WithLogger: logger must not be nil")
		}
		c.logger = l
		return nil
	}
}

// New returns an inbox for consumer whose marks, and handlers' transactions,
// store keeps.
func New[Tx any](store Store[Tx], consumer string, opts ...Option) (*Inbox[Tx], error) {
	switch {
	case store == nil:
		return nil, errors.New("inbox: New: store must not be nil")
	case consumer == "":
		return nil, errors.New("inbox: New: consumer must not be empty")
	}
	c := config{retention: 7 * 24 * time.Hour, interval: 10 * time.Minute, batch: 1000, retries: 3,
		logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	return &Inbox[Tx]{store: store, consumer: consumer, retention: c.retention, interval: c.interval,
		batch: c.batch, retries: c.retries, txOpts: c.txOpts, logger: c.logger}, nil
}

// Handler is a handoff.Handler and a handoff.BatchHandler that runs a
// TxHandler with exactly-once effects: one message per transaction through
// Handle, or several in one transaction, with a savepoint each, through
// HandleBatch (what the consumer runtime calls when consumer.WithBatchSize
// is above 1). Make one with [Inbox.Handler].
type Handler[Tx any] struct {
	in *Inbox[Tx]
	h  TxHandler[Tx]
}

// Handler returns h as the handler to give the consumer runtime; see the
// package documentation for the guarantee. It works alone and with the
// runtime's batches alike.
func (in *Inbox[Tx]) Handler(h TxHandler[Tx]) *Handler[Tx] {
	return &Handler[Tx]{in: in, h: h}
}

// Handle runs the handler once per message id. A duplicate returns nil
// without calling it. Errors from the handler are returned as they are, so
// handoff.IsPermanent still holds for them; when the store recognises one
// as a conflict (the handler's statement hit a deadlock or a serialization
// failure) and it is not permanent, the transaction is run again first,
// like a conflict of the inbox's own statements.
func (b *Handler[Tx]) Handle(ctx context.Context, msg *handoff.Message) error {
	in := b.in
	if msg == nil || msg.ID == "" {
		return handoff.Permanent(ErrNoID)
	}
	for attempt := 0; ; attempt++ {
		err := in.once(ctx, b.h, msg)
		if err == nil || attempt >= in.retries || handoff.IsPermanent(err) || !in.store.IsConflict(err) || ctx.Err() != nil {
			return err
		}
		in.logger.Debug("inbox: conflict, running the transaction again", "consumer", in.consumer,
			"message", msg.ID, "attempt", attempt+1, "err", err)
	}
}

// once runs one transaction. An error from h is returned untouched.
func (in *Inbox[Tx]) once(ctx context.Context, h TxHandler[Tx], msg *handoff.Message) error {
	var herr, merr error
	err := in.store.InTx(ctx, in.txOpts, func(tx Tx) error {
		var fresh []bool
		if fresh, merr = in.store.Mark(ctx, tx, in.consumer, msg.ID); merr != nil {
			return merr
		}
		if !fresh[0] {
			in.logger.Debug("inbox: duplicate skipped", "consumer", in.consumer, "message", msg.ID)
			return nil
		}
		herr = in.run(ctx, tx, h, msg)
		return herr
	})
	switch {
	case herr != nil:
		return herr
	case merr != nil:
		return fmt.Errorf("inbox: %s: mark: %w", msg.ID, merr)
	case err != nil: // begin or commit
		return fmt.Errorf("inbox: %s: %w", msg.ID, err)
	}
	return nil
}

// Journal is a Store that also keeps a trace journal (the SQL stores do):
// the inbox records there, in the handler's transaction, that its consumer
// handled a message that carries a correlation id, so the flow can be
// traced (saga.Trace).
type Journal[Tx any] interface {
	RecordHandled(ctx context.Context, tx Tx, consumer string, msg *handoff.Message, at time.Time) error
}

// run runs h on msg in tx: under a context that makes msg the cause of
// what h sends (handoff.ContextWithCause), and, when h succeeded and the
// store keeps a journal, recording the outcome with the handler's writes.
func (in *Inbox[Tx]) run(ctx context.Context, tx Tx, h TxHandler[Tx], msg *handoff.Message) error {
	start := time.Now()
	if err := h(handoff.ContextWithCause(ctx, msg), tx, msg); err != nil {
		return err
	}
	if j, ok := in.store.(Journal[Tx]); ok && msg.CorrelationID != "" {
		if err := j.RecordHandled(ctx, tx, in.consumer, msg, start); err != nil {
			return fmt.Errorf("inbox: %s: record in the trace journal: %w", msg.ID, err)
		}
	}
	return nil
}

// Cleanup deletes the marks older than the retention, in batches, and
// returns how many it deleted.
func (in *Inbox[Tx]) Cleanup(ctx context.Context) (int, error) {
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
func (in *Inbox[Tx]) Run(ctx context.Context) error {
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
