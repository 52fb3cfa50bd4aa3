package metrics

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/handoffhq/handoff/saga"
)

// Saga attribute keys.
const (
	AttrSagaName  = attribute.Key("handoff.saga.name")  // the definition's name: bounded by the code
	AttrSagaEvent = attribute.Key("handoff.saga.event") // started | completed | compensated | stuck
)

// Saga durations in seconds: 10 ms to a day.
var sagaBuckets = []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}

type sagaInstruments struct {
	events   metric.Int64Counter
	duration metric.Float64Histogram
}

// ObserveSaga implements saga.Observer (saga.WithObserver(m)): it counts
// sagas started, completed, compensated and stuck (handoff.saga.events,
// by handoff.saga.name and handoff.saga.event) and records how long each
// ended saga took from start to its end (handoff.saga.duration, by name and
// the event that ended it). Other history events are not counted. The
// observer's counts are at least once: see saga.Observer.
func (m *Metrics) ObserveSaga(in *saga.Instance, events []saga.Event) {
	s := &m.saga
	ctx := context.Background()
	for _, e := range events {
		switch e.Kind {
		case saga.EvStarted, saga.EvCompleted, saga.EvCompensated, saga.EvStuck:
		default:
			continue
		}
		set := metric.WithAttributeSet(attribute.NewSet(AttrSagaName.String(in.Name), AttrSagaEvent.String(e.Kind)))
		s.events.Add(ctx, 1, set)
		if (e.Kind == saga.EvCompleted || e.Kind == saga.EvCompensated) && !in.CreatedAt.IsZero() {
			end := in.EndedAt
			if end.IsZero() {
				end = e.At
			}
			if d := end.Sub(in.CreatedAt); d >= 0 {
				s.duration.Record(ctx, d.Seconds(), set)
			}
		}
	}
}
