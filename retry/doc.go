// Package retry retries failed calls with exponential backoff and full
// jitter, within a retry budget and the caller's deadline.
//
// Minimal call sequence:
//
//	budget, _ := retry.NewBudget(0.1) // per dependency: retries ≤ 10% of requests (+10 burst)
//	p := retry.Policy{MaxAttempts: 4, Budget: budget, MinAttemptTime: 50 * time.Millisecond}
//	err := p.Do(ctx, func(ctx context.Context, attempt int) error { return call(ctx) })
//
// What it guarantees:
//   - errors that are not retryable ([IsRetryable]: handoff.Permanent,
//     context.Canceled, rejections by a breaker, bulkhead or throttle) are
//     returned at once, unchanged;
//   - at most MaxAttempts attempts; between them a delay uniform in
//     [0, min(Max, Initial·Multiplier^(n-1))], or exactly a server's
//     Retry-After hint given with [After];
//   - with a [Budget] shared per dependency, retries stay within its ratio of
//     requests (plus its burst), so an outage does not multiply the load;
//   - no attempt starts when ctx's deadline leaves less than MinAttemptTime,
//     and no backoff is waited that would leave less.
//
// When retrying stops with a retryable error, Do returns an
// [*ExhaustedError] that wraps the last error and says why.
//
// It does not make calls idempotent: retry only what is safe to repeat.
package retry
