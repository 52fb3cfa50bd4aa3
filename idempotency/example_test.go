package idempotency_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/idempotency"
)

func Example() {
	mw, err := idempotency.New(new(idempotency.MemoryStore))
	if err != nil {
		panic(err)
	}
	transfers := 0
	h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		transfers++
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "transfer #%d", transfers)
	}))
	send := func(body string) {
		req := httptest.NewRequest("POST", "/transfers", strings.NewReader(body))
		req.Header.Set("Idempotency-Key", `"a2f0c1"`)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		line := fmt.Sprint(rec.Code, " ", strings.TrimSpace(rec.Body.String()), " ", rec.Header().Get("Idempotent-Replayed"))
		fmt.Println(strings.TrimSpace(line))
	}
	send("amount=30")
	send("amount=30") // a retry: replayed
	send("amount=99") // same key, different request
	fmt.Println("transfers:", transfers)
	// Output:
	// 201 transfer #1
	// 201 transfer #1 true
	// 422 Idempotency-Key was used with a different request
	// transfers: 1
}

// The middleware on a PostgreSQL store, in front of one route (it needs the
// database, so it is not run here).
func ExampleMiddleware_Wrap() {
	ctx := context.Background()
	db, err := postgres.Open(ctx, "postgres://app@db/app")
	if err != nil {
		panic(err)
	}
	if err := postgres.Migrate(ctx, db); err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	transfers := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })

	store := postgres.IdempotencyStore(db) // after postgres.Migrate; or sqlite, mysql, adapter/redis, MemoryStore
	mw, _ := idempotency.New(store, idempotency.WithWait(5*time.Second))
	mux.Handle("POST /transfers", mw.Wrap(transfers))
}
