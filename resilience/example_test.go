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

func ExamplePipeline() {
	br, _ := breaker.New("inventory")
	bh, _ := bulkhead.New("inventory", 20)
	budget, _ := retry.NewBudget(0.1)
	p := &resilience.Pipeline{
		Retry:    &retry.Policy{MaxAttempts: 3, Budget: budget, Backoff: retry.Backoff{Initial: time.Millisecond}},
		Breaker:  br,
		Bulkhead: bh,
		Timeout:  time.Second,
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
