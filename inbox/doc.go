// Package inbox gives a message handler exactly-once effects on top of
// at-least-once delivery: the idempotent consumer pattern.
//
// The handler gets a database transaction: a *sql.Tx from a database/sql
// store, a pgx.Tx from a pgx pool's (postgres.PgxInboxStore). In it the
// inbox first inserts a mark (consumer, message id); if the mark was already
// there the message is a duplicate and the delivery is acknowledged without
// running the handler. Otherwise the handler runs in the same transaction
// and the inbox commits it (from the package example, on SQLite;
// postgres.InboxStore and mysql.InboxStore are used the same way):
//
//	in, err := inbox.New(sqlite.InboxStore(db), "billing")
//	if err != nil {
//		panic(err)
//	}
//	credit := in.Handler(func(ctx context.Context, tx *sql.Tx, msg *handoff.Message) error {
//		_, err := tx.ExecContext(ctx, `UPDATE balances SET amount = amount + 10 WHERE account = 'alice'`)
//		return err
//	})
//
// Give the handler to the consumer runtime, and run in.Run(ctx) for the
// retention cleanup.
//
// The handler is the one entry point, alone or batched: when the consumer
// runtime hands it several messages at once (consumer.WithBatchSize, also
// through a consumer.Mux), [Handler.HandleBatch] runs them in one
// transaction with a savepoint per message, so one failing handler rolls
// back only its own message, and the batch pays for one commit.
//
// # Guarantee
//
// The mark and the handler's writes commit or roll back together, and the
// consumer runtime acknowledges a delivery only after the handler returned
// nil, that is after the commit. A crash before the commit loses both the
// mark and the writes, and the redelivery runs the handler again; a crash
// after the commit but before the ack leaves the mark, and the redelivery is
// skipped. So each message's effects on this database happen once.
//
// When two deliveries of one message run at the same time (a redelivery
// racing a slow first attempt), the second insert of the mark waits for the
// first transaction's row lock: if the first commits, the second sees a
// duplicate and skips; if it rolls back, the second runs the handler. Where
// the database reports a conflict instead (a serialization failure or a
// deadlock, e.g. under SERIALIZABLE on PostgreSQL or with three racing
// transactions on MySQL), the whole transaction is retried (WithConflictRetries),
// and if it still fails the error goes back to the runtime, which retries the
// delivery. The handler's effects are never applied twice.
//
// Marks are keyed by (consumer, message id); handoff's ids are UUIDv7, unique
// across sources. Consumer names and ids are at most 255 bytes; a longer one
// is refused with a permanent error.
//
// # What it does not do
//
// Effects outside the transaction (an HTTP call, an e-mail) are not covered:
// make them idempotent with the message id, or record them in an outbox in
// the same transaction. Marks are kept for the retention period (default 7
// days; Run deletes older ones): a duplicate that arrives later than that is
// handled again, so the retention must exceed how long the broker can
// redeliver a message. The store's Purge removes old marks of every consumer
// sharing the table, so consumers sharing a database should share one
// retention.
package inbox
