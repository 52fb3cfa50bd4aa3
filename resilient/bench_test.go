package resilient_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/bulkhead"
	"github.com/handoffhq/handoff/resilient"
	"github.com/handoffhq/handoff/retry"
)

type okBase struct{}

func (okBase) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(""))}, nil
}

// BenchmarkTransport_HappyPath is the Transport's own cost on a successful
// call (the base answers in memory): breaker, bulkhead, retry with budget,
// per-try timeout, deadline header, no-op tracing and metrics.
func BenchmarkTransport_HappyPath(b *testing.B) {
	br, _ := breaker.New("dep")
	bh, _ := bulkhead.New("dep", 1000)
	budget, _ := retry.NewBudget(0.1)
	for _, bc := range []struct {
		name string
		p    resilient.Policy
		base http.RoundTripper
	}{
		{"base-only", resilient.Policy{}, nil},
		{"composed", resilient.Policy{Retry: retry.Policy{MaxAttempts: 3, Budget: budget}, Breaker: br, Bulkhead: bh}, okBase{}},
		{"composed+per-try", resilient.Policy{Retry: retry.Policy{MaxAttempts: 3, Budget: budget, PerTryTimeout: time.Second}, Breaker: br, Bulkhead: bh}, okBase{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var rt http.RoundTripper = okBase{}
			if bc.base != nil {
				rt = newTransport(b, bc.base, bc.p)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://dep.test/x", nil)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}
