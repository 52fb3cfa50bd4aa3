package retry

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// With the dependency always failing, a retry storm is prevented: the total
// load stays within (1 + ratio) of the offered load, plus the bucket's burst.
func TestBudget_PreventsRetryStorm(t *testing.T) {
	for _, ratio := range []float64{0, 0.1, 0.2, 0.5} {
		synctest.Test(t, func(t *testing.T) {
			budget, err := NewBudget(ratio, WithMaxTokens(5))
			if err != nil {
				t.Fatal(err)
			}
			ev := &events{}
			p := Policy{MaxAttempts: 5, Budget: budget, Backoff: Backoff{Initial: time.Millisecond}, Listener: ev}
			const offered = 2000
			var calls atomic.Int64
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() {
					for range offered / 20 {
						_ = p.Do(t.Context(), func(context.Context, int) error {
							calls.Add(1)
							return errTransient
						})
					}
				})
			}
			wg.Wait()
			limit := int64((1+ratio)*offered) + 5 + 20 // burst + one deposit overshoot per goroutine
			if got := calls.Load(); got > limit {
				t.Fatalf("ratio %v: %d calls for %d offered, want <= %d", ratio, got, offered, limit)
			}
			if got := calls.Load(); got < offered {
				t.Fatalf("ratio %v: %d calls, fewer than the %d offered", ratio, got, offered)
			}
			exhausted := 0
			for _, k := range ev.kinds() {
				if k == EventBudgetExhausted {
					exhausted++
				}
			}
			if exhausted == 0 {
				t.Fatalf("ratio %v: no budget_exhausted event", ratio)
			}
		})
	}
}

func TestBudget_WithoutBudgetTheStormMultiplies(t *testing.T) {
	p := Policy{MaxAttempts: 3, Backoff: Backoff{Initial: time.Nanosecond, Max: time.Nanosecond}}
	calls := 0
	for range 100 {
		_ = p.Do(t.Context(), func(context.Context, int) error { calls++; return errTransient })
	}
	if calls != 300 {
		t.Fatalf("calls = %d, want 300 (the control case)", calls)
	}
}

func TestBudget_TokensSequence(t *testing.T) {
	b, _ := NewBudget(0.25, WithMaxTokens(2))
	steps := []struct {
		op   string
		want bool
		tok  float64
	}{
		{"w", true, 1}, {"w", true, 0}, {"w", false, 0},
		{"d", true, 0.25}, {"d", true, 0.5}, {"d", true, 0.75}, {"w", false, 0.75},
		{"d", true, 1}, {"w", true, 0},
		{"d", true, 0.25}, {"d", true, 0.5}, {"d", true, 0.75}, {"d", true, 1}, {"d", true, 1.25},
		{"d", true, 1.5}, {"d", true, 1.75}, {"d", true, 2}, {"d", true, 2}, // capped
	}
	for i, s := range steps {
		if s.op == "w" {
			if got := b.Withdraw(); got != s.want {
				t.Fatalf("step %d: Withdraw = %v, want %v", i, got, s.want)
			}
		} else {
			b.Deposit()
		}
		if got := b.Tokens(); got != s.tok {
			t.Fatalf("step %d: tokens = %v, want %v", i, got, s.tok)
		}
	}
}

func TestBudget_MinRetriesPerSecondRefills(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := NewBudget(0, WithMaxTokens(3), WithMinRetriesPerSecond(2))
		for range 3 {
			if !b.Withdraw() {
				t.Fatal("initial burst refused")
			}
		}
		if b.Withdraw() {
			t.Fatal("empty budget allowed a retry")
		}
		time.Sleep(500 * time.Millisecond)
		if !b.Withdraw() {
			t.Fatal("no refill after 500ms at 2/s")
		}
		if b.Withdraw() {
			t.Fatal("refill gave more than one token in 500ms")
		}
		time.Sleep(time.Hour)
		if got := b.Tokens(); got != 3 {
			t.Fatalf("tokens after an hour = %v, want capped at 3", got)
		}
	})
}

func TestNewBudget_RejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		ratio float64
		opt   BudgetOption
	}{{-0.1, nil}, {11, nil}, {0.1, WithMaxTokens(0)}, {0.1, WithMinRetriesPerSecond(-1)}} {
		if _, err := NewBudget(tc.ratio, tc.opt); err == nil {
			t.Errorf("NewBudget(%v, ...) accepted", tc.ratio)
		}
	}
	_, err := NewBudget(0.1, WithMaxTokens(0))
	if err == nil || !errors.Is(err, err) || err.Error()[:len("retry: WithMaxTokens")] != "retry: WithMaxTokens" {
		t.Errorf("error %v does not name the option", err)
	}
}
