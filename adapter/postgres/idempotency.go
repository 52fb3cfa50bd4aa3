package postgres

import (
	"github.com/handoffhq/handoff/idempotency/idempotencystore"
	"github.com/handoffhq/handoff/internal/sqlstore"
)

// IdempotencyStore returns the store of the Idempotency-Key middleware
// (package idempotency) in db (a *sql.DB or a *pgxpool.Pool), after
// Migrate. It imports only the middleware's storage contract (package
// idempotencystore), not the middleware. The store is an idempotency.Purger: delete expired
// records from time to time.
func IdempotencyStore[D DB](db D) idempotencystore.Store {
	return sqlstore.NewIdempotencyStore(conn(db), dialect())
}
