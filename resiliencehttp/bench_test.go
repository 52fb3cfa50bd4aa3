package resiliencehttp_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/bulkhead"
	"github.com/handoffhq/handoff/resilience"
	"github.com/handoffhq/handoff/resiliencehttp"
	"github.com/handoffhq/handoff/retry"
	"github.com/handoffhq/handoff/throttle"
)

type okBase struct{}

func (okBase) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(""))}, nil
}

// staticBase answers every request with the same response, allocating
// nothing, so that what a test counts is the Transport's own.
type staticBase struct{ resp *http.Response }

type nopBody struct{}

func (nopBody) Read([]byte) (int, error) { return 0, io.EOF }
func (nopBody) Close() error             { return nil }

func (s staticBase) RoundTrip(*http.Request) (*http.Response, error) { return s.resp, nil }

func composed(tb testing.TB) resiliencehttp.Policy {
	br, _ := breaker.New("dep")
	bh, _ := bulkhead.New("dep", 1000)
	th, _ := throttle.New("dep")
	budget, _ := retry.NewBudget(0.1)
	return resiliencehttp.Policy{Policy: resilience.Policy{Retry: &retry.Policy{MaxAttempts: 3, Budget: budget}, Breaker: br, Bulkhead: bh, Throttle: th}}
}

// The happy path adds no allocation to the request's own: breaker,
// bulkhead, throttle, retry with a budget and the OpenTelemetry observer
// (no SDK installed). A deadline to propagate costs a copy of the request
// and its header (Request-Timeout), and a per-try timeout one
// context.WithTimeout: those are measured by the benchmark, not held to 0.
func TestTransport_HappyPathAllocatesNothing(t *testing.T) {
	base := staticBase{&http.Response{StatusCode: 200, Header: http.Header{}, Body: nopBody{}}}
	tr := newTransport(t, base, composed(t))
	req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://dep.test/x", nil)
	if n := testing.AllocsPerRun(1000, func() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}); n != 0 {
		t.Fatalf("allocs per request = %v, want 0", n)
	}
}

// BenchmarkTransport_HappyPath is the Transport's own cost on a successful
// call (the base answers in memory): breaker, bulkhead, throttle, retry
// with budget, no-op tracing and metrics; with a deadline to propagate; and
// with a per-try timeout. The comparison with peers is in bench/resilience.
func BenchmarkTransport_HappyPath(b *testing.B) {
	for _, bc := range []struct {
		name     string
		p        resiliencehttp.Policy
		deadline bool
		base     bool
	}{
		{"base-only", resiliencehttp.Policy{}, false, true},
		{"composed", composed(b), false, false},
		{"composed+deadline", composed(b), true, false},
		{"composed+deadline+per-try", func() resiliencehttp.Policy { p := composed(b); p.Timeout = time.Second; return p }(), true, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var rt http.RoundTripper = okBase{}
			if !bc.base {
				rt = newTransport(b, okBase{}, bc.p)
			}
			ctx := context.Background()
			if bc.deadline {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Hour)
				defer cancel()
			}
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
