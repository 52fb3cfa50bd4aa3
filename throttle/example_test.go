package throttle_test

import (
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
