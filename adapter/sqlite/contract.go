package sqlite

import (
	"database/sql"

	"github.com/handoffhq/handoff/contract/broker"
	"github.com/handoffhq/handoff/internal/sqlstore"
)

// ContractStore returns the contract broker's store in db (after Migrate).
func ContractStore(db *sql.DB) broker.Store { return sqlstore.NewContractStore(db, dialect()) }
