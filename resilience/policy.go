package resilience

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/bulkhead"
	"github.com/handoffhq/handoff/retry"
	"github.com/handoffhq/handoff/throttle"
)

// Policy is the composed resilience policy of one dependency, applied in one
// fixed order, outermost first:
//
//	retry → bulkhead → breaker → throttle → timeout → call
//
// Each attempt waits for a bulkhead slot, then asks the breaker, then the
// adaptive throttle, and runs under its own timeout:
//
//   - The bulkhead comes before the breaker, so a call waiting for a slot
//     holds no breaker permit (a half-open breaker's few probes are never
//     stuck in the queue) and the breaker's slow-call clock starts when the
//     call is sent, not while it waits for a slot: the breaker judges the
//     dependency, not this process's queue.
//   - The breaker comes before the throttle, so an open breaker refuses at
//     once without counting a request in the throttle's window; the
//     throttle counts only what is about to be sent.
//   - The timeout bounds the call only, not the wait for a slot (the
//     bulkhead's own MaxWait does).
//
// A refusal (bulkhead.ErrFull, breaker.ErrOpen, throttle.ErrThrottled) gives
// back what the policies before it granted, counts as no outcome (the
// breaker and the throttle learn nothing from a call that was not sent), is
// reported to the Observer, and is not retried. An attempt that ran is
// classified once (Classify) for all of them: whether to retry it, whether
// the breaker counts a failure, whether the throttle counts the dependency
// shedding load. An attempt the caller gave up on (its ctx cancelled) gives
// its breaker permit back unrecorded and is not retried.
//
// Fallback and hedging deal with results, so the adapters apply them:
// package resiliencehttp hedges GET requests around Try (each hedged try
// goes through the bulkhead, breaker and throttle) and serves a fallback
// outside everything.
//
// Every field is optional; the zero Policy makes one attempt with no
// protection. A Policy is read-only once in use and safe for concurrent
// use; share one per dependency (its breaker, bulkhead, throttle and retry
// budget are the shared state). The happy path does not allocate unless
// Timeout is set (then it costs one context.WithTimeout and one small
// allocation more).
type Policy struct {
	// Retry retries failed attempts; nil makes one attempt. Its MaxAttempts
	// 0 means retry.DefaultMaxAttempts, as everywhere. Leave its
	// PerTryTimeout and Retryable unset: Timeout and Classify are this
	// policy's (Validate refuses them).
	Retry *retry.Policy
	// Bulkhead limits concurrent attempts.
	Bulkhead *bulkhead.Bulkhead
	// Breaker guards every attempt.
	Breaker *breaker.Breaker
	// Throttle refuses attempts locally while the dependency refuses many.
	Throttle *throttle.Throttle
	// Timeout, when > 0, bounds each attempt (not its wait for a bulkhead
	// slot). The context an attempt runs with is cancelled when it returns,
	// unless it calls [KeepContext].
	Timeout time.Duration
	// Classify decides what the policies learn from an attempt's error;
	// nil means [DefaultClassify].
	Classify Classifier
	// Observer is told what the policies did (see [Event]); nil: nobody.
	Observer Observer
}

// Verdict is what the policies learn from one failed attempt: a set of
// flags.
type Verdict uint8

const (
	// Retry: another attempt may succeed.
	Retry Verdict = 1 << iota
	// Failure: the breaker counts a failure. Without it the dependency
	// answered (a bad request, a not found), which the breaker counts as a
	// success.
	Failure
	// Overload: the throttle counts the dependency as refusing work (HTTP
	// 429 or 503, gRPC UNAVAILABLE or RESOURCE_EXHAUSTED, a connection
	// error). Without it the attempt was accepted.
	Overload
)

// String lists the flags, "retry|failure|overload", or "none".
func (v Verdict) String() string {
	s := ""
	for _, f := range []struct {
		v    Verdict
		name string
	}{{Retry, "retry"}, {Failure, "failure"}, {Overload, "overload"}} {
		if v&f.v != 0 {
			if s != "" {
				s += "|"
			}
			s += f.name
		}
	}
	if s == "" {
		return "none"
	}
	return s
}

// Classifier decides the verdict of an attempt's error (never nil). The
// adapters have their own: HTTP statuses (package resiliencehttp), gRPC
// codes (adapter/grpc).
type Classifier func(err error) Verdict

// DefaultClassify is the Classifier of a Policy without one: an error made
// with handoff.Permanent or matching context.Canceled teaches the policies
// nothing and is not retried; any other is a failure and overload, retried
// when retry.IsRetryable says so.
func DefaultClassify(err error) Verdict {
	if handoff.IsPermanent(err) || errors.Is(err, context.Canceled) {
		return 0
	}
	v := Failure | Overload
	if retry.IsRetryable(err) {
		v |= Retry
	}
	return v
}

// ErrInvalid is matched (errors.Is) by the errors of [Policy.Validate].
var ErrInvalid = errors.New("resilience: invalid policy")

type invalid struct{ msg string }

func (e *invalid) Error() string        { return "resilience: " + e.msg }
func (e *invalid) Is(target error) bool { return target == ErrInvalid }

// Validate reports the first field out of range, naming it. The adapters
// call it when they are built; Do refuses a policy whose retry fields this
// policy owns (Retry.PerTryTimeout, Retry.Retryable).
func (p *Policy) Validate() error {
	if p.Timeout < 0 {
		return &invalid{fmt.Sprintf("Timeout must be ≥ 0, got %v", p.Timeout)}
	}
	if p.Retry != nil {
		if err := p.retryOwned(); err != nil {
			return err
		}
		if err := p.Retry.Validate(); err != nil {
			return &invalid{"Retry: " + err.Error()}
		}
	}
	return nil
}

func (p *Policy) retryOwned() error {
	if p.Retry.PerTryTimeout != 0 {
		return &invalid{"Retry.PerTryTimeout: set Policy.Timeout, which bounds each attempt inside the bulkhead and the breaker"}
	}
	if p.Retry.Retryable != nil {
		return &invalid{"Retry.Retryable: classify attempts with Policy.Classify, which the breaker and the throttle follow too"}
	}
	return nil
}

// Do runs fn through the policies; attempt is 1-based. It returns nil, a
// refusal (breaker.ErrOpen, bulkhead.ErrFull, throttle.ErrThrottled), fn's
// error, or a *retry.ExhaustedError wrapping the last one.
func (p *Policy) Do(ctx context.Context, fn func(ctx context.Context, attempt int) error) error {
	return p.Retrying(ctx, func(ctx context.Context, attempt int) error { return p.Try(ctx, attempt, fn) })
}

// Retrying runs attempt with the retry policy (once, without one), each
// error classified as Try does. attempt must run the attempt through Try:
// Retrying is Do for an adapter that runs one attempt as several tries at
// once (hedging), each of which goes through Try.
func (p *Policy) Retrying(ctx context.Context, attempt func(ctx context.Context, attempt int) error) error {
	if p.Retry == nil {
		return attempt(ctx, 1)
	}
	if err := p.retryOwned(); err != nil {
		return err
	}
	r := *p.Retry
	r.Listener = retryEvents{p}
	return r.DoDecided(ctx, func(ctx context.Context, n int) (error, bool) {
		err := attempt(ctx, n)
		if err == nil {
			return nil, false
		}
		return err, p.retryable(ctx, err)
	})
}

// retryable decides whether a failed attempt is worth another: never a
// refusal by the policies, nor one the caller gave up on.
func (p *Policy) retryable(ctx context.Context, err error) bool {
	if isRefusal(err) {
		return false
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return false
	}
	return p.classify(err)&Retry != 0
}

func isRefusal(err error) bool {
	return errors.Is(err, breaker.ErrOpen) || errors.Is(err, bulkhead.ErrFull) || errors.Is(err, throttle.ErrThrottled)
}

func (p *Policy) classify(err error) Verdict {
	if p.Classify != nil {
		return p.Classify(err)
	}
	return DefaultClassify(err)
}

// Try runs fn once through the bulkhead, the breaker, the throttle and the
// timeout, and teaches the breaker and the throttle its outcome. It returns
// a refusal or fn's error. Do calls it per attempt; an adapter that hedges
// calls it once per hedged try, from Retrying's attempt.
func (p *Policy) Try(ctx context.Context, attempt int, fn func(ctx context.Context, attempt int) error) (err error) {
	if p.Bulkhead != nil {
		if err = p.Bulkhead.Acquire(ctx); err != nil {
			if errors.Is(err, bulkhead.ErrFull) {
				p.observe(ctx, Event{Kind: EventRejected, Attempt: attempt, Reason: "bulkhead", Err: err})
			}
			return err
		}
	}
	var permit breaker.Permit
	if p.Breaker != nil {
		if permit, err = p.Breaker.Allow(); err != nil {
			if p.Bulkhead != nil {
				p.Bulkhead.Release()
			}
			p.observe(ctx, Event{Kind: EventRejected, Attempt: attempt, Reason: "breaker", Err: err, To: p.Breaker.State()})
			return err
		}
	}
	if p.Throttle != nil {
		if err = p.Throttle.Allow(); err != nil {
			permit.Release() // not sent: nothing for the breaker to learn
			if p.Bulkhead != nil {
				p.Bulkhead.Release()
			}
			p.observe(ctx, Event{Kind: EventRejected, Attempt: attempt, Reason: "throttle", Err: err})
			return err
		}
	}
	var from breaker.State
	watch := p.Observer != nil && p.Breaker != nil
	if watch {
		from = p.Breaker.State()
	}
	done := false
	defer func() {
		if done {
			return
		}
		// fn panicked: free the slot and count a failure, then let it go on.
		if p.Bulkhead != nil {
			p.Bulkhead.Release()
		}
		permit.Done(errPanic)
	}()
	if p.Timeout > 0 {
		err = p.tryTimeout(ctx, attempt, fn)
	} else {
		err = fn(ctx, attempt)
	}
	done = true
	if p.Bulkhead != nil {
		p.Bulkhead.Release()
	}
	var v Verdict
	switch {
	case err == nil:
		if p.Throttle != nil {
			p.Throttle.Record(true)
		}
		permit.Done(nil)
	case errors.Is(ctx.Err(), context.Canceled):
		// The caller gave up: the dependency did not fail.
		if p.Throttle != nil {
			p.Throttle.Record(true)
		}
		permit.Release()
	default:
		v = p.classify(err)
		if p.Throttle != nil {
			p.Throttle.Record(v&Overload == 0)
		}
		if v&Failure != 0 {
			permit.Done(err)
		} else {
			permit.Done(nil)
		}
	}
	if p.Observer != nil {
		p.Observer.Observe(ctx, Event{Kind: EventAttempt, Attempt: attempt, Err: err, Verdict: v})
		if watch {
			if to := p.Breaker.State(); to != from {
				p.Observer.Observe(ctx, Event{Kind: EventBreakerState, Attempt: attempt, From: from, To: to})
			}
		}
	}
	return err
}

var errPanic = errors.New("resilience: call panicked")

// attemptCtx is an attempt's context under a timeout: KeepContext finds it
// to take over its cancel.
type attemptCtx struct {
	context.Context
	cancel context.CancelFunc
	kept   atomic.Bool
}

type keepKey struct{}

func (c *attemptCtx) Value(key any) any {
	if key == (keepKey{}) {
		return c
	}
	return c.Context.Value(key)
}

func (p *Policy) tryTimeout(ctx context.Context, attempt int, fn func(ctx context.Context, attempt int) error) error {
	tctx, cancel := context.WithTimeout(ctx, p.Timeout)
	a := &attemptCtx{Context: tctx, cancel: cancel}
	err := fn(a, attempt)
	if !a.kept.Load() {
		cancel()
	}
	return err
}

// KeepContext is for an attempt whose result goes on using its context after
// it returned (an HTTP response whose body the caller reads later): called
// from the attempt with its context (or one derived from it), it stops Try
// from cancelling that context when the attempt returns, and returns the
// function that cancels it. The caller must call that function once done.
// Outside an attempt with a timeout it returns a function that does nothing.
func KeepContext(ctx context.Context) context.CancelFunc {
	a, ok := ctx.Value(keepKey{}).(*attemptCtx)
	if !ok {
		return func() {}
	}
	a.kept.Store(true)
	return a.cancel
}

func (p *Policy) observe(ctx context.Context, e Event) {
	if p.Observer != nil {
		p.Observer.Observe(ctx, e)
	}
}

// retryEvents passes the retry policy's decisions to the Observer, and to
// the retry policy's own Listener. It is one pointer, so making one per
// call does not allocate.
type retryEvents struct{ p *Policy }

func (r retryEvents) OnRetryEvent(e retry.Event) { r.OnRetryEventContext(context.Background(), e) }

func (r retryEvents) OnRetryEventContext(ctx context.Context, e retry.Event) {
	p := r.p
	if p.Observer != nil {
		ev := Event{Attempt: e.Attempt, Err: e.Err, Delay: e.Delay}
		switch e.Kind {
		case retry.EventRetry:
			ev.Kind = EventRetry
		case retry.EventBudgetExhausted:
			ev.Kind = EventBudgetExhausted
		case retry.EventGiveUp:
			ev.Kind, ev.Reason = EventGiveUp, e.Reason.String()
		}
		p.Observer.Observe(ctx, ev)
	}
	switch l := p.Retry.Listener.(type) {
	case nil:
	case retry.ContextListener:
		l.OnRetryEventContext(ctx, e)
	default:
		l.OnRetryEvent(e)
	}
}
