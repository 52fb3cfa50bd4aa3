package health_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/handoffhq/handoff/health"
	"github.com/handoffhq/handoff/relay"
)

func ExampleHandler() {
	h := &health.Handler{Checks: []health.Check{
		{Name: "database", Func: func(context.Context) error { return nil }}, // db.PingContext
		{Name: "relay", Func: func(context.Context) error { return errors.New("broker unreachable") }},
	}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL + "/healthz")
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(res.StatusCode)
	fmt.Print(string(body))
	// Output:
	// 503
	// {"status":"unavailable","checks":{"database":"ok","relay":"broker unreachable"}}
}

// The checks of a service with a database and a relay (they need both, so
// this is not run).
func ExampleCheck() {
	var (
		db  *sql.DB      // postgres.Open(ctx, dsn)
		r   *relay.Relay // relay.New(postgres.RelayStore(db), broker)
		mux = http.NewServeMux()
	)
	h := &health.Handler{Checks: []health.Check{
		{Name: "database", Func: db.PingContext},
		{Name: "relay", Func: func(context.Context) error { return r.Health() }},
	}}
	mux.Handle("GET /healthz", h)
}
