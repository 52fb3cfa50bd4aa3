package retry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/retry"
)

func ExamplePolicy_Do() {
	p := retry.Policy{MaxAttempts: 5, Backoff: retry.Backoff{Initial: time.Millisecond, Max: 10 * time.Millisecond}}
	err := p.Do(context.Background(), func(ctx context.Context, attempt int) error {
		fmt.Println("attempt", attempt)
		if attempt < 3 {
			return errors.New("503 service unavailable")
		}
		return nil
	})
	fmt.Println("err:", err)
	// Output:
	// attempt 1
	// attempt 2
	// attempt 3
	// err: <nil>
}

func ExamplePolicy_Do_permanent() {
	p := retry.Policy{MaxAttempts: 5}
	err := p.Do(context.Background(), func(ctx context.Context, attempt int) error {
		fmt.Println("attempt", attempt)
		return handoff.Permanent(errors.New("400 bad request"))
	})
	fmt.Println("err:", err)
	// Output:
	// attempt 1
	// err: 400 bad request
}

func ExampleBudget() {
	// Retries are limited to 10% of requests, plus a burst of 2.
	budget, err := retry.NewBudget(0.1, retry.WithMaxTokens(2))
	if err != nil {
		panic(err)
	}
	p := retry.Policy{MaxAttempts: 3, Budget: budget, Backoff: retry.Backoff{Initial: time.Microsecond}}
	calls := 0
	for range 100 { // the dependency is down
		_ = p.Do(context.Background(), func(context.Context, int) error { calls++; return errors.New("down") })
	}
	// 100 first attempts, 2 retries from the initial burst, and 9 more
	// from the 0.1 token each later request deposited.
	fmt.Println("calls for 100 requests:", calls)
	// Output:
	// calls for 100 requests: 111
}

// The package's minimal call sequence.
func Example_callSequence() {
	ctx := context.Background()
	call := func(ctx context.Context) error { return nil } // the dependency
	budget, _ := retry.NewBudget(0.1)                      // per dependency: retries ≤ 10% of requests (+10 burst)
	p := retry.Policy{MaxAttempts: 4, Budget: budget, MinAttemptTime: 50 * time.Millisecond}
	err := p.Do(ctx, func(ctx context.Context, attempt int) error { return call(ctx) })
	fmt.Println(err)
	// Output: <nil>
}
