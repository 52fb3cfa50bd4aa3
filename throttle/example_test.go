package throttle_test

import (
	"errors"
	"fmt"

	"github.com/handoffhq/handoff/throttle"
)

func Example() {
	t, err := throttle.New("search", throttle.WithK(2))
	if err != nil {
		panic(err)
	}
	// The backend accepts 9 of 10 requests: nothing is rejected locally.
	for i := range 100 {
		if err := t.Allow(); err != nil {
			fmt.Println(err)
			return
		}
		t.Record(i%10 != 9)
	}
	s := t.Snapshot()
	fmt.Printf("requests %d, accepts %d, reject probability %.2f\n", s.Requests, s.Accepts, s.Probability)
	// Output:
	// requests 100, accepts 90, reject probability 0.00
}

// The package's minimal call sequence: Allow before the call, Record whether
// the backend accepted it after.
func Example_callSequence() {
	call := func() error { return nil } // the guarded backend
	isOverload := func(err error) bool { return errors.Is(err, errOverloaded) }
	guarded := func() error {
		t, _ := throttle.New("search") // K = 2, window 2 minutes
		if err := t.Allow(); err != nil {
			return err
		} // throttle.ErrThrottled
		err := call()
		t.Record(!isOverload(err))
		return err
	}
	fmt.Println(guarded())
	// Output: <nil>
}

var errOverloaded = errors.New("503: overloaded")
