package resiliencebench

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	fsbulkhead "github.com/failsafe-go/failsafe-go/bulkhead"
	fscircuit "github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafehttp"

	"github.com/handoffhq/handoff/bulkhead"
	"github.com/handoffhq/handoff/resilience"
	"github.com/handoffhq/handoff/resiliencehttp"
	"github.com/handoffhq/handoff/retry"
)

// memoryRT is the dependency, in memory: every request gets a fresh 200
// response with an empty body, as a real RoundTripper would make one.
type memoryRT struct{}

func (memoryRT) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(""))}, nil
}

// The HTTP path: an http.Client whose transport applies breaker + bulkhead
// + retry (configured alike for both: see resilience_test.go) to a request
// answered in memory, against the same client with no policies.
func httpClients(tb testing.TB) map[string]*http.Client {
	bh, err := bulkhead.New("bench", concurrency)
	if err != nil {
		tb.Fatal(err)
	}
	tr, err := resiliencehttp.NewTransport(memoryRT{}, resiliencehttp.WithPolicy("dep.test", resiliencehttp.Policy{Policy: resilience.Policy{
		Retry:    &retry.Policy{MaxAttempts: attempts, Backoff: retry.Backoff{Initial: 100 * time.Millisecond, Max: 30 * time.Second}},
		Breaker:  handoffBreaker(tb),
		Bulkhead: bh,
	}}))
	if err != nil {
		tb.Fatal(err)
	}
	fsRetry := failsafehttp.NewRetryPolicyBuilder().WithMaxAttempts(attempts).
		WithBackoff(100*time.Millisecond, 30*time.Second).WithJitterFactor(1).Build()
	fsBreaker := fscircuit.NewBuilder[*http.Response]().
		HandleIf(func(r *http.Response, err error) bool { return err != nil || r.StatusCode >= 500 }).
		WithFailureThresholdRatio(window/2, window).WithDelay(openFor).WithSuccessThreshold(probes).Build()
	fsRT := failsafehttp.NewRoundTripper(memoryRT{}, fsRetry, fsBreaker, fsbulkhead.New[*http.Response](concurrency))
	return map[string]*http.Client{
		"plain":    {Transport: memoryRT{}},
		"handoff":  {Transport: tr},
		"failsafe": {Transport: fsRT},
	}
}

func get(b *testing.B, c *http.Client, req *http.Request) {
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
}

func benchHTTP(b *testing.B, deadline, parallel bool) {
	clients := httpClients(b)
	for _, name := range []string{"plain", "handoff", "failsafe"} {
		c := clients[name]
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			if deadline {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Hour)
				defer cancel()
			}
			req, err := http.NewRequestWithContext(ctx, "GET", "http://dep.test/x", nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			if parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						get(b, c, req)
					}
				})
				return
			}
			for b.Loop() {
				get(b, c, req)
			}
		})
	}
}

// BenchmarkHTTP: one GET through http.Client, no deadline on the request.
func BenchmarkHTTP(b *testing.B) { benchHTTP(b, false, false) }

// BenchmarkHTTPDeadline: the request's context has a deadline, which
// handoff's transport propagates (Request-Timeout header, a copy of the
// request); failsafehttp does not propagate it.
func BenchmarkHTTPDeadline(b *testing.B) { benchHTTP(b, true, false) }

func BenchmarkHTTPParallel(b *testing.B) { benchHTTP(b, false, true) }
