// Package sqlstore is the one SQL implementation of handoff's stores (outbox
// and relay, inbox, dead letters, idempotency records, the schema registry)
// behind adapter/postgres, adapter/sqlite and adapter/mysql, parameterised
// by a small [Dialect], and the versioned schema migrations they share.
//
// # Where a store lives (the pattern for a new one)
//
// A feature package (saga, contract, ...) defines its Store interface; the
// SQL for it goes here, once, for the three dialects; each adapter
// constructs it in one line (postgres.SagaStore(db)) and its table comes
// with the adapter's Migrate. What the pattern must keep true, and
// deps_test.go checks:
//
//   - Importing an adapter for its outbox, inbox or dead-letter stores
//     links that driver and nothing else heavy. If the feature package is
//     light (the standard library, handoff's core, the OpenTelemetry API),
//     the adapter and this package import it directly.
//   - If it is heavy (registry: the schema engine; a contract package with
//     an OpenAPI differ), its storage contract (the Store interface, its row
//     types, its sentinel errors) goes in a package of its own that imports
//     only the standard library, named <feature>/<feature>store, and the
//     feature package names those types as its own with aliases
//     (registry.Store = registrystore.Store). This package and the adapters
//     import only the contract package. registry/registrystore and
//     idempotency/idempotencystore are the two examples.
//   - Write the SQL against [DB] / [Querier] (not *sql.DB), so that it runs
//     over database/sql ([SQL]) and over a pgx pool (adapter/postgres) alike;
//     a store whose transactions the caller's code works in takes a
//     [TxDB] of the caller's transaction type (see InboxStore).
//   - Add the adapter constructors to deps_test.go's lists only with what
//     every user of the adapter needs.
//
// # Migrations
//
// Migrations live in migrations/<dialect>/NNNN_name.sql, embedded in the
// binary; every dialect has the same versions. To add one, add a numbered
// file to each dialect's directory (parallel work is handed version ranges);
// Migrate applies every version not yet recorded in
// handoff_schema_migrations, in order. Statements in a file are separated by
// a semicolon at the end of a line (outside $$ blocks).
package sqlstore
