// Command registry-pg serves the schema registry on PostgreSQL: the one
// combination that links the schema engine. It is built, not run, to
// measure what it links (see ../README.md).
package main

import (
	"context"
	"net/http"
	"os"

	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/registry"
)

func main() {
	ctx := context.Background()
	db, err := postgres.Open(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		panic(err)
	}
	_ = postgres.Migrate(ctx, db)
	srv, err := registry.NewServer(postgres.RegistryStore(db))
	if err != nil {
		panic(err)
	}
	_ = http.ListenAndServe(":8081", srv)
}
