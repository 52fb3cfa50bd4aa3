package mysql

import (
	"database/sql"

	"github.com/handoffhq/handoff/internal/sqlstore"
	"github.com/handoffhq/handoff/saga"
)

// SagaStore returns the saga coordinator's store in db (after Migrate):
// instances, their timers and leases, and their history, in the database
// the outbox lives in, so a saga's transitions and the commands they send
// commit together.
func SagaStore(db *sql.DB) saga.Store { return sqlstore.NewSagaStore(db, dialect()) }
