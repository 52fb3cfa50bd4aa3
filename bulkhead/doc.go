// Package bulkhead limits how many calls to a dependency run at once, so a
// slow dependency ties up a bounded share of the caller's goroutines and
// connections.
//
// Minimal call sequence:
//
//	bh, err := bulkhead.New("inventory", 20, bulkhead.WithMaxQueue(50), bulkhead.WithMaxWait(100*time.Millisecond))
//	...
//	if err := bh.Acquire(ctx); err != nil { return err } // bulkhead.ErrFull or ctx's error
//	defer bh.Release()
//
// or bh.Do(ctx, fn).
//
// Guarantee: at most maxConcurrent callers hold a slot at any time. Queued
// callers are served first in, first out, and wait at most the queue wait
// limit (or until their context is done). With no queue (the default), a
// call that finds every slot taken fails at once with [ErrFull].
//
// Acquire and Release on the fast path are a few atomic operations and do not
// allocate; waiting allocates a channel (and a timer with WithMaxWait).
//
// It does not time out the call itself: bound fn with a context deadline.
package bulkhead
