package resiliencehttp

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/metric"

	"github.com/handoffhq/handoff/resilience"
)

// instruments are the client metrics only HTTP has; the policies' own
// (attempts, retries, budget_exhausted, rejected) are resilience.Telemetry's:
//
//	resilient.client.fallbacks  counter  dependency, source (cache|func)
//	resilient.breaker.state     gauge    dependency, state; 1 for the current state
type instruments struct {
	mp           metric.MeterProvider
	fallbacks    metric.Int64Counter
	breakerState metric.Int64ObservableGauge
}

func newInstruments(mp metric.MeterProvider) (*instruments, error) {
	m := mp.Meter(ScopeName)
	in := &instruments{mp: mp}
	var err error
	in.fallbacks, err = m.Int64Counter("resilient.client.fallbacks", metric.WithDescription("Fallback responses served, by source."))
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
				resilience.AttrBreakerState.String(d.p.Breaker.State().String())))
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
