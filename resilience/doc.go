// Package resilience composes the policies of packages retry, breaker,
// bulkhead and throttle for one dependency, in one fixed, documented order:
//
//	retry → breaker → bulkhead → throttle → per-try timeout → call
//
// Fallback (package fallback) and hedging (package hedge) wrap a Pipeline
// from outside, because they deal with the result value.
//
//	p := &resilience.Pipeline{Retry: &retry.Policy{MaxAttempts: 3, Budget: budget}, Breaker: br, Bulkhead: bh, Timeout: time.Second}
//	err := p.Do(ctx, func(ctx context.Context, attempt int) error { resp, err = rt.RoundTrip(req.WithContext(ctx)); return classify(resp, err) })
//
// The happy path does not allocate and reads no clock (unless Timeout, a
// time-based breaker window or slow-call detection is configured).
//
// It does not classify results: fn turns responses into errors (with
// retry.After for a Retry-After, handoff.Permanent for what must not be
// retried).
package resilience
