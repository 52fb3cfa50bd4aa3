package hedge_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff/hedge"
)

func ExampleDo() {
	h, err := hedge.New("catalog", 10*time.Millisecond)
	if err != nil {
		panic(err)
	}
	var n atomic.Int32
	v, err := hedge.Do(context.Background(), h, func(ctx context.Context) (string, error) {
		if n.Add(1) == 1 {
			<-ctx.Done() // the first replica hangs until it loses
			return "", ctx.Err()
		}
		return "from the hedge", nil
	})
	fmt.Println(v, err)
	// Output:
	// from the hedge <nil>
}
