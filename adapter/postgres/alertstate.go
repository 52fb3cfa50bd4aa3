package postgres

import (
	"database/sql"

	"github.com/handoffhq/handoff/alert/alertstate"
	"github.com/handoffhq/handoff/internal/sqlstore"
)

// AlertState returns the state of the alerts firing among the processes
// that share db (after Migrate): pass it to alert.WithState so that each
// episode of an alert is notified once, whichever process sees it first,
// and not again after a restart.
func AlertState(db *sql.DB) alertstate.Store { return sqlstore.NewAlertState(db, dialect()) }
