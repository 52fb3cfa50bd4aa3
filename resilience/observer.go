package resilience

import (
	"context"
	"time"

	"github.com/handoffhq/handoff/breaker"
)

// Observer is told what the policies did, synchronously, in the goroutine of
// the call: keep it cheap. ctx is the one Do, Retrying or Try was given (for
// EventAttempt and EventRejected, the attempt's). [Telemetry] is the
// OpenTelemetry one.
type Observer interface {
	Observe(ctx context.Context, e Event)
}

// ObserverFunc adapts a function to an [Observer].
type ObserverFunc func(ctx context.Context, e Event)

// Observe calls f(ctx, e).
func (f ObserverFunc) Observe(ctx context.Context, e Event) { f(ctx, e) }

// EventKind names an [Event].
type EventKind uint8

const (
	// EventAttempt: an attempt ran and ended with Err (nil on success),
	// classified as Verdict.
	EventAttempt EventKind = iota + 1
	// EventRejected: a policy refused an attempt before it was sent:
	// Reason is "bulkhead", "breaker" (To holds its state) or "throttle",
	// Err the refusal.
	EventRejected
	// EventRetry: attempt Attempt failed with Err; another follows after
	// Delay.
	EventRetry
	// EventBudgetExhausted: the retry budget refused a retry of Attempt.
	EventBudgetExhausted
	// EventGiveUp: retrying stopped after Attempt attempts (0: none was
	// made) for Reason (a retry.Reason: "max_attempts", "deadline", ...).
	EventGiveUp
	// EventBreakerState: the breaker moved From → To during Attempt.
	EventBreakerState
)

// String returns "attempt", "rejected", "retry", "budget_exhausted",
// "give_up" or "breaker_state".
func (k EventKind) String() string {
	switch k {
	case EventAttempt:
		return "attempt"
	case EventRejected:
		return "rejected"
	case EventRetry:
		return "retry"
	case EventBudgetExhausted:
		return "budget_exhausted"
	case EventGiveUp:
		return "give_up"
	case EventBreakerState:
		return "breaker_state"
	}
	return "unknown"
}

// Event is one observation; which fields are set depends on Kind.
type Event struct {
	Kind     EventKind
	Attempt  int
	Err      error
	Verdict  Verdict
	Reason   string
	Delay    time.Duration
	From, To breaker.State
}

// Observers returns one Observer telling each of obs in turn, nil ones
// left out: an adapter adds its telemetry to the policy's own observer.
func Observers(obs ...Observer) Observer {
	var out observers
	for _, o := range obs {
		if o != nil {
			out = append(out, o)
		}
	}
	if len(out) == 1 {
		return out[0]
	}
	return out
}

type observers []Observer

func (os observers) Observe(ctx context.Context, e Event) {
	for _, o := range os {
		o.Observe(ctx, e)
	}
}
