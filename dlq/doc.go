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
// Replay sends a letter's message back once, to the consumer group that
// gave up on it and to no other group of the topic ([Broker]: each broker
// adapter's Redeliver uses its broker's own means), or, for a letter of the
// relay ([RelayConsumer]: a message the broker refused, which no group has
// seen), to its topic. It first claims the letter with a compare-and-set in
// the store (a lease of [WithClaimTimeout]); of two concurrent replays
// exactly one sends and the other gets [ErrAlreadyReplayed]. A failed send
// releases the claim, so the letter stays replayable. The replayed message
// keeps its id, so the group's inbox recognises it if the group handled it
// meanwhile; it carries the extensions "replayof" (the letter id) and
// "replaycount", which give it a broker deduplication key of its own
// (handoff.Message.DedupKey): a broker's duplicate window, which absorbs a
// relay's re-publish of the original, lets a replay through. If the process
// dies between the send and the store update, the claim expires and a
// later replay may send the message again, with the same id: the inbox
// absorbs that copy (or the broker answers that it holds it, and the
// letter is marked replayed).
//
// A letter of the relay holds later messages of its partition key in the
// outbox while it is open; replaying, purging or deleting it releases them
// (the relay reads the letter's state), whoever does it.
//
// Operators reach letters through the handoff CLI (handoff dlq) or over
// HTTP ([NewHandler]: the list, filtered and paged, one letter, and with
// [WithWrites] replay, edit and delete). Both print a letter in the stable
// JSON of [Letter.MarshalJSON].
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
// The queue does not retry by itself: the consumer runtime decides when a
// message is dead and which Class (where it was given up) it gets.
//
// # Root causes
//
// A [Classifier] names each letter's root [Cause] (schema mismatch, poison
// message, timeout or network, dependency down, business rule, publish
// refused, unknown) by rules: sentinels and error types first, then runtime
// classes, then patterns over the error chain; users add rules
// ([NewClassifier], [ParseRules]) ahead of the built-in ones. Each cause has
// a playbook, the next commands to run. [Incidents] groups letters by cause
// and first failure, so a storm reads as one incident. The CLI and the HTTP
// API show both.
package dlq
