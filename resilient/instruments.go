package resilient

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/metric"
)

// instruments are the client metrics:
//
//	resilient.client.attempts          counter   dependency, outcome (success|status|error)
//	resilient.client.retries           counter   dependency
//	resilient.client.budget_exhausted  counter   dependency
//	resilient.client.rejected          counter   dependency, reason (breaker|bulkhead|throttle|deadline)
//	resilient.client.fallbacks         counter   dependency, source (cache|func)
//	resilient.breaker.state            gauge     dependency, state; 1 for the current state
type instruments struct {
	mp              metric.MeterProvider
	attempts        metric.Int64Counter
	retries         metric.Int64Counter
	budgetExhausted metric.Int64Counter
	rejected        metric.Int64Counter
	fallbacks       metric.Int64Counter
	breakerState    metric.Int64ObservableGauge
}

func newInstruments(mp metric.MeterProvider) (*instruments, error) {
	m := mp.Meter(ScopeName)
	in := &instruments{mp: mp}
	var err error
	counter := func(dst *metric.Int64Counter, name, desc string) {
		if err != nil {
			return
		}
		*dst, err = m.Int64Counter(name, metric.WithDescription(desc))
	}
	counter(&in.attempts, "resilient.client.attempts", "Attempts sent to a dependency, by outcome.")
	counter(&in.retries, "resilient.client.retries", "Retries scheduled.")
	counter(&in.budgetExhausted, "resilient.client.budget_exhausted", "Retries refused by the retry budget.")
	counter(&in.rejected, "resilient.client.rejected", "Calls rejected locally, by reason.")
	counter(&in.fallbacks, "resilient.client.fallbacks", "Fallback responses served, by source.")
	if err == nil {
		in.breakerState, err = m.Int64ObservableGauge("resilient.breaker.state",
			metric.WithDescription("1 for the breaker's current state, per dependency."))
	}
	if err != nil {
		return nil, fmt.Errorf("resilient: metrics: %w", err)
	}
	return in, nil
}

func (in *instruments) observeBreakers(t *Transport) error {
	_, err := in.mp.Meter(ScopeName).RegisterCallback(func(_ context.Context, o metric.Observer) error {
		observe := func(d *dependency) {
			if d.p.Breaker == nil {
				return
			}
			o.ObserveInt64(in.breakerState, 1, metric.WithAttributes(d.attr,
				AttrBreakerState.String(d.p.Breaker.State().String())))
		}
		for _, d := range t.policies {
			observe(d)
		}
		t.lazy.Range(func(_, v any) bool { observe(v.(*dependency)); return true })
		return nil
	}, in.breakerState)
	if err != nil {
		return fmt.Errorf("resilient: metrics: %w", err)
	}
	return nil
}
