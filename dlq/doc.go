// Package dlq is the dead-letter store: where the consumer runtime puts a
// message it gave up on, with the error chain, so that a person can inspect
// it, fix it, and send it back.
//
// The runtime calls [Queue.Add]; operators (and the handoff CLI) call
// [Queue.List], [Queue.Get], [Queue.Edit], [Queue.Replay], [Queue.ReplayAll],
// [Queue.Delete] and [Queue.Purge]:
//
//	q, err := dlq.New(store, dlq.WithAlerter(pager))
//	letters, err := q.List(ctx, dlq.Filter{Consumer: "billing", State: dlq.StateOpen})
//	err = q.Edit(ctx, letters[0].ID, fixedJSON, "application/json")
//	err = q.Replay(ctx, publisher, letters[0].ID)
//
// The [Store] is a contract with an in-memory implementation
// (adapter/memory.NewDLQStore) and SQL ones (adapter/postgres, adapter/sqlite,
// adapter/mysql), all checked by handofftest.RunDLQStore.
//
// # Guarantees
//
// A letter is open until it is replayed; deleting or purging removes it.
//
// Replay publishes a letter's message once. It first claims the letter with a
// compare-and-set in the store (a lease of [WithClaimTimeout]); of two
// concurrent replays exactly one publishes and the other gets
// [ErrAlreadyReplayed]. A failed publish releases the claim, so the letter
// stays replayable. The replayed message keeps its original id, so the inbox
// of every consumer group that already handled it still skips it; it carries
// the extensions "replayof" (the letter id) and "replaycount". If the
// process dies between the publish and the store update, the claim expires
// and a later replay may publish the message again, with the same id: the
// inbox absorbs that copy.
//
// The [Alerter] fires when a consumer goes from no open letters to one. The
// store decides that inside the transaction that adds the letter, serialised
// per consumer with the transactions that replay or delete that consumer's
// letters (a row lock on PostgreSQL and MySQL, the single writer on SQLite, a
// mutex in memory), so concurrent adds to an empty queue fire it once.
// It fires after the letter is stored, synchronously on the caller's
// goroutine: keep it quick (hand the page to a goroutine or a channel). It is
// at most once: a process that dies between storing the letter and calling
// the alerter does not alert, so pair it with a periodic check of open
// letters (List with StateOpen) if a missed page matters.
//
// Queue.Add is idempotent by letter id: when it sets l.ID and the store
// write fails ambiguously, calling Add again with the same letter gives an
// error matching ErrExists if the first write had landed.
//
// # Non-goals
//
// The queue does not retry by itself and does not classify errors: the
// consumer runtime decides when a message is dead and which Class it gets.
package dlq
