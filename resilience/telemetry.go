package resilience

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoffhq/handoff/retry"
)

// ScopeName is the OpenTelemetry instrumentation scope of the policies'
// spans and metrics, in this package and its adapters.
const ScopeName = "github.com/handoffhq/handoff/resilience"

// Span event names, recorded by [Telemetry] and the adapters.
const (
	EventNameRetry           = "resilient.retry"            // another attempt follows: attempt, delay, reason
	EventNameBreakerRejected = "resilient.breaker.rejected" // the breaker refused the call
	EventNameBreakerState    = "resilient.breaker.state"    // the breaker changed state during the call
	EventNameBulkheadFull    = "resilient.bulkhead.full"    // the bulkhead shed the call
	EventNameThrottled       = "resilient.throttled"        // adaptive throttling refused the call locally
	EventNameBudgetExhausted = "resilient.retry.budget_exhausted"
	EventNameDeadlineShort   = "resilient.deadline.too_short" // not enough time left for an attempt
	EventNameDeadlineExpired = "resilient.deadline.expired"   // server: request arrived with its deadline passed
	EventNameFallback        = "resilient.fallback"           // a fallback response was served
	EventNameHedge           = "resilient.hedge"              // a hedged attempt was started
	EventNameShed            = "resilient.shed"               // server: shed for load
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

// Telemetry is the OpenTelemetry [Observer] of one dependency: span events
// on the span in the observed context (when it records) and these counters
// (only the OpenTelemetry API is used; with no SDK installed it costs
// nothing and allocates nothing):
//
//	resilient.client.attempts          dependency, outcome (success|error, or the adapter's)
//	resilient.client.retries           dependency
//	resilient.client.budget_exhausted  dependency
//	resilient.client.rejected          dependency, reason (breaker|bulkhead|throttle|deadline)
type Telemetry struct {
	attempts, retries, exhausted, rejected metric.Int64Counter

	dep     attribute.KeyValue
	attrs   metric.MeasurementOption // dependency
	okAttrs metric.MeasurementOption // dependency, outcome=success
	outcome func(err error) (string, []attribute.KeyValue)
}

// TelemetryOption configures [NewTelemetry].
type TelemetryOption func(*Telemetry) error

// WithMeterProvider sets the meter provider (default: the global one).
func WithMeterProvider(mp metric.MeterProvider) TelemetryOption {
	return func(t *Telemetry) error {
		if mp == nil {
			return fmt.Errorf("resilience: WithMeterProvider: must not be nil")
		}
		return t.instruments(mp)
	}
}

// WithOutcome names a failed attempt's outcome on the attempts counter and
// adds attributes (an adapter's: "status" for an HTTP error status, the gRPC
// status code); default: outcome "error".
func WithOutcome(f func(err error) (outcome string, attrs []attribute.KeyValue)) TelemetryOption {
	return func(t *Telemetry) error {
		if f == nil {
			return fmt.Errorf("resilience: WithOutcome: must not be nil")
		}
		t.outcome = f
		return nil
	}
}

// NewTelemetry returns the observer of the dependency named dependency.
func NewTelemetry(dependency string, opts ...TelemetryOption) (*Telemetry, error) {
	t := &Telemetry{dep: AttrDependency.String(dependency)}
	t.attrs = metric.WithAttributeSet(attribute.NewSet(t.dep))
	t.okAttrs = metric.WithAttributeSet(attribute.NewSet(t.dep, AttrOutcome.String("success")))
	for _, o := range opts {
		if err := o(t); err != nil {
			return nil, err
		}
	}
	if t.attempts == nil {
		if err := t.instruments(otel.GetMeterProvider()); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *Telemetry) instruments(mp metric.MeterProvider) error {
	m := mp.Meter(ScopeName)
	var err error
	for _, c := range []struct {
		dst        *metric.Int64Counter
		name, desc string
	}{
		{&t.attempts, "resilient.client.attempts", "Attempts sent to a dependency, by outcome."},
		{&t.retries, "resilient.client.retries", "Retries scheduled."},
		{&t.exhausted, "resilient.client.budget_exhausted", "Retries refused by the retry budget."},
		{&t.rejected, "resilient.client.rejected", "Calls rejected locally, by reason."},
	} {
		if *c.dst, err = m.Int64Counter(c.name, metric.WithDescription(c.desc)); err != nil {
			return fmt.Errorf("resilience: metrics: %w", err)
		}
	}
	return nil
}

// Observe implements [Observer].
func (t *Telemetry) Observe(ctx context.Context, e Event) {
	span := trace.SpanFromContext(ctx)
	recording := span.IsRecording()
	switch e.Kind {
	case EventAttempt:
		if !t.attempts.Enabled(ctx) {
			return
		}
		if e.Err == nil {
			t.attempts.Add(ctx, 1, t.okAttrs)
			return
		}
		outcome, extra := "error", []attribute.KeyValue(nil)
		if t.outcome != nil {
			outcome, extra = t.outcome(e.Err)
		}
		t.attempts.Add(ctx, 1, metric.WithAttributes(append([]attribute.KeyValue{t.dep, AttrOutcome.String(outcome)}, extra...)...))
	case EventRejected:
		if recording {
			name := EventNameThrottled
			switch e.Reason {
			case "bulkhead":
				name = EventNameBulkheadFull
			case "breaker":
				name = EventNameBreakerRejected
				span.SetAttributes(AttrBreakerState.String(e.To.String()))
			}
			span.AddEvent(name, trace.WithAttributes(AttrAttempt.Int(e.Attempt)))
		}
		if t.rejected.Enabled(ctx) {
			t.rejected.Add(ctx, 1, metric.WithAttributes(t.dep, AttrReason.String(e.Reason)))
		}
	case EventRetry:
		if recording {
			span.AddEvent(EventNameRetry, trace.WithAttributes(AttrAttempt.Int(e.Attempt+1),
				AttrDelay.Int64(e.Delay.Milliseconds()), AttrReason.String(errString(e.Err))))
		}
		if t.retries.Enabled(ctx) {
			t.retries.Add(ctx, 1, t.attrs)
		}
	case EventBudgetExhausted:
		if recording {
			span.AddEvent(EventNameBudgetExhausted, trace.WithAttributes(AttrAttempt.Int(e.Attempt)))
		}
		if t.exhausted.Enabled(ctx) {
			t.exhausted.Add(ctx, 1, t.attrs)
		}
	case EventGiveUp:
		if e.Attempt == 0 && e.Reason == retry.ReasonDeadline.String() {
			if recording {
				span.AddEvent(EventNameDeadlineShort)
			}
			if t.rejected.Enabled(ctx) {
				t.rejected.Add(ctx, 1, metric.WithAttributes(t.dep, AttrReason.String("deadline")))
			}
		}
	case EventBreakerState:
		if recording {
			span.AddEvent(EventNameBreakerState, trace.WithAttributes(
				attribute.String("resilient.breaker.from", e.From.String()), AttrBreakerState.String(e.To.String())))
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
