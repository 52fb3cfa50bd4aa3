package resilience

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/bulkhead"
	"github.com/handoffhq/handoff/retry"
	"github.com/handoffhq/handoff/throttle"
)

var errDown = errors.New("down")

// must unwraps a constructor's result; the options in these tests are valid,
// so an error is a bug in the test itself.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestPipeline_ZeroValueIsOneAttempt(t *testing.T) {
	var p Pipeline
	calls := 0
	err := p.Do(t.Context(), func(_ context.Context, attempt int) error { calls++; return errDown })
	if !errors.Is(err, errDown) || calls != 1 {
		t.Fatalf("Do = %v after %d calls", err, calls)
	}
}

func TestPipeline_RetriesThroughBreakerUntilItOpens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := must(breaker.New("dep", breaker.WithCountWindow(4), breaker.WithMinimumCalls(4)))
		p := &Pipeline{Retry: &retry.Policy{MaxAttempts: 10, Backoff: retry.Backoff{Initial: time.Millisecond}}, Breaker: br}
		calls := 0
		err := p.Do(t.Context(), func(context.Context, int) error { calls++; return errDown })
		// Attempts 1-4 fail and open the breaker; attempt 5 is rejected,
		// and a rejection is not retried.
		if !errors.Is(err, breaker.ErrOpen) || calls != 4 {
			t.Fatalf("Do = %v after %d calls, want ErrOpen after 4", err, calls)
		}
	})
}

func TestPipeline_RejectionsGiveBackEarlierPermits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := must(breaker.New("dep", breaker.WithMinimumCalls(1), breaker.WithHalfOpenProbes(1), breaker.WithOpenDuration(time.Second)))
		bh := must(bulkhead.New("dep", 1))
		p := &Pipeline{Breaker: br, Bulkhead: bh}

		// Open the breaker, wait for half-open: one probe slot.
		_ = p.Do(t.Context(), func(context.Context, int) error { return errDown })
		time.Sleep(time.Second)

		// Hold the only bulkhead slot, so the probe is shed by the bulkhead.
		if err := bh.Acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
		err := p.Do(t.Context(), func(context.Context, int) error { t.Fatal("called"); return nil })
		if !errors.Is(err, bulkhead.ErrFull) {
			t.Fatalf("Do = %v, want ErrFull", err)
		}
		bh.Release()
		// The probe slot was given back, not wasted: the next call probes.
		if err := p.Do(t.Context(), func(context.Context, int) error { return nil }); err != nil {
			t.Fatalf("probe = %v", err)
		}
		if br.State() != breaker.Closed {
			t.Fatalf("breaker = %v, want closed", br.State())
		}
	})
}

func TestPipeline_PerTryTimeoutAndDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &Pipeline{
			Retry:   &retry.Policy{MaxAttempts: 5, MinAttemptTime: 100 * time.Millisecond, Backoff: retry.Backoff{Initial: time.Millisecond, NoJitter: true}},
			Timeout: 200 * time.Millisecond,
		}
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		calls := 0
		err := p.Do(ctx, func(ctx context.Context, attempt int) error {
			calls++
			<-ctx.Done()
			return ctx.Err()
		})
		// 0-200ms, 201-401ms; then 99ms left < MinAttemptTime: no third.
		var ex *retry.ExhaustedError
		if !errors.As(err, &ex) || ex.Reason != retry.ReasonDeadline || calls != 2 {
			t.Fatalf("Do = %v after %d calls", err, calls)
		}
	})
}

func TestPipeline_PanicFreesBulkheadSlot(t *testing.T) {
	bh := must(bulkhead.New("dep", 1))
	p := &Pipeline{Bulkhead: bh}
	func() {
		defer func() { _ = recover() }()
		_ = p.Do(t.Context(), func(context.Context, int) error { panic("boom") })
	}()
	if s := bh.Snapshot(); s.InFlight != 0 {
		t.Fatalf("in flight after panic = %d", s.InFlight)
	}
}

func TestPipeline_ThrottleSeesOverloadOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := must(throttle.New("dep"))
		p := &Pipeline{Throttle: th}
		for range 100 {
			_ = p.Do(t.Context(), func(context.Context, int) error { return handoff.Permanent(errDown) })
		}
		if s := th.Snapshot(); s.Requests != 100 || s.Accepts != 100 {
			t.Fatalf("snapshot = %+v: permanent errors must count as accepted", s)
		}
	})
}

// The retry storm, through the whole pipeline: N offered requests against a
// dependency that always fails make at most (1 + ratio)·N + burst calls.
func TestPipeline_RetryStormIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const offered, ratio, burst = 1000, 0.1, 10
		budget := must(retry.NewBudget(ratio, retry.WithMaxTokens(burst)))
		br := must(breaker.New("dep", breaker.WithMinimumCalls(100), breaker.WithFailureRate(100)))
		br.Disable() // isolate the budget: the breaker would cut load even more
		p := &Pipeline{Retry: &retry.Policy{MaxAttempts: 4, Budget: budget, Backoff: retry.Backoff{Initial: time.Millisecond}}, Breaker: br}
		var calls atomic.Int64
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				for range offered / 10 {
					_ = p.Do(t.Context(), func(context.Context, int) error { calls.Add(1); return errDown })
				}
			})
		}
		wg.Wait()
		if got, limit := calls.Load(), int64((1+ratio)*offered)+burst+10; got > limit {
			t.Fatalf("%d calls for %d offered, want <= %d", got, offered, limit)
		}
	})
}

func TestPipeline_HappyPathDoesNotAllocate(t *testing.T) {
	br := must(breaker.New("dep"))
	bh := must(bulkhead.New("dep", 100))
	budget := must(retry.NewBudget(0.1))
	p := &Pipeline{Retry: &retry.Policy{MaxAttempts: 3, Budget: budget}, Breaker: br, Bulkhead: bh}
	ctx := context.Background()
	fn := func(context.Context, int) error { return nil }
	if n := testing.AllocsPerRun(1000, func() {
		if err := p.Do(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("allocs = %v, want 0", n)
	}
}
