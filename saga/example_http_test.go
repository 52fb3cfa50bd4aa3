package saga_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/saga"
)

// The sagas' HTTP API, mounted under /sagas: an operator's coordinator
// needs no definitions to list, show, retry, skip or abort sagas.
func ExampleNewHandler() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "saga-http")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "handoff.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	if err := sqlite.Migrate(ctx, db); err != nil {
		fmt.Println(err)
		return
	}
	c, err := saga.New(sqlite.SagaStore(db))
	if err != nil {
		fmt.Println(err)
		return
	}
	h, err := saga.NewHandler(c, saga.WithOperations())
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/sagas/", http.StripPrefix("/sagas", h))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, path := range []string{"/sagas/?status=stuck", "/sagas/order-1", "/sagas/?status=lost"} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			fmt.Println(err)
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Printf("%s %s", res.Status, b)
	}
	// Output:
	// 200 OK {"sagas":[]}
	// 404 Not Found {"error":"no saga order-1"}
	// 400 Bad Request {"error":"status: \"lost\" must be one of running, compensating, stuck, completed, compensated, aborted"}
}
