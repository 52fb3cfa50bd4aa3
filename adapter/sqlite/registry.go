package sqlite

import (
	"database/sql"

	"github.com/handoffhq/handoff/internal/sqlstore"
	"github.com/handoffhq/handoff/registry/registrystore"
)

// RegistryStore returns the schema registry's store in db (after Migrate),
// for registry.NewServer. It imports only the registry's storage contract
// (package registrystore), not the schema engine.
func RegistryStore(db *sql.DB) registrystore.Store { return sqlstore.NewRegistryStore(db, dialect()) }
