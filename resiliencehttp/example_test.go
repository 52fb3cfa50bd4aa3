package resiliencehttp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/resilience"
	"github.com/handoffhq/handoff/resiliencehttp"
	"github.com/handoffhq/handoff/retry"
)

func ExampleLoadConfig() {
	_, err := resiliencehttp.LoadConfig(strings.NewReader(`
dependencies:
  payments:
    retry: {max_attempts: -1}
    bulkhead: {max_concurrent: 0}
`))
	fmt.Println(err)
	// Output:
	// dependencies.payments.bulkhead.max_concurrent: bulkhead: New: maxConcurrent must be >= 1, got 0
	// dependencies.payments.retry.max_attempts: retry: MaxAttempts must be ≥ 1, or 0 for 3, got -1
}

func ExampleNewTransport() {
	// A flaky dependency behind the server middleware: it fails once, and
	// reports the deadline it was given.
	var calls atomic.Int32
	srv, _ := resiliencehttp.NewServer(resiliencehttp.WithMaxTimeout(10 * time.Second))
	dep := httptest.NewServer(srv.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, ok := r.Context().Deadline()
		fmt.Fprintf(w, "deadline set: %v", ok)
	})))
	defer dep.Close()

	tr, err := resiliencehttp.NewTransport(nil, resiliencehttp.WithDefaultPolicy(func(string) (resiliencehttp.Policy, error) {
		return resiliencehttp.Policy{Policy: resilience.Policy{Retry: &retry.Policy{MaxAttempts: 3, Backoff: retry.Backoff{Initial: time.Millisecond}}}}, nil
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

// The client side's minimal call sequence: a retry policy with a budget and
// a breaker for one host.
func ExampleWithPolicy() {
	budget, _ := retry.NewBudget(0.1)
	br, _ := breaker.New("payments")
	tr, _ := resiliencehttp.NewTransport(nil, resiliencehttp.WithPolicy("payments.internal:8443", resiliencehttp.Policy{
		Policy: resilience.Policy{Retry: &retry.Policy{MaxAttempts: 3, MinAttemptTime: 50 * time.Millisecond, Budget: budget},
			Breaker: br, Timeout: time.Second},
	}))
	client := &http.Client{Transport: tr}
	_, _ = client.Get("https://payments.internal:8443/v1/charges/7")
}

// The server side: each request's deadline is the caller's, at most ten
// seconds, and at most 200 are handled at once.
func ExampleServer_Wrap() {
	addr, mux := "127.0.0.1:8080", http.NewServeMux()
	srv, _ := resiliencehttp.NewServer(resiliencehttp.WithMaxTimeout(10*time.Second), resiliencehttp.WithMaxInFlight(200))
	http.ListenAndServe(addr, srv.Wrap(mux))
}
