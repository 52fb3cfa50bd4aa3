package inbox

import (
	"context"
	"fmt"

	"github.com/handoffhq/handoff"
)

// HandleBatch runs h for several messages in one transaction, with a
// savepoint around each message: a message whose handler fails is rolled
// back to its savepoint (its writes and its mark are gone) while the others
// commit together. It returns one result per message, in order: nil for a
// message handled or skipped as a duplicate, h's error for one that failed,
// and the transaction's error for every message when the commit fails.
// One commit for many messages costs one fsync instead of many.
//
// A conflict (deadlock, serialization failure) aborts the whole transaction
// on most databases, so it runs the whole batch again, up to
// WithConflictRetries times. The guarantee is that of Handler, per message.
func (in *Inbox) HandleBatch(ctx context.Context, msgs []*handoff.Message, h TxHandler) []error {
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		if m == nil || m.ID == "" {
			errs[i] = handoff.Permanent(ErrNoID)
		}
	}
	// The fast path: every mark in one statement, no savepoints, one
	// commit. If any handler fails, the whole transaction rolls back
	// (nothing of it commits) and the batch runs again on the savepoint path.
	if res, ok := in.batchFast(ctx, msgs, errs, h); ok {
		return res
	}
	for attempt := 0; ; attempt++ {
		res, err := in.batchOnce(ctx, msgs, errs, h)
		if err == nil {
			return res
		}
		if attempt >= in.retries || !in.isConflict(err) || ctx.Err() != nil {
			out := make([]error, len(msgs))
			for i := range out {
				if out[i] = errs[i]; out[i] == nil {
					out[i] = err
				}
			}
			return out
		}
		in.logger.Debug("inbox: conflict, running the batch again", "consumer", in.consumer, "attempt", attempt+1, "err", err)
	}
}

const savepoint = "handoff_inbox_msg"

// batchFast runs the batch in one transaction without savepoints. It reports
// false, having rolled back, when anything failed: a handler error, a
// permanent mark error, a conflict, a failed commit. Only then does the
// caller run the savepoint path, so the happy path costs one round trip per
// handler statement plus one for all the marks.
func (in *Inbox) batchFast(ctx context.Context, msgs []*handoff.Message, pre []error, h TxHandler) ([]error, bool) {
	mm, ok := in.store.(ManyMarker)
	if !ok {
		return nil, false
	}
	var ids []string
	var idx []int
	for i, m := range msgs {
		if pre[i] == nil {
			ids = append(ids, m.ID)
			idx = append(idx, i)
		}
	}
	if len(ids) == 0 {
		return append([]error(nil), pre...), true
	}
	tx, err := in.db.BeginTx(ctx, in.txOpts)
	if err != nil {
		return nil, false
	}
	defer func() { _ = tx.Rollback() }() // a no-op after the commit
	fresh, err := mm.MarkMany(ctx, tx, in.consumer, ids)
	if err != nil {
		return nil, false
	}
	for j, i := range idx {
		if fresh[j] {
			if err := h(ctx, tx, msgs[i]); err != nil {
				return nil, false
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, false
	}
	return append([]error(nil), pre...), true
}

// batchOnce runs one transaction over the batch. err is set when the
// transaction as a whole failed; res holds per-message results otherwise.
func (in *Inbox) batchOnce(ctx context.Context, msgs []*handoff.Message, pre []error, h TxHandler) (res []error, err error) {
	tx, err := in.db.BeginTx(ctx, in.txOpts)
	if err != nil {
		return nil, fmt.Errorf("inbox: batch: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // a no-op after the commit
	res = append([]error(nil), pre...)
	for i, msg := range msgs {
		if res[i] != nil {
			continue
		}
		if _, err := tx.ExecContext(ctx, "SAVEPOINT "+savepoint); err != nil {
			return nil, fmt.Errorf("inbox: batch: savepoint: %w", err)
		}
		fresh, err := in.store.Mark(ctx, tx, in.consumer, msg.ID)
		if err != nil && !handoff.IsPermanent(err) {
			return nil, fmt.Errorf("inbox: %s: mark: %w", msg.ID, err)
		}
		if err != nil { // this message can never be marked; the others go on
			res[i] = fmt.Errorf("inbox: %s: mark: %w", msg.ID, err)
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+savepoint); err != nil {
				return nil, fmt.Errorf("inbox: %s: rollback to savepoint: %w", msg.ID, err)
			}
			fresh = false
		}
		if fresh {
			if herr := h(ctx, tx, msg); herr != nil {
				if in.isConflict(herr) && !handoff.IsPermanent(herr) {
					return nil, herr // the transaction is likely gone: run the batch again
				}
				res[i] = herr
				if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+savepoint); err != nil {
					return nil, fmt.Errorf("inbox: %s: rollback to savepoint: %w", msg.ID, err)
				}
			}
		}
		if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+savepoint); err != nil {
			return nil, fmt.Errorf("inbox: batch: release savepoint: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("inbox: batch: commit: %w", err)
	}
	return res, nil
}

// Batched is a handler that handles one message with Handler's transaction,
// or several with HandleBatch's single transaction and a savepoint each.
// It implements handoff.Handler and handoff.BatchHandler.
type Batched struct {
	in  *Inbox
	h   TxHandler
	one handoff.Handler
}

// Batch returns h as a handler the consumer runtime can run in batches
// (consumer.WithBatchSize): one commit, one fsync, for many messages, with
// the same exactly-once guarantee per message.
func (in *Inbox) Batch(h TxHandler) *Batched {
	return &Batched{in: in, h: h, one: in.Handler(h)}
}

// Handle implements handoff.Handler.
func (b *Batched) Handle(ctx context.Context, msg *handoff.Message) error {
	return b.one.Handle(ctx, msg)
}

// HandleBatch implements handoff.BatchHandler.
func (b *Batched) HandleBatch(ctx context.Context, msgs []*handoff.Message) []error {
	return b.in.HandleBatch(ctx, msgs, b.h)
}
