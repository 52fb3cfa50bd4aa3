package bulkhead_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/handoffhq/handoff/bulkhead"
)

func Example() {
	bh, err := bulkhead.New("inventory", 2) // no queue: shed at once when full
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for i := range 3 {
		if err := bh.Acquire(ctx); errors.Is(err, bulkhead.ErrFull) {
			fmt.Println("call", i, "shed:", err)
			continue
		}
		fmt.Println("call", i, "running") // its Release comes later
	}
	bh.Release()
	fmt.Println(bh.Snapshot().InFlight, "in flight")
	// Output:
	// call 0 running
	// call 1 running
	// call 2 shed: bulkhead: full
	// 1 in flight
}

// The package's minimal call sequence: Acquire a slot before the call,
// Release it after.
func Example_callSequence() {
	ctx := context.Background()
	call := func() error { return nil } // the guarded dependency
	guarded := func() error {
		bh, err := bulkhead.New("inventory", 20, bulkhead.WithMaxQueue(50), bulkhead.WithMaxWait(100*time.Millisecond))
		if err != nil {
			return err
		}
		if err := bh.Acquire(ctx); err != nil {
			return err
		} // bulkhead.ErrFull or ctx's error
		defer bh.Release()
		return call()
	}
	fmt.Println(guarded())
	// Output: <nil>
}
