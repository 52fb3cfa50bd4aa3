package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/bulkhead"
	"github.com/handoffhq/handoff/resilience"
	"github.com/handoffhq/handoff/retry"
)

func Example() {
	br, _ := breaker.New("inventory")
	bh, _ := bulkhead.New("inventory", 20)
	budget, _ := retry.NewBudget(0.1)
	p := &resilience.Policy{
		Retry:    &retry.Policy{MaxAttempts: 3, Budget: budget, Backoff: retry.Backoff{Initial: time.Millisecond}},
		Bulkhead: bh,
		Breaker:  br,
		Timeout:  time.Second,
	}
	if err := p.Validate(); err != nil {
		panic(err)
	}
	err := p.Do(context.Background(), func(ctx context.Context, attempt int) error {
		fmt.Println("attempt", attempt)
		if attempt == 1 {
			return retry.After(errors.New("503"), time.Millisecond) // the server's Retry-After
		}
		return nil
	})
	fmt.Println("err:", err)
	// Output:
	// attempt 1
	// attempt 2
	// err: <nil>
}

// An Observer sees each decision of the policies.
func ExampleObserver() {
	p := &resilience.Policy{
		Retry: &retry.Policy{MaxAttempts: 2, Backoff: retry.Backoff{Initial: time.Millisecond}},
		Observer: resilience.ObserverFunc(func(_ context.Context, e resilience.Event) {
			if e.Reason != "" {
				fmt.Println(e.Kind, e.Attempt, e.Verdict, e.Reason)
				return
			}
			fmt.Println(e.Kind, e.Attempt, e.Verdict)
		}),
	}
	_ = p.Do(context.Background(), func(context.Context, int) error { return errors.New("connection refused") })
	// Output:
	// attempt 1 retry|failure|overload
	// retry 1 none
	// attempt 2 retry|failure|overload
	// give_up 2 none max_attempts
}
