package health_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"

	"github.com/handoffhq/handoff/health"
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
