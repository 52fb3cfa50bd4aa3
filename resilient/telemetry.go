package resilient

import "go.opentelemetry.io/otel/attribute"

// ScopeName is the OpenTelemetry instrumentation scope of this package's
// spans and metrics.
const ScopeName = "github.com/handoffhq/handoff/resilient"

// Span event names recorded by [Transport] and [Server].
const (
	EventRetry           = "resilient.retry"            // another attempt follows: attempt, delay, reason
	EventBreakerRejected = "resilient.breaker.rejected" // the breaker refused the call
	EventBreakerState    = "resilient.breaker.state"    // the breaker changed state during the call
	EventBulkheadFull    = "resilient.bulkhead.full"    // the bulkhead shed the call
	EventThrottled       = "resilient.throttled"        // adaptive throttling rejected the call locally
	EventBudgetExhausted = "resilient.retry.budget_exhausted"
	EventDeadlineShort   = "resilient.deadline.too_short" // not enough time left for an attempt
	EventDeadlineExpired = "resilient.deadline.expired"   // server: request arrived with its deadline passed
	EventFallback        = "resilient.fallback"           // a fallback response was served
	EventHedge           = "resilient.hedge"              // a hedged attempt was started
	EventShed            = "resilient.shed"               // server: shed for load
)

// Attribute keys on spans and metrics.
const (
	AttrDependency   = attribute.Key("resilient.dependency")
	AttrAttempt      = attribute.Key("resilient.attempt")
	AttrOutcome      = attribute.Key("resilient.outcome")
	AttrBreakerState = attribute.Key("resilient.breaker.state")
	AttrReason       = attribute.Key("resilient.reason")
	AttrDelay        = attribute.Key("resilient.retry.delay_ms")
	AttrTimeLeft     = attribute.Key("resilient.time_left_ms")
	AttrFallback     = attribute.Key("resilient.fallback.source")
	AttrHedged       = attribute.Key("resilient.hedged")
)
