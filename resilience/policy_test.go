package resilience

import (
	"context"
	"errors"
	"strings"
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

func fast(attempts int) *retry.Policy {
	return &retry.Policy{MaxAttempts: attempts, Backoff: retry.Backoff{Initial: time.Millisecond}}
}

func TestPolicy_ZeroValuesAgreeWithPackageRetry(t *testing.T) {
	for _, c := range []struct {
		name string
		p    Policy
		want int
	}{
		{"zero Policy: one attempt", Policy{}, 1},
		{"zero retry.Policy: retry.DefaultMaxAttempts", Policy{Retry: &retry.Policy{Backoff: retry.Backoff{Initial: time.Millisecond}}}, retry.DefaultMaxAttempts},
		{"MaxAttempts 1", Policy{Retry: fast(1)}, 1},
	} {
		calls := 0
		err := c.p.Do(t.Context(), func(context.Context, int) error { calls++; return errDown })
		if !errors.Is(err, errDown) || calls != c.want {
			t.Errorf("%s: Do = %v after %d calls, want %d", c.name, err, calls, c.want)
		}
	}
}

func TestPolicy_RetriesThroughBreakerUntilItOpens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := must(breaker.New("dep", breaker.WithCountWindow(4), breaker.WithMinimumCalls(4)))
		p := &Policy{Retry: fast(10), Breaker: br}
		calls := 0
		err := p.Do(t.Context(), func(context.Context, int) error { calls++; return errDown })
		// Attempts 1-4 fail and open the breaker; attempt 5 is refused,
		// and a refusal is not retried.
		if !errors.Is(err, breaker.ErrOpen) || calls != 4 {
			t.Fatalf("Do = %v after %d calls, want ErrOpen after 4", err, calls)
		}
	})
}

// The order: bulkhead → breaker. A call waiting for a bulkhead slot holds
// no breaker permit, so a half-open breaker's only probe is not stuck in
// the queue.
func TestPolicy_OrderQueuedCallHoldsNoProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := must(breaker.New("dep", breaker.WithMinimumCalls(1), breaker.WithHalfOpenProbes(1), breaker.WithOpenDuration(time.Second)))
		bh := must(bulkhead.New("dep", 1, bulkhead.WithMaxQueue(1)))
		p := &Policy{Bulkhead: bh, Breaker: br}
		_ = p.Do(t.Context(), func(context.Context, int) error { return errDown }) // opens
		time.Sleep(time.Second)                                                    // half-open: one probe

		if err := bh.Acquire(t.Context()); err != nil { // the only slot is taken
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- p.Do(t.Context(), func(context.Context, int) error { return nil }) }()
		synctest.Wait() // queued in the bulkhead
		probe, err := br.Allow()
		if err != nil {
			t.Fatalf("the probe is held by a call waiting for a bulkhead slot: %v", err)
		}
		probe.Release()
		bh.Release()
		if err := <-done; err != nil || br.State() != breaker.Closed {
			t.Fatalf("queued call = %v, breaker %v; want it to probe and close the breaker", err, br.State())
		}
	})
}

// The order: breaker → throttle. An open breaker refuses without counting a
// request in the throttle's window; a throttle refusal gives the breaker's
// permit back (a half-open probe is not wasted) and the bulkhead's slot.
func TestPolicy_OrderRefusalsGiveBackAndCountNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := must(breaker.New("dep"))
		th := must(throttle.New("dep"))
		bh := must(bulkhead.New("dep", 1))
		p := &Policy{Bulkhead: bh, Breaker: br, Throttle: th}
		br.ForceOpen()
		for range 10 {
			if err := p.Do(t.Context(), func(context.Context, int) error { return nil }); !errors.Is(err, breaker.ErrOpen) {
				t.Fatalf("Do = %v, want ErrOpen", err)
			}
		}
		if s := th.Snapshot(); s.Requests != 0 {
			t.Fatalf("the throttle counted %d requests the breaker refused", s.Requests)
		}
		if s := bh.Snapshot(); s.InFlight != 0 {
			t.Fatalf("%d bulkhead slots kept by refused calls", s.InFlight)
		}

		// Half-open with one probe; the throttle refuses everything.
		br2 := must(breaker.New("dep", breaker.WithMinimumCalls(1), breaker.WithHalfOpenProbes(1), breaker.WithOpenDuration(time.Second)))
		th2 := must(throttle.New("dep", throttle.WithK(1)))
		q := &Policy{Bulkhead: bh, Breaker: br2, Throttle: th2}
		_ = q.Do(t.Context(), func(context.Context, int) error { return handoff.Permanent(errDown) }) // accepted, not overload
		for range 50 {
			_ = (&Policy{Throttle: th2}).Do(t.Context(), func(context.Context, int) error { return errDown })
		}
		br2.ForceOpen()
		br2.Reset() // closed again
		_ = q.Do(t.Context(), func(context.Context, int) error { return errDown })
		time.Sleep(time.Second) // half-open
		refused := 0
		for range 20 {
			if err := q.Do(t.Context(), func(context.Context, int) error { return nil }); errors.Is(err, throttle.ErrThrottled) {
				refused++
			}
		}
		if refused == 0 {
			t.Fatal("the throttle refused nothing; the test needs it to")
		}
		if s := bh.Snapshot(); s.InFlight != 0 {
			t.Fatalf("%d bulkhead slots kept after throttle refusals", s.InFlight)
		}
		if st := br2.State(); st == breaker.Open {
			t.Fatal("a throttle refusal was counted as a failure by the breaker")
		}
	})
}

// The timeout bounds the call, not its wait for a bulkhead slot.
func TestPolicy_OrderTimeoutExcludesBulkheadWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bh := must(bulkhead.New("dep", 1, bulkhead.WithMaxQueue(1)))
		p := &Policy{Bulkhead: bh, Timeout: 100 * time.Millisecond}
		if err := bh.Acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(300*time.Millisecond, bh.Release)
		err := p.Do(t.Context(), func(ctx context.Context, _ int) error {
			time.Sleep(50 * time.Millisecond)
			return ctx.Err()
		})
		if err != nil {
			t.Fatalf("Do after 300ms in the queue and a 50ms call under a 100ms timeout = %v", err)
		}
	})
}

func TestPolicy_TimeoutAndDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &Policy{
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

// An attempt's context is cancelled when it returns, unless it keeps it.
func TestKeepContext(t *testing.T) {
	p := &Policy{Timeout: time.Hour}
	var plain, kept context.Context
	var cancel context.CancelFunc
	_ = p.Do(t.Context(), func(ctx context.Context, _ int) error { plain = ctx; return nil })
	_ = p.Do(t.Context(), func(ctx context.Context, _ int) error {
		kept = ctx
		cancel = KeepContext(ctx)
		return nil
	})
	if plain.Err() == nil {
		t.Error("an attempt's context outlived the attempt")
	}
	if kept.Err() != nil {
		t.Fatal("a kept context was cancelled when its attempt returned")
	}
	cancel()
	if kept.Err() == nil {
		t.Error("KeepContext's function did not cancel the context")
	}
	KeepContext(t.Context())() // outside an attempt: a no-op
}

func TestPolicy_PanicFreesBulkheadSlot(t *testing.T) {
	bh := must(bulkhead.New("dep", 1))
	p := &Policy{Bulkhead: bh}
	func() {
		defer func() { _ = recover() }()
		_ = p.Do(t.Context(), func(context.Context, int) error { panic("boom") })
	}()
	if s := bh.Snapshot(); s.InFlight != 0 {
		t.Fatalf("in flight after panic = %d", s.InFlight)
	}
}

// One classification per attempt, followed by every policy.
func TestPolicy_ClassifyDrivesRetryBreakerAndThrottle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errAnswered := errors.New("404") // the dependency answered: no failure, no retry
		errBusy := errors.New("429")     // overload, retry, not a breaker failure
		errBroken := errors.New("500")   // failure, retry
		classify := func(err error) Verdict {
			switch err {
			case errAnswered:
				return 0
			case errBusy:
				return Retry | Overload
			}
			return Retry | Failure
		}
		for _, c := range []struct {
			err              error
			calls            int
			breakerOpen      bool
			throttleAccepted int64
		}{
			{errAnswered, 1, false, 1},
			{errBusy, 3, false, 0},
			{errBroken, 3, true, 3},
		} {
			br := must(breaker.New("dep", breaker.WithCountWindow(3), breaker.WithMinimumCalls(3)))
			p := &Policy{Retry: fast(3), Breaker: br, Classify: classify}
			calls := 0
			_ = p.Do(t.Context(), func(context.Context, int) error { calls++; return c.err })
			// The throttle apart, one attempt at a time (it would refuse
			// retries after refusals by the dependency).
			th := must(throttle.New("dep"))
			for range calls {
				_ = (&Policy{Throttle: th, Classify: classify}).Do(t.Context(), func(context.Context, int) error { return c.err })
			}
			if calls != c.calls || (br.State() == breaker.Open) != c.breakerOpen || th.Snapshot().Accepts != c.throttleAccepted {
				t.Errorf("%v: %d calls, breaker %v, throttle accepts %d; want %d, open %v, %d",
					c.err, calls, br.State(), th.Snapshot().Accepts, c.calls, c.breakerOpen, c.throttleAccepted)
			}
		}
	})
}

// A caller that gives up gives the breaker's permit back unrecorded (a
// half-open probe is not lost) and is not retried.
func TestPolicy_CallerCancelledTeachesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := must(breaker.New("dep", breaker.WithMinimumCalls(1), breaker.WithHalfOpenProbes(1), breaker.WithOpenDuration(time.Second)))
		p := &Policy{Retry: fast(5), Breaker: br}
		_ = p.Do(t.Context(), func(context.Context, int) error { return errDown })
		time.Sleep(time.Second) // half-open
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		err := p.Do(ctx, func(ctx context.Context, _ int) error {
			calls++
			cancel()
			return ctx.Err()
		})
		if !errors.Is(err, context.Canceled) || calls != 1 {
			t.Fatalf("cancelled call: %v after %d calls, want Canceled after 1", err, calls)
		}
		if err := p.Do(t.Context(), func(context.Context, int) error { return nil }); err != nil || br.State() != breaker.Closed {
			t.Fatalf("next call = %v, breaker %v: the probe was lost", err, br.State())
		}
	})
}

func TestPolicy_DefaultClassifyThrottleSeesOverloadOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th := must(throttle.New("dep"))
		p := &Policy{Throttle: th}
		for range 100 {
			_ = p.Do(t.Context(), func(context.Context, int) error { return handoff.Permanent(errDown) })
		}
		if s := th.Snapshot(); s.Requests != 100 || s.Accepts != 100 {
			t.Fatalf("snapshot = %+v: permanent errors must count as accepted", s)
		}
	})
}

// The retry storm, through the whole policy: N offered requests against a
// dependency that always fails make at most (1 + ratio)·N + burst calls.
func TestPolicy_RetryStormIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const offered, ratio, burst = 1000, 0.1, 10
		budget := must(retry.NewBudget(ratio, retry.WithMaxTokens(burst)))
		br := must(breaker.New("dep", breaker.WithMinimumCalls(100), breaker.WithFailureRate(100)))
		br.Disable() // isolate the budget: the breaker would cut load even more
		p := &Policy{Retry: &retry.Policy{MaxAttempts: 4, Budget: budget, Backoff: retry.Backoff{Initial: time.Millisecond}}, Breaker: br}
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

func TestPolicy_HappyPathDoesNotAllocate(t *testing.T) {
	tel := must(NewTelemetry("dep"))
	for _, c := range []struct {
		name string
		obs  Observer
	}{{"no observer", nil}, {"OpenTelemetry observer, no SDK", tel}} {
		br := must(breaker.New("dep"))
		bh := must(bulkhead.New("dep", 100))
		th := must(throttle.New("dep"))
		budget := must(retry.NewBudget(0.1))
		p := &Policy{Retry: &retry.Policy{MaxAttempts: 3, Budget: budget}, Breaker: br, Bulkhead: bh, Throttle: th, Observer: c.obs}
		ctx := context.Background()
		fn := func(context.Context, int) error { return nil }
		if n := testing.AllocsPerRun(1000, func() {
			if err := p.Do(ctx, fn); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: allocs = %v, want 0", c.name, n)
		}
	}
}

func TestPolicy_Validate(t *testing.T) {
	for _, c := range []struct {
		p    Policy
		want string
	}{
		{Policy{Timeout: -1}, "Timeout must be ≥ 0"},
		{Policy{Retry: &retry.Policy{MaxAttempts: -1}}, "Retry: retry: MaxAttempts"},
		{Policy{Retry: &retry.Policy{Backoff: retry.Backoff{Multiplier: 0.5}}}, "Backoff.Multiplier"},
		{Policy{Retry: &retry.Policy{PerTryTimeout: time.Second}}, "Retry.PerTryTimeout: set Policy.Timeout"},
		{Policy{Retry: &retry.Policy{Retryable: retry.IsRetryable}}, "Retry.Retryable: classify attempts with Policy.Classify"},
	} {
		err := c.p.Validate()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate = %v, want one naming %q", err, c.want)
		}
	}
	// Do refuses what the policy owns, rather than ignore it.
	p := &Policy{Retry: &retry.Policy{PerTryTimeout: time.Second}}
	if err := p.Do(t.Context(), func(context.Context, int) error { return nil }); !errors.Is(err, ErrInvalid) {
		t.Errorf("Do with Retry.PerTryTimeout = %v, want ErrInvalid", err)
	}
	if err := (&Policy{Retry: fast(3), Timeout: time.Second}).Validate(); err != nil {
		t.Errorf("a valid policy: %v", err)
	}
}
