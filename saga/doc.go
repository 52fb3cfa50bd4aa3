// Package saga runs orchestrated sagas with durable state in the database
// the outbox lives in: a multi-step workflow always ends, completed, or
// compensated (every step that may have had an effect undone, last first),
// or stuck with an alert when a compensation keeps failing.
//
//	def, err := saga.Define("order", []saga.Step[Order]{
//		{Name: "charge", Action: saga.Command("payments", chargeCmd, nil), Compensate: saga.Command("payments", refundCmd, nil)},
//		{Name: "reserve", Action: saga.HTTP(client, reserveReq, nil), Compensate: saga.HTTP(client, releaseReq, nil)},
//		{Name: "confirm", Action: saga.Local(confirm)},
//	})
//	c, err := saga.New(postgres.SagaStore(db), saga.WithOutbox(w), saga.WithAlerter(pager))
//	orders, err := saga.Register(c, def)
//	id, err := orders.Start(ctx, tx, Order{...}) // in the caller's transaction
//	go c.Run(ctx)                                 // timers, leases, the rest of the steps
//	// replies to commands: an inbox handler on the reply topic
//	h := in.Handler(c.HandleReply)
//
// # Steps
//
// An action (and a compensation) is one of: [Local], a function run inside
// the coordinator's transaction, whose writes commit with the saga's new
// state; [Command], a message sent through the outbox in the transaction
// that records the step as sent, answered by a [Reply] that arrives through
// the consumer and an inbox ([Coordinator.HandleReply]); [Call] or [HTTP], a
// remote call outside any transaction, recorded as started before and its
// outcome after. Each carries a stable idempotency key (saga id / step /
// generation; "undo" in a compensation's): the same after a crash and on
// every retry of the step, sent as Idempotency-Key by HTTP and as the
// sagakey extension of a command, so an effect keyed by it happens once. A
// reply is matched by that key against the step the saga waits on; a late
// one (after its step timed out and the saga moved on) is recorded in the
// history and ignored.
//
// [Parallel] makes a fork/join step: its branches run side by side, each
// with its own attempts and durable timer, and the saga goes on when all
// succeeded; when one fails for good, the others in flight are given up
// and every branch that may have had an effect is compensated (last branch
// first), then the steps before the fork. A coordinator that dies between
// branches leaves the finished ones recorded; the one that takes the saga
// over runs only the others, with the same keys.
//
// # Guarantees
//
// Every transition of a saga and the commands it sends commit in one
// transaction; Start runs the first steps in the caller's transaction.
// Retry delays, reply timeouts and the saga's deadline are one durable
// timer per instance (an indexed due time), so a crash neither forgets nor
// shortens them. Coordinators in several processes share the work: a saga
// is leased by one at a time (owner and expiry in its row, checked in
// every transition's transaction) and taken over when the lease expires.
// A failed step is compensated in reverse order, and only steps that may
// have had an effect are: a local step that failed rolled back, a command
// answered with a failure had none. A compensation is retried with backoff
// (CompensateRetry, 20 attempts by default); when every attempt failed the
// saga is Stuck and the [Alerter] is told (at least once); an operator can
// then [Coordinator.Retry], [Coordinator.Skip] or [Coordinator.Abort] it.
//
// # Definitions that change while sagas run
//
// A saga records the version of the definition it started on (WithVersion,
// or by default a fingerprint of the steps' names and kinds) and continues
// on that version: register the old definition next to the new one
// (saga.Register(c, v2, v1)) and new sagas start on v2 while those in
// flight finish on v1. A coordinator that does not have the version of a
// saga in flight refuses to run (Check, Run) with a [VersionError] naming
// the sagas and the step each is at. Temporal replays a workflow's code
// against its recorded history, so a changed workflow function fails
// replays with a non-determinism error at run time, and the fix is
// versioning calls inside the code (GetVersion, patching). Here nothing is
// replayed: a saga's state is its step index and its data, so a changed
// step body takes effect at the next step, and a changed list of steps is
// a new version that is either registered next to the old one or refused
// before anything runs.
//
// # History
//
// Every transition is recorded in the same transaction (Coordinator.History
// by saga id, Coordinator.ByCorrelation by correlation id), and kept for
// WithRetention after the saga ended.
//
// # Operating
//
// Coordinator.List pages through the sagas newest first, by status, name,
// correlation id and creation or update time, through an index (the SQL
// stores are each a [Lister]); Counts gives how many are in each status;
// Detail is a saga with its timeline. [Handler] serves these, and Retry,
// Skip and Abort, over HTTP: handoff serve mounts it at /sagas, and the
// handoff saga command works through it or on the database. An operator's
// coordinator needs no definitions: it moves a stuck saga on, and a
// coordinator that has the definition (Run) takes it from there.
//
// # Choreographies you can trace
//
// Correlation and causation ids flow on their own: the consumer runtime
// and the inbox run each handler under handoff.ContextWithCause(ctx, msg),
// and the outbox writer gives every message written under such a context
// (and Start every saga) the incoming correlation id and the incoming
// message's id as its causation id, unless it set its own; the W3C trace
// context (traceparent) travels the same way (package telemetry). Start a
// conversation with a correlation id on its first message, or with
// handoff.ContextWithCorrelation in the code that writes it.
//
// Every message that carries a correlation id leaves rows in the trace
// journal of its database (handoff_trace), each written in the transaction
// that did the thing: sent (with the outbox row), handled by a consumer
// group (with the inbox mark and the handler's writes), dead-lettered
// (with the dead letter). [Trace] reads the journals and the sagas of the
// correlation id from one store per database and returns a [Story]: the
// steps in causal order (a message is sent before it is handled, and after
// the message that caused it), the services that acted, and what is still
// pending (a message still in the outbox, one no handler has taken, a dead
// letter not handled since, a saga that has not ended). The journal is
// kept for the coordinator's retention (WithRetention; Run purges it).
//
// # What it does not do
//
// Local steps get a *sql.Tx: the coordinator runs on database/sql (the pgx
// driver for PostgreSQL), not yet on a pgx pool. Exactly-once effects of
// remote steps rest on the remote side deduplicating by the key (package
// idempotency does for HTTP; an inbox does for commands).
package saga
