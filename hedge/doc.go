// Package hedge sends hedged requests for idempotent reads: when a call has
// not answered after a delay (fixed, or a percentile of recent latencies), a
// second one is started, the first success wins and the others are
// cancelled. It trades a little extra load for a shorter tail latency.
//
// Hedging is off by default: a nil *Hedger makes [Do] a plain call.
//
//	h, _ := hedge.New("catalog", 50*time.Millisecond, hedge.WithPercentile(95, 10*time.Millisecond))
//	v, err := hedge.Do(ctx, h, func(ctx context.Context) (Item, error) { return get(ctx, id) })
//
// Guarantee: at most 1 + MaxHedges calls per Do; Do returns as soon as one
// succeeds, and every other attempt's context is cancelled then.
//
// It does not hedge on errors (that is retry's job) and must not be used for
// writes. fn runs in goroutines: losers that ignore ctx keep running until
// they return.
package hedge
