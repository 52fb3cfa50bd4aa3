// Package breaker is a circuit breaker: it stops calling a dependency that
// keeps failing (or is too slow), so callers fail fast and the dependency
// can recover, then lets a few probes through to see whether it has.
//
// Minimal call sequence:
//
//	b, err := breaker.New("payments", breaker.WithCountWindow(100), breaker.WithFailureRate(50))
//	...
//	p, err := b.Allow()
//	if err != nil { return err } // breaker.ErrOpen: fail fast or fall back
//	err = call()
//	p.Done(err)
//
// or simply b.Do(ctx, fn).
//
// States: Closed records outcomes in a sliding window (count-based: the last
// N calls; or time-based: the last d, in ten buckets). Once the window holds
// at least the minimum number of calls and the failure rate (or, with
// WithSlowCalls, the slow-call rate) reaches its threshold, the breaker
// opens. Open rejects every call with [ErrOpen] for the open duration, then
// becomes HalfOpen and lets N probes through: it reopens as soon as their
// failures reach the threshold, and closes when all N finished below it.
// ForceOpen, Disable and Reset set states by hand. A [StateListener] hears
// every transition; [Breaker.Snapshot] gives counts for metrics.
//
// Errors matching context.Canceled are not recorded: the caller gave up, the
// dependency did not fail. Every other non-nil error is a failure unless
// WithIsFailure says otherwise.
//
// Cost: Allow in the closed state is one atomic load and returns a small
// value type; Done of a success is two atomic operations on a count window.
// Neither allocates nor reads time.Now. A time-based window and slow-call
// detection read a coarse clock (an atomic load, refreshed by a timer that
// runs only while the breaker is in use) instead. time.Now is read only on
// state changes and while open.
//
// It does not retry, queue, or time calls out: compose it with packages
// retry and bulkhead, or use package resilience. Counts near a state change
// are approximate: outcomes of calls admitted before a transition are
// dropped.
package breaker
