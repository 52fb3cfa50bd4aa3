package main

import (
	"database/sql"
	"log/slog"
	"net/http"
	"strings"

	"github.com/handoffhq/handoff/adapter/mysql"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/internal/httpguard"
	"github.com/handoffhq/handoff/metrics"
	"github.com/handoffhq/handoff/saga"
)

// sagaStores are the adapters' saga stores (kept here, beside the other
// adapter funcs of open.go, so that the saga commands stay in their files).
var sagaStores = map[dbKind]func(*sql.DB) saga.Store{
	postgresDB: postgres.SagaStore,
	mysqlDB:    mysql.SagaStore,
	sqliteDB:   sqlite.SagaStore,
}

func (d *database) sagaStore() saga.Store { return sagaStores[d.kind](d.DB) }

// sagaCoordinator is an operator's coordinator over db: it has no
// definitions and runs nothing; it lists, shows, retries, skips and aborts
// sagas, and the services' coordinators take a retried or skipped saga on.
func sagaCoordinator(db *database, log *slog.Logger) (*saga.Coordinator, error) {
	opts := []saga.Option{saga.WithOwner("handoff-operator")}
	if log != nil {
		opts = append(opts, saga.WithLogger(log))
	}
	return saga.New(db.sagaStore(), opts...)
}

// mountSagas mounts the sagas' API (saga.Handler, with retry, skip and
// abort) at /sagas on mux, counted by m.
func mountSagas(mux *http.ServeMux, db *database, m *metrics.Metrics, log *slog.Logger) error {
	c, err := sagaCoordinator(db, log)
	if err != nil {
		return err
	}
	h, err := saga.NewHandler(c, saga.WithOperations())
	if err != nil {
		return err
	}
	api := m.Handler("/sagas", http.StripPrefix("/sagas", h))
	mux.Handle("/sagas", api)
	mux.Handle("/sagas/", api)
	return nil
}

// sagaNeed is the scope a change to a saga needs (reads need read):
// retrying and skipping write, aborting (which gives up on the saga's
// remaining compensations for good) admin.
func sagaNeed(r *http.Request) httpguard.Scope {
	if strings.HasSuffix(strings.TrimRight(r.URL.Path, "/"), "/abort") {
		return httpguard.ScopeAdmin
	}
	return httpguard.ScopeWrite
}
