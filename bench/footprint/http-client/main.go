// Command http-client is a resilient HTTP client: breaker, bulkhead and
// retry with a budget through resiliencehttp. It is built, not run, to
// measure what it links (see ../README.md).
package main

import (
	"net/http"

	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/bulkhead"
	"github.com/handoffhq/handoff/resilience"
	"github.com/handoffhq/handoff/resiliencehttp"
	"github.com/handoffhq/handoff/retry"
)

func main() {
	br, _ := breaker.New("payments")
	bh, _ := bulkhead.New("payments", 20)
	budget, _ := retry.NewBudget(0.1)
	tr, err := resiliencehttp.NewTransport(nil, resiliencehttp.WithPolicy("payments.internal", resiliencehttp.Policy{
		Policy: resilience.Policy{Retry: &retry.Policy{MaxAttempts: 3, Budget: budget}, Breaker: br, Bulkhead: bh},
	}))
	if err != nil {
		panic(err)
	}
	resp, err := (&http.Client{Transport: tr}).Get("http://payments.internal/health")
	if err == nil {
		resp.Body.Close()
	}
}
