package mysql

import (
	"database/sql"

	"github.com/handoffhq/handoff/idempotency/idempotencystore"
	"github.com/handoffhq/handoff/internal/sqlstore"
)

// IdempotencyStore returns the store of the Idempotency-Key middleware
// (package idempotency) in db, after Migrate. It imports only the
// middleware's storage contract (package idempotencystore), not the
// middleware.
func IdempotencyStore(db *sql.DB) idempotencystore.Store {
	return sqlstore.NewIdempotencyStore(sqlstore.SQL(db), dialect())
}
