package postgres

import (
	"database/sql"

	"github.com/handoffhq/handoff/internal/sqlstore"
	"github.com/handoffhq/handoff/registry"
)

// RegistryStore returns the schema registry's store in db (after Migrate).
func RegistryStore(db *sql.DB) registry.Store { return sqlstore.NewRegistryStore(db, dialect()) }
