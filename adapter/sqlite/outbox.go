package sqlite

import (
	"database/sql"

	"github.com/handoffhq/handoff/internal/sqlstore"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/relay"
)

// OutboxStore returns the outbox store of db for outbox.New. A relay in the
// same process wakes from the writer's signal (outbox.Writer.Wakeups).
func OutboxStore(db *sql.DB) outbox.Store {
	return sqlstore.NewOutboxStore(sqlstore.SQL(db), dialect(), false)
}

// RelayStore returns the relay's view of db's outbox for relay.New.
func RelayStore(db *sql.DB) relay.Store {
	return sqlstore.NewOutboxStore(sqlstore.SQL(db), dialect(), false)
}
