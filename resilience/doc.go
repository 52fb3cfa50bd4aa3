// Package resilience is the one place where the policies of packages retry,
// breaker, bulkhead and throttle are composed for a dependency: a [Policy]
// applies them in one documented order, classifies every attempt once for
// all of them ([Classifier]), and tells an [Observer] what they did. The
// transports are thin adapters over it: package resiliencehttp (an
// http.RoundTripper, which adds hedging and a fallback for GET requests) and
// adapter/grpc (unary client interceptor), as failsafehttp sits on
// failsafe-go's executor.
//
//	retry → bulkhead → breaker → throttle → timeout → call
//
// The package example runs a call through a breaker, a bulkhead and a retry
// policy that honours a Retry-After hint:
//
//	p := &resilience.Policy{
//		Retry:    &retry.Policy{MaxAttempts: 3, Budget: budget, Backoff: retry.Backoff{Initial: time.Millisecond}},
//		Bulkhead: bh,
//		Breaker:  br,
//		Timeout:  time.Second,
//	}
//	if err := p.Validate(); err != nil {
//		panic(err)
//	}
//	err := p.Do(context.Background(), func(ctx context.Context, attempt int) error {
//		...
//	})
//
// # What it guarantees
//
//   - A refused attempt (open breaker, full bulkhead, throttled) gives back
//     what earlier policies granted, teaches the breaker and the throttle
//     nothing, and is not retried.
//   - An attempt's error is classified once (retry it? a failure for the
//     breaker? the dependency shedding load?), so the policies never
//     disagree about one outcome.
//   - The zero values agree with the policies' own: a nil Retry is one
//     attempt; a retry.Policy with MaxAttempts 0 makes
//     retry.DefaultMaxAttempts, here as in package retry.
//   - The happy path allocates nothing and reads no clock unless Timeout,
//     a time-based breaker window or slow-call detection is configured.
//
// # What it does not do
//
// It does not classify results, only errors: fn turns a response into an
// error (with retry.After for a Retry-After hint, handoff.Permanent for
// what must not be retried). It keeps no state across processes: each
// process has its own breaker, bulkhead, throttle and budget.
package resilience
