package fallback_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/handoffhq/handoff/fallback"
)

func Example() {
	prices, err := fallback.New[string, int](nil, fallback.WithCache(1000, 5*time.Minute))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	v, err := prices.Do(ctx, "sku-1", func(context.Context) (int, error) { return 1299, nil })
	fmt.Println(v, err)
	// The pricing service goes down: the last good price is served.
	v, err = prices.Do(ctx, "sku-1", func(context.Context) (int, error) { return 0, errors.New("timeout") })
	fmt.Println(v, err)
	// Nothing cached for this key: the error comes back.
	_, err = prices.Do(ctx, "sku-2", func(context.Context) (int, error) { return 0, errors.New("timeout") })
	fmt.Println(err)
	// Output:
	// 1299 <nil>
	// 1299 <nil>
	// fallback: no fallback available: timeout
}
