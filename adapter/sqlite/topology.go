package sqlite

import (
	"database/sql"

	"github.com/handoffhq/handoff/internal/sqlstore"
	"github.com/handoffhq/handoff/topology/topologystore"
)

// TopologyStore returns the store of the observed topology in db (after
// Migrate), which the instances of a server share (topology.Shared):
// each adds its counts to one row per edge and route.
func TopologyStore(db *sql.DB) topologystore.Store { return sqlstore.NewTopologyStore(db, dialect()) }
