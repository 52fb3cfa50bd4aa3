package inbox

import (
	"context"
	"fmt"

	"github.com/handoffhq/handoff"
)

// HandleBatch runs the handler for several messages in one transaction, with
// a savepoint around each message: a message whose handler fails is rolled
// back to its savepoint (its writes and its mark are gone) while the others
// commit together. It returns one result per message, in order: nil for a
// message handled or skipped as a duplicate, the handler's error for one that
// failed, and the transaction's error for every message when the commit
// fails. One commit for many messages costs one fsync instead of many.
//
// A conflict (deadlock, serialization failure) aborts the whole transaction
// on most databases, so it runs the whole batch again, up to
// WithConflictRetries times. The guarantee is that of Handle, per message.
func (b *Handler[Tx]) HandleBatch(ctx context.Context, msgs []*handoff.Message) []error {
	in, h := b.in, b.h
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
		if attempt >= in.retries || !in.store.IsConflict(err) || ctx.Err() != nil {
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

// errRollback makes InTx roll back the fast path's transaction.
var errRollback = fmt.Errorf("inbox: roll back")

// batchFast runs the batch in one transaction without savepoints. It reports
// false, having rolled back, when anything failed: a handler error, a
// permanent mark error, a conflict, a failed commit. Only then does the
// caller run the savepoint path, so the happy path costs one round trip per
// handler statement plus one for all the marks.
func (in *Inbox[Tx]) batchFast(ctx context.Context, msgs []*handoff.Message, pre []error, h TxHandler[Tx]) ([]error, bool) {
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
	err := in.store.InTx(ctx, in.txOpts, func(tx Tx) error {
		fresh, err := in.store.Mark(ctx, tx, in.consumer, ids...)
		if err != nil {
			return errRollback
		}
		for j, i := range idx {
			if fresh[j] {
				if err := in.run(ctx, tx, h, msgs[i]); err != nil {
					return errRollback
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, false
	}
	return append([]error(nil), pre...), true
}

// batchOnce runs one transaction over the batch. err is set when the
// transaction as a whole failed; res holds per-message results otherwise.
func (in *Inbox[Tx]) batchOnce(ctx context.Context, msgs []*handoff.Message, pre []error, h TxHandler[Tx]) (res []error, err error) {
	var abort error // fails the whole transaction
	err = in.store.InTx(ctx, in.txOpts, func(tx Tx) error {
		res = append([]error(nil), pre...)
		for i, msg := range msgs {
			if res[i] != nil {
				continue
			}
			var merr, herr error
			serr := in.store.Savepoint(ctx, tx, func() error {
				var fresh []bool
				if fresh, merr = in.store.Mark(ctx, tx, in.consumer, msg.ID); merr != nil {
					return merr
				}
				if fresh[0] {
					herr = in.run(ctx, tx, h, msg)
				}
				return herr
			})
			switch {
			case merr != nil && !handoff.IsPermanent(merr):
				abort = fmt.Errorf("inbox: %s: mark: %w", msg.ID, merr)
			case herr != nil && in.store.IsConflict(herr) && !handoff.IsPermanent(herr):
				abort = herr // the transaction is likely gone: run the batch again
			case serr != nil && serr != merr && serr != herr:
				abort = fmt.Errorf("inbox: %s: %w", msg.ID, serr)
			case merr != nil: // this message can never be marked; the others go on
				res[i] = fmt.Errorf("inbox: %s: mark: %w", msg.ID, merr)
			default:
				res[i] = herr
			}
			if abort != nil {
				return abort
			}
		}
		return nil
	})
	if abort != nil {
		return nil, abort
	}
	if err != nil {
		return nil, fmt.Errorf("inbox: batch: %w", err)
	}
	return res, nil
}
