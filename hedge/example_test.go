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

// The package's call sequence: a hedge after the 95th percentile of recent
// latencies (50ms until there are enough of them).
func ExampleNew() {
	type Item struct{ Name string }
	ctx, id := context.Background(), 7
	get := func(ctx context.Context, id int) (Item, error) { return Item{Name: fmt.Sprint("item ", id)}, nil }
	h, _ := hedge.New("catalog", 50*time.Millisecond, hedge.WithPercentile(95, 10*time.Millisecond))
	v, err := hedge.Do(ctx, h, func(ctx context.Context) (Item, error) { return get(ctx, id) })
	fmt.Println(v.Name, err)
	// Output: item 7 <nil>
}
