package resilience

import (
	"context"
	"errors"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/bulkhead"
	"github.com/handoffhq/handoff/retry"
	"github.com/handoffhq/handoff/throttle"
)

// Pipeline composes the policies for one dependency in a fixed order,
// outermost first:
//
//	retry → breaker → bulkhead → throttle → per-try timeout → fn
//
// Every attempt passes the breaker (so a retry may be refused by an open
// breaker), then waits for a bulkhead slot, then the adaptive throttle, then
// runs under its own timeout. Rejections (breaker.ErrOpen,
// bulkhead.ErrFull, throttle.ErrThrottled) are not retried and give back
// what earlier policies granted, without counting as failures. Fallback and
// hedging wrap Do from outside, because they handle the result value:
// fallback ∘ hedge ∘ Pipeline.
//
// Every field is optional; nil fields are skipped. A Pipeline is read-only
// after it is built and safe for concurrent use. The happy path does not
// allocate unless Timeout is set (then it costs one context.WithTimeout).
type Pipeline struct {
	// Retry retries failed attempts; nil means a single attempt. Leave its
	// PerTryTimeout at 0 and use Timeout, which applies inside the bulkhead.
	Retry *retry.Policy
	// Breaker guards every attempt.
	Breaker *breaker.Breaker
	// Bulkhead limits concurrent attempts.
	Bulkhead *bulkhead.Bulkhead
	// Throttle rejects attempts locally when the dependency rejects many.
	Throttle *throttle.Throttle
	// Timeout, when > 0, bounds each attempt (not the bulkhead wait).
	Timeout time.Duration
	// IsOverload tells the throttle which errors are the dependency
	// refusing work (HTTP 429/503, gRPC UNAVAILABLE, connection errors).
	// nil: every error except handoff.Permanent and context.Canceled.
	IsOverload func(err error) bool
}

// Do runs fn through the pipeline. attempt is 1-based. It returns nil, a
// rejection, fn's error, or a retry.ExhaustedError wrapping the last one.
// fn must not retain ctx after it returns.
func (p *Pipeline) Do(ctx context.Context, fn func(ctx context.Context, attempt int) error) error {
	if p.Retry == nil {
		return p.try(ctx, 1, fn)
	}
	return p.Retry.Do(ctx, func(ctx context.Context, attempt int) error {
		return p.try(ctx, attempt, fn)
	})
}

func (p *Pipeline) try(ctx context.Context, attempt int, fn func(ctx context.Context, attempt int) error) (err error) {
	var permit breaker.Permit
	if p.Breaker != nil {
		if permit, err = p.Breaker.Allow(); err != nil {
			return err
		}
	}
	if p.Bulkhead != nil {
		if err = p.Bulkhead.Acquire(ctx); err != nil {
			permit.Release()
			return err
		}
	}
	if p.Throttle != nil {
		if err = p.Throttle.Allow(); err != nil {
			if p.Bulkhead != nil {
				p.Bulkhead.Release()
			}
			permit.Release()
			return err
		}
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
		tctx, cancel := context.WithTimeout(ctx, p.Timeout)
		err = fn(tctx, attempt)
		cancel()
	} else {
		err = fn(ctx, attempt)
	}
	done = true
	if p.Bulkhead != nil {
		p.Bulkhead.Release()
	}
	if p.Throttle != nil {
		p.Throttle.Record(err == nil || !p.isOverload(err))
	}
	if err != nil && ctx.Err() == context.Canceled {
		permit.Release()
	} else {
		permit.Done(err)
	}
	return err
}

var errPanic = errors.New("resilience: call panicked")

func (p *Pipeline) isOverload(err error) bool {
	if p.IsOverload != nil {
		return p.IsOverload(err)
	}
	return !handoff.IsPermanent(err) && !errors.Is(err, context.Canceled)
}
