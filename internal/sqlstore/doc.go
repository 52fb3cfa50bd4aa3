// Package sqlstore is the one SQL implementation of inbox.Store and
// dlq.Store behind adapter/postgres, adapter/sqlite and adapter/mysql,
// parameterised by a small [Dialect], and the versioned schema migrations
// they share.
//
// Migrations live in migrations/<dialect>/NNNN_name.sql, embedded in the
// binary. To add one, add the next numbered file to each dialect's
// directory; Migrate applies every file above the version recorded in
// handoff_schema_migrations, in order. Statements in a file are separated by
// a semicolon at the end of a line (outside $$ blocks).
package sqlstore
