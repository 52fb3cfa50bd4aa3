package resilient_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff/resilient"
	"github.com/handoffhq/handoff/retry"
)

func ExampleLoadConfig() {
	_, err := resilient.LoadConfig(strings.NewReader(`
dependencies:
  payments:
    retry: {max_attempts: 0}
    bulkhead: {max_concurrent: 0}
`))
	fmt.Println(err)
	// Output:
	// dependencies.payments.bulkhead.max_concurrent: must be ≥ 1
	// dependencies.payments.retry.max_attempts: must be ≥ 1
}

func ExampleNewTransport() {
	// A flaky dependency behind the server middleware: it fails once, and
	// reports the deadline it was given.
	var calls atomic.Int32
	srv, _ := resilient.NewServer(resilient.WithMaxTimeout(10 * time.Second))
	dep := httptest.NewServer(srv.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, ok := r.Context().Deadline()
		fmt.Fprintf(w, "deadline set: %v", ok)
	})))
	defer dep.Close()

	tr, err := resilient.NewTransport(nil, resilient.WithDefaultPolicy(func(string) (resilient.Policy, error) {
		return resilient.Policy{Retry: retry.Policy{MaxAttempts: 3, Backoff: retry.Backoff{Initial: time.Millisecond}}}, nil
	}))
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", dep.URL, nil)
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, calls.Load(), string(body))
	// Output:
	// 200 2 deadline set: true
}
