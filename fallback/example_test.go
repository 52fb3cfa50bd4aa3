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

type Price struct{ Cents int }

type pricingClient struct{}

func (pricingClient) Get(ctx context.Context, sku string) (Price, error) { return Price{1299}, nil }

// The package's call sequence: the last good price of the same SKU, at most
// five minutes old, when the pricing service fails.
func ExampleFallback_Do() {
	ctx, sku, pricing := context.Background(), "sku-1", pricingClient{}
	fb, _ := fallback.New[string, Price](nil, fallback.WithCache(10_000, 5*time.Minute))
	price, err := fb.Do(ctx, sku, func(ctx context.Context) (Price, error) { return pricing.Get(ctx, sku) })
	fmt.Println(price.Cents, err)
	// Output: 1299 <nil>
}
