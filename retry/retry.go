package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/internal/backoff"
)

// Backoff is exponential backoff with full jitter: the delay after the n-th
// failed attempt is uniform in [0, min(Max, Initial·Multiplier^(n-1))]. The
// zero value uses Initial 100ms, Max 30s, Multiplier 2.
type Backoff = backoff.Exponential

// DefaultMaxAttempts is the number of attempts of a [Policy] whose
// MaxAttempts is zero.
const DefaultMaxAttempts = 3

// Policy retries a call with backoff. The zero value is usable: 3 attempts,
// backoff 100ms·2ⁿ up to 30s with full jitter, no budget, no per-try
// timeout. A Policy is a plain value: copy it freely; share state between
// calls only through its Budget.
type Policy struct {
	// MaxAttempts is the total number of attempts, the first included:
	// 1 disables retries. 0 means DefaultMaxAttempts.
	MaxAttempts int
	// Backoff computes the delay before each retry.
	Backoff Backoff
	// MinAttemptTime is the least time an attempt needs. No attempt (the
	// first included) starts when ctx's deadline leaves less, and a retry
	// is not scheduled when the backoff delay plus MinAttemptTime would
	// pass the deadline. 0 disables the check (attempts still stop when ctx
	// is done). Checking reads the clock once per attempt, and only when ctx
	// has a deadline.
	MinAttemptTime time.Duration
	// PerTryTimeout, when > 0, bounds each attempt with its own
	// context.WithTimeout (costing what that costs); the attempt's ctx
	// keeps the caller's deadline if it is earlier.
	PerTryTimeout time.Duration
	// MaxRetryAfter caps a server's Retry-After hint (see [After]): a hint
	// above it ends the retries instead of waiting. 0 means no cap (the
	// deadline still applies).
	MaxRetryAfter time.Duration
	// Budget, when set, limits retries to a fraction of the requests made
	// through it; share one Budget per dependency.
	Budget *Budget
	// Retryable classifies errors; nil means [IsRetryable].
	Retryable func(err error) bool
	// Listener is told about retries, exhausted budgets and give-ups.
	Listener Listener
}

// Validate reports the first field out of range, naming it (MaxAttempts,
// Backoff.Initial, ...): MaxAttempts, MinAttemptTime, PerTryTimeout and
// MaxRetryAfter must be ≥ 0 (0 is each one's default), and Backoff valid.
// Do does not call it (it reads a negative value as the default); the
// constructors that take a Policy (package resilience and its adapters, the
// YAML configuration) do, so that a mistake is an error, not a default.
func (p Policy) Validate() error {
	switch {
	case p.MaxAttempts < 0:
		return fmt.Errorf("retry: MaxAttempts must be ≥ 1, or 0 for %d, got %d", DefaultMaxAttempts, p.MaxAttempts)
	case p.MinAttemptTime < 0:
		return fmt.Errorf("retry: MinAttemptTime must be ≥ 0, got %v", p.MinAttemptTime)
	case p.PerTryTimeout < 0:
		return fmt.Errorf("retry: PerTryTimeout must be ≥ 0, got %v", p.PerTryTimeout)
	case p.MaxRetryAfter < 0:
		return fmt.Errorf("retry: MaxRetryAfter must be ≥ 0, got %v", p.MaxRetryAfter)
	}
	if err := p.Backoff.Validate(); err != nil {
		return fmt.Errorf("retry: Backoff.%w", err)
	}
	return nil
}

// Reason says why retrying stopped.
type Reason int

const (
	// ReasonMaxAttempts: all attempts were used.
	ReasonMaxAttempts Reason = iota + 1
	// ReasonBudget: the retry budget had no token.
	ReasonBudget
	// ReasonDeadline: too little time was left before ctx's deadline.
	ReasonDeadline
	// ReasonRetryAfter: the server asked to wait longer than MaxRetryAfter.
	ReasonRetryAfter
	// ReasonContext: ctx was done while waiting to retry.
	ReasonContext
)

// String returns a short lowercase name, usable as a metric attribute.
func (r Reason) String() string {
	switch r {
	case ReasonMaxAttempts:
		return "max_attempts"
	case ReasonBudget:
		return "budget"
	case ReasonDeadline:
		return "deadline"
	case ReasonRetryAfter:
		return "retry_after"
	case ReasonContext:
		return "context"
	}
	return "unknown"
}

// ExhaustedError is returned when a retryable error could not be retried
// again. It wraps the last attempt's error (and, for ReasonContext and
// ReasonDeadline, the context error), so errors.Is and errors.As see both.
type ExhaustedError struct {
	Attempts int
	Reason   Reason
	Err      error // the last attempt's error; nil if no attempt was made
	cause    error
}

func (e *ExhaustedError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("retry: no attempt made (%s)", e.Reason)
	}
	return fmt.Sprintf("retry: gave up after %d attempts (%s): %v", e.Attempts, e.Reason, e.Err)
}

// Unwrap returns the last error and the context error, if any.
func (e *ExhaustedError) Unwrap() []error {
	out := make([]error, 0, 2)
	if e.Err != nil {
		out = append(out, e.Err)
	}
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

// ErrInsufficientTime is the cause when no attempt could start because ctx's
// deadline left less than MinAttemptTime. It matches
// context.DeadlineExceeded with errors.Is.
var ErrInsufficientTime error = insufficientTime{}

type insufficientTime struct{}

func (insufficientTime) Error() string        { return "retry: too little time left before the deadline" }
func (insufficientTime) Is(target error) bool { return target == context.DeadlineExceeded }
func (insufficientTime) Retryable() bool      { return false }

// EventKind names a retry event.
type EventKind int

const (
	// EventRetry: attempt Attempt failed with Err; the next starts after Delay.
	EventRetry EventKind = iota + 1
	// EventBudgetExhausted: a retry was refused by the budget.
	EventBudgetExhausted
	// EventGiveUp: retrying stopped for Reason (not budget).
	EventGiveUp
)

// String returns "retry", "budget_exhausted" or "give_up".
func (k EventKind) String() string {
	switch k {
	case EventRetry:
		return "retry"
	case EventBudgetExhausted:
		return "budget_exhausted"
	case EventGiveUp:
		return "give_up"
	}
	return "unknown"
}

// Event describes one retry decision.
type Event struct {
	Kind    EventKind
	Attempt int // the attempt that just failed (1-based)
	Err     error
	Delay   time.Duration // EventRetry: the wait before the next attempt
	Reason  Reason        // EventGiveUp, EventBudgetExhausted
}

// Listener is told about retry decisions, synchronously, from Do. A
// Listener that is also a [ContextListener] is called through that instead.
type Listener interface {
	OnRetryEvent(Event)
}

// ContextListener is a Listener that also wants the context Do was given
// (to add an event to the span it carries, say), so that one listener
// value serves every call without allocating per call.
type ContextListener interface {
	Listener
	OnRetryEventContext(ctx context.Context, e Event)
}

// ListenerFunc adapts a function to a [Listener].
type ListenerFunc func(Event)

// OnRetryEvent calls f(e).
func (f ListenerFunc) OnRetryEvent(e Event) { f(e) }

// IsRetryable is the default classifier: false for nil, for errors made by
// handoff.Permanent, for context.Canceled, and for errors whose chain holds a
// `Retryable() bool` method returning false (breaker.ErrOpen,
// bulkhead.ErrFull, throttle.ErrThrottled); true otherwise (including
// context.DeadlineExceeded of a per-try timeout: [Policy.Do] stops anyway
// once the caller's own ctx is done).
func IsRetryable(err error) bool {
	if err == nil || handoff.IsPermanent(err) || errors.Is(err, context.Canceled) {
		return false
	}
	var r interface{ Retryable() bool }
	if errors.As(err, &r) {
		return r.Retryable()
	}
	return true
}

// RetryAfterError carries a server's hint of when to retry (an HTTP
// Retry-After header, a gRPC pushback). Make one with [After].
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// After wraps err with a retry-after hint: [Policy.Do] waits d (instead of
// its backoff) before the next attempt, gives up if d is above
// MaxRetryAfter or leaves too little time before the deadline. After(nil, d)
// is nil.
func After(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryAfterError{Err: err, After: d}
}

// RetryAfterOf returns the hint carried by err, if any.
func RetryAfterOf(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After, true
	}
	return 0, false
}

// Do calls fn until it succeeds, returns an error that is not retryable, or
// retrying must stop. attempt is 1-based. It returns nil on success; a
// non-retryable error as fn returned it; otherwise an [*ExhaustedError]
// wrapping the last error. With a Budget, the call deposits one request and
// each retry withdraws one token. The happy path (first attempt succeeds)
// does not allocate unless PerTryTimeout is set.
func (p Policy) Do(ctx context.Context, fn func(ctx context.Context, attempt int) error) error {
	return p.DoDecided(ctx, func(ctx context.Context, attempt int) (error, bool) {
		err := fn(ctx, attempt)
		return err, err != nil && p.retryable(err)
	})
}

// DoDecided is Do for a caller that classifies each attempt itself: fn
// returns the attempt's error and whether another attempt may succeed
// (Retryable is not consulted). Package resilience runs its attempts
// through it.
func (p Policy) DoDecided(ctx context.Context, fn func(ctx context.Context, attempt int) (err error, again bool)) error {
	maxAttempts := p.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	if p.Budget != nil {
		p.Budget.Deposit()
	}
	var last error
	for attempt := 1; ; attempt++ {
		if p.MinAttemptTime > 0 {
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < p.MinAttemptTime {
				return p.giveUp(ctx, attempt-1, ReasonDeadline, last, ErrInsufficientTime)
			}
		}
		var err error
		var again bool
		if p.PerTryTimeout > 0 {
			actx, cancel := context.WithTimeout(ctx, p.PerTryTimeout)
			err, again = fn(actx, attempt)
			cancel()
		} else {
			err, again = fn(ctx, attempt)
		}
		if err == nil {
			return nil
		}
		if !again {
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return p.giveUp(ctx, attempt, ReasonContext, err, cerr)
		}
		if attempt >= maxAttempts {
			return p.giveUp(ctx, attempt, ReasonMaxAttempts, err, nil)
		}
		delay := p.Backoff.Delay(attempt)
		if ra, ok := RetryAfterOf(err); ok {
			if p.MaxRetryAfter > 0 && ra > p.MaxRetryAfter {
				return p.giveUp(ctx, attempt, ReasonRetryAfter, err, nil)
			}
			delay = max(ra, 0)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay+p.MinAttemptTime {
			return p.giveUp(ctx, attempt, ReasonDeadline, err, ErrInsufficientTime)
		}
		if p.Budget != nil && !p.Budget.Withdraw() {
			p.tell(ctx, Event{Kind: EventBudgetExhausted, Attempt: attempt, Err: err, Reason: ReasonBudget})
			return &ExhaustedError{Attempts: attempt, Reason: ReasonBudget, Err: err}
		}
		p.tell(ctx, Event{Kind: EventRetry, Attempt: attempt, Err: err, Delay: delay})
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return p.giveUp(ctx, attempt, ReasonContext, err, ctx.Err())
			}
		}
		last = err
	}
}

func (p Policy) retryable(err error) bool {
	if p.Retryable != nil {
		return p.Retryable(err)
	}
	return IsRetryable(err)
}

func (p Policy) giveUp(ctx context.Context, attempts int, r Reason, last, cause error) error {
	p.tell(ctx, Event{Kind: EventGiveUp, Attempt: attempts, Err: last, Reason: r})
	return &ExhaustedError{Attempts: attempts, Reason: r, Err: last, cause: cause}
}

func (p Policy) tell(ctx context.Context, e Event) {
	switch l := p.Listener.(type) {
	case nil:
	case ContextListener:
		l.OnRetryEventContext(ctx, e)
	default:
		l.OnRetryEvent(e)
	}
}
