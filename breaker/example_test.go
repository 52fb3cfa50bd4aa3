package breaker_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/handoffhq/handoff/breaker"
)

func Example() {
	b, err := breaker.New("payments",
		breaker.WithCountWindow(10),
		breaker.WithMinimumCalls(4),
		breaker.WithFailureRate(50),
		breaker.WithStateListener(breaker.StateListenerFunc(func(c breaker.StateChange) {
			fmt.Printf("%s: %s -> %s at %.0f%% failures\n", c.Name, c.From, c.To, c.Window.FailureRate)
		})),
	)
	if err != nil {
		panic(err)
	}
	down := errors.New("connection refused")
	for i := range 6 {
		p, err := b.Allow()
		if errors.Is(err, breaker.ErrOpen) {
			fmt.Println("call", i, "rejected without calling")
			continue
		}
		var callErr error
		if i >= 2 {
			callErr = down // the dependency goes down after two calls
		}
		p.Done(callErr)
	}

	// Do wraps Allow and Done.
	err = b.Do(context.Background(), func(ctx context.Context) error { return nil })
	fmt.Println(err)
	// Output:
	// payments: closed -> open at 50% failures
	// call 4 rejected without calling
	// call 5 rejected without calling
	// breaker: open
}

// The package's minimal call sequence: Allow before the call, Done with its
// outcome after.
func Example_callSequence() {
	call := func() error { return nil } // the guarded dependency
	guarded := func() error {
		b, err := breaker.New("payments", breaker.WithCountWindow(100), breaker.WithFailureRate(50))
		if err != nil {
			return err
		}
		p, err := b.Allow()
		if err != nil {
			return err
		} // breaker.ErrOpen: fail fast or fall back
		err = call()
		p.Done(err)
		return err
	}
	fmt.Println(guarded())
	// Output: <nil>
}
