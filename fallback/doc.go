// Package fallback serves a substitute when a call fails: the last good
// value for the same key from a bounded cache, never older than an explicit
// maximum staleness, or else the result of a user function.
//
//	fb, _ := fallback.New[string, Price](nil, fallback.WithCache(10_000, 5*time.Minute))
//	price, err := fb.Do(ctx, sku, func(ctx context.Context) (Price, error) { return pricing.Get(ctx, sku) })
//
// Guarantees: the cache holds at most maxEntries keys (least recently used
// evicted first); a cached value older than maxStale is never served.
// Errors made by handoff.Permanent and context.Canceled get no fallback by
// default (WithShouldFallback changes that).
//
// It does not retry or refresh values in the background; a served fallback
// is reported to the Listener so it can be seen in traces and metrics.
package fallback
