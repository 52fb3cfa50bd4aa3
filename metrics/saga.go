package metrics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/handoffhq/handoff/saga"
)

// Saga attribute keys.
const (
	AttrSagaName   = attribute.Key("handoff.saga.name")   // the definition's name: bounded by the code
	AttrSagaEvent  = attribute.Key("handoff.saga.event")  // started | completed | compensated | stuck
	AttrSagaStatus = attribute.Key("handoff.saga.status") // running | compensating | stuck
)

// Saga durations in seconds: 10 ms to a day.
var sagaBuckets = []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}

type sagaInstruments struct {
	events    metric.Int64Counter
	duration  metric.Float64Histogram
	instances metric.Int64ObservableGauge
}

// SagaCounter is what the saga gauge reads: the SQL saga stores
// (adapter/postgres, sqlite, mysql SagaStore) have this method.
type SagaCounter interface {
	CountsByName(ctx context.Context) ([]saga.Count, error)
}

// Sagas samples src's unfinished sagas per name and status
// (handoff.saga.instances), at most once per WithSagaInterval. A name and
// status seen once reports 0 when it has no saga left, so an alert on
// stuck sagas sees them clear. Ended sagas are counted by ObserveSaga's
// handoff.saga.events instead.
func (m *Metrics) Sagas(src SagaCounter) error {
	var (
		mu   sync.Mutex
		last time.Time
		seen = map[[2]string]int{}
	)
	return m.register(func(ctx context.Context, o metric.Observer) error {
		mu.Lock()
		defer mu.Unlock()
		if last.IsZero() || time.Since(last) >= m.sagaEvery {
			ctx, cancel := context.WithTimeout(ctx, m.sampleTimeout)
			counts, err := src.CountsByName(ctx)
			cancel()
			if err != nil {
				return fmt.Errorf("metrics: sagas: %w", err)
			}
			last = time.Now()
			for k := range seen {
				seen[k] = 0
			}
			for _, c := range counts {
				seen[[2]string{c.Name, string(c.Status)}] += c.Sagas
			}
		}
		for k, n := range seen {
			o.ObserveInt64(m.saga.instances, int64(n), metric.WithAttributes(AttrSagaName.String(k[0]), AttrSagaStatus.String(k[1])))
		}
		return nil
	}, m.saga.instances)
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
