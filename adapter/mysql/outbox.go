package mysql

import (
	"database/sql"

	"github.com/handoffhq/handoff/internal/sqlstore"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/relay"
)

// OutboxStore returns the outbox store of db for outbox.New. Writes of one
// partition key take a row lock on the key, so under REPEATABLE READ and
// READ COMMITTED alike they commit one after the other.
func OutboxStore(db *sql.DB) outbox.Store {
	return sqlstore.NewOutboxStore(sqlstore.SQL(db), dialect(), false)
}

// RelayStore returns the relay's view of db's outbox for relay.New.
func RelayStore(db *sql.DB) relay.Store {
	return sqlstore.NewOutboxStore(sqlstore.SQL(db), dialect(), false)
}
