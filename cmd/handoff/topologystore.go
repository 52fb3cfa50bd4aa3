package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/handoffhq/handoff/adapter/mysql"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/topology"
)

// topologyFlags are serve's settings of the observed topology, which the
// instances sharing a database share through it (topology.Shared).
type topologyFlags struct {
	flush, cache, retention time.Duration
}

func (f *topologyFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&f.flush, "topology-flush", topology.DefaultFlushInterval,
		"how often the edges observed from /v1/traces are added to the database, where every instance reads them")
	fs.DurationVar(&f.cache, "topology-cache", topology.DefaultCacheTTL,
		"how long a read of the observed edges serves /topology (0: read the database every time)")
	fs.DurationVar(&f.retention, "topology-retention", topology.DefaultRetention,
		"observed edges not seen for this long leave /topology and the database")
}

// open returns the shared observed graph over declared, in db.
func (f *topologyFlags) open(db *database, declared *topology.Graph, log *slog.Logger) (*topology.Shared, error) {
	switch {
	case f.flush <= 0:
		return nil, fmt.Errorf("--topology-flush %v: must be > 0", f.flush)
	case f.cache < 0:
		return nil, fmt.Errorf("--topology-cache %v: must be >= 0", f.cache)
	case f.retention <= 0:
		return nil, fmt.Errorf("--topology-retention %v: must be > 0", f.retention)
	}
	return topology.NewShared(db.topologyStore(), topology.WithDeclared(declared), topology.WithLogger(log),
		topology.WithFlushInterval(f.flush), topology.WithCacheTTL(f.cache), topology.WithRetention(f.retention))
}

func (d *database) topologyStore() topology.Store {
	switch d.kind {
	case postgresDB:
		return postgres.TopologyStore(d.DB)
	case mysqlDB:
		return mysql.TopologyStore(d.DB)
	}
	return sqlite.TopologyStore(d.DB)
}

// sharedTopologyHandler serves the shared graph as topologyHandler serves
// a graph; a database that cannot be read is a 503.
func sharedTopologyHandler(s *topology.Shared) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g, err := s.Graph(r.Context())
		if err != nil {
			http.Error(w, "topology: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		topologyHandler(g).ServeHTTP(w, r)
	})
}
