// Package resiliencebench compares the per-call overhead of handoff's
// resilience policies with sony/gobreaker v2 and failsafe-go, configured
// alike, on the happy path (every call succeeds): the breaker alone, the
// composition core alone (resilience.Policy against failsafe-go's
// executor), and the path users run, an HTTP request through the transport
// (resiliencehttp against failsafehttp and a plain http.Client).
package resiliencebench

import (
	"context"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	fsbulkhead "github.com/failsafe-go/failsafe-go/bulkhead"
	fscircuit "github.com/failsafe-go/failsafe-go/circuitbreaker"
	fsretry "github.com/failsafe-go/failsafe-go/retrypolicy"
	fstimeout "github.com/failsafe-go/failsafe-go/timeout"
	"github.com/sony/gobreaker/v2"

	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/bulkhead"
	"github.com/handoffhq/handoff/resilience"
	"github.com/handoffhq/handoff/retry"
)

// The common configuration: a count window of 100 calls, open at 50%
// failures once the window is full, 30s open, 5 half-open probes; a bulkhead
// of 100 concurrent calls; 3 attempts with exponential backoff 100ms..30s;
// a per-try timeout of 1s in the *Timeout variants.
const (
	window      = 100
	openFor     = 30 * time.Second
	probes      = 5
	concurrency = 100
	attempts    = 3
	perTry      = time.Second
)

func handoffBreaker(tb testing.TB) *breaker.Breaker {
	b, err := breaker.New("bench",
		breaker.WithCountWindow(window), breaker.WithFailureRate(50), breaker.WithMinimumCalls(window),
		breaker.WithOpenDuration(openFor), breaker.WithHalfOpenProbes(probes))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// gobreaker has no count-based sliding window: with Interval 0 its counts
// are cumulative while closed; ReadyToTrip applies the same rule.
func goBreaker() *gobreaker.CircuitBreaker[struct{}] {
	return gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "bench",
		MaxRequests: probes,
		Timeout:     openFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.Requests >= window && c.TotalFailures*2 >= c.Requests
		},
	})
}

func failsafeBreaker() fscircuit.CircuitBreaker[any] {
	return fscircuit.NewBuilder[any]().
		WithFailureThresholdRatio(window/2, window). // 50 of the last 100
		WithDelay(openFor).
		WithSuccessThreshold(probes).
		Build()
}

func ok() error { return nil }

func okCtx(context.Context, int) error { return nil }

func BenchmarkBreaker(b *testing.B) {
	b.Run("handoff", func(b *testing.B) {
		br := handoffBreaker(b)
		b.ReportAllocs()
		for b.Loop() {
			p, err := br.Allow()
			if err != nil {
				b.Fatal(err)
			}
			p.Done(ok())
		}
	})
	// Not comparable with the peers' configuration, shown for the cost of
	// the coarse clock: a 60s time window, and slow-call detection.
	for _, v := range []struct {
		name string
		opt  breaker.Option
	}{
		{"handoff-timewindow", breaker.WithTimeWindow(time.Minute)},
		{"handoff-slowcalls", breaker.WithSlowCalls(time.Second, 50)},
	} {
		b.Run(v.name, func(b *testing.B) {
			br, err := breaker.New("bench", v.opt)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				p, err := br.Allow()
				if err != nil {
					b.Fatal(err)
				}
				p.Done(ok())
			}
		})
	}
	b.Run("handoff-Do", func(b *testing.B) {
		br := handoffBreaker(b)
		ctx := context.Background()
		fn := func(context.Context) error { return nil }
		b.ReportAllocs()
		for b.Loop() {
			if err := br.Do(ctx, fn); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gobreaker", func(b *testing.B) {
		cb := goBreaker()
		fn := func() (struct{}, error) { return struct{}{}, nil }
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cb.Execute(fn); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("failsafe", func(b *testing.B) {
		ex := failsafe.With[any](failsafeBreaker())
		b.ReportAllocs()
		for b.Loop() {
			if err := ex.Run(ok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkBreakerParallel(b *testing.B) {
	b.Run("handoff", func(b *testing.B) {
		br := handoffBreaker(b)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p, err := br.Allow()
				if err != nil {
					b.Error(err)
					return
				}
				p.Done(ok())
			}
		})
	})
	b.Run("gobreaker", func(b *testing.B) {
		cb := goBreaker()
		fn := func() (struct{}, error) { return struct{}{}, nil }
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := cb.Execute(fn); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("failsafe", func(b *testing.B) {
		ex := failsafe.With[any](failsafeBreaker())
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := ex.Run(ok); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func handoffPolicy(tb testing.TB, timeout time.Duration) *resilience.Policy {
	bh, err := bulkhead.New("bench", concurrency)
	if err != nil {
		tb.Fatal(err)
	}
	return &resilience.Policy{
		Retry:    &retry.Policy{MaxAttempts: attempts, Backoff: retry.Backoff{Initial: 100 * time.Millisecond, Max: 30 * time.Second}},
		Breaker:  handoffBreaker(tb),
		Bulkhead: bh,
		Timeout:  timeout,
	}
}

func failsafeExecutor(timeout time.Duration) failsafe.Executor[any] {
	policies := []failsafe.Policy[any]{
		fsretry.NewBuilder[any]().WithMaxAttempts(attempts).WithBackoff(100*time.Millisecond, 30*time.Second).WithJitterFactor(1).Build(),
		failsafeBreaker(),
		fsbulkhead.New[any](concurrency),
	}
	if timeout > 0 {
		policies = append(policies, fstimeout.New[any](timeout))
	}
	return failsafe.With(policies...)
}

func failsafeCtx(exec failsafe.Execution[any]) error {
	_ = exec.Context()
	return nil
}

func benchComposed(b *testing.B, timeout time.Duration, parallel bool) {
	b.Run("handoff", func(b *testing.B) {
		p := handoffPolicy(b, timeout)
		ctx := context.Background()
		b.ReportAllocs()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := p.Do(ctx, okCtx); err != nil {
						b.Error(err)
						return
					}
				}
			})
			return
		}
		for b.Loop() {
			if err := p.Do(ctx, okCtx); err != nil {
				b.Fatal(err)
			}
		}
	})
	if !parallel && timeout == 0 {
		b.Run("handoff+budget", func(b *testing.B) {
			p := handoffPolicy(b, timeout)
			budget, err := retry.NewBudget(0.1)
			if err != nil {
				b.Fatal(err)
			}
			p.Retry.Budget = budget
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Do(ctx, okCtx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("failsafe", func(b *testing.B) {
		ex := failsafeExecutor(timeout)
		b.ReportAllocs()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := ex.RunWithExecution(failsafeCtx); err != nil {
						b.Error(err)
						return
					}
				}
			})
			return
		}
		for b.Loop() {
			if err := ex.RunWithExecution(failsafeCtx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkComposed: the composition core alone, retry + bulkhead + breaker
// (resilience.Policy.Do against failsafe.With(retry, breaker, bulkhead)),
// no per-try timeout.
func BenchmarkComposed(b *testing.B) { benchComposed(b, 0, false) }

// BenchmarkComposedTimeout adds a per-try timeout of 1s. Its "WithTimeout"
// sub-benchmark is the yardstick, run next to the others so that load on a
// shared machine affects all alike: one context.WithTimeout and its cancel.
func BenchmarkComposedTimeout(b *testing.B) {
	benchComposed(b, perTry, false)
	b.Run("WithTimeout", benchWithTimeout)
}

func benchWithTimeout(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, cancel := context.WithTimeout(ctx, perTry)
		cancel()
	}
}

func BenchmarkComposedParallel(b *testing.B) { benchComposed(b, 0, true) }

func BenchmarkComposedTimeoutParallel(b *testing.B) { benchComposed(b, perTry, true) }

// BenchmarkReference measures the yardsticks the targets are stated in.
func BenchmarkReference(b *testing.B) {
	b.Run("context.WithTimeout", benchWithTimeout)
	b.Run("time.Now", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = time.Now()
		}
	})
}

// TestPeersAgreeOnTripping checks that the peers are configured alike: 100
// calls at 50% failures open every breaker.
func TestPeersAgreeOnTripping(t *testing.T) {
	hb := handoffBreaker(t)
	gb := goBreaker()
	fb := failsafeBreaker()
	fex := failsafe.With[any](fb)
	fail := func(i int) error {
		if i%2 == 1 { // the 100th call fails: gobreaker evaluates only on failures
			return context.DeadlineExceeded
		}
		return nil
	}
	for i := range window {
		_ = hb.Do(context.Background(), func(context.Context) error { return fail(i) })
		_, _ = gb.Execute(func() (struct{}, error) { return struct{}{}, fail(i) })
		_ = fex.Run(func() error { return fail(i) })
	}
	if hb.State() != breaker.Open || gb.State() != gobreaker.StateOpen || !fb.IsOpen() {
		t.Fatalf("after 100 calls at 50%%: handoff %v, gobreaker %v, failsafe open %v", hb.State(), gb.State(), fb.IsOpen())
	}
}
