package metrics_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/metrics"
	"github.com/handoffhq/handoff/metrics/prom"
	"github.com/handoffhq/handoff/saga"
)

type trip struct{ Fail, UndoFails bool }

// A coordinator with the metrics as its observer counts the sagas it
// starts, completes, compensates and leaves stuck, and times the ended ones, by saga
// name; the scrape carries both families, and the gauge of unfinished
// sagas by status read from the store.
func TestMetrics_SagasByEventAndDuration(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "saga.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlite.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	exp, err := prom.New(prom.WithoutRuntime())
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(ctx)
	m, err := metrics.New(metrics.WithMeterProvider(exp.MeterProvider()), metrics.WithSagaInterval(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	store := sqlite.SagaStore(db)
	if err := m.Sagas(store.(metrics.SagaCounter)); err != nil {
		t.Fatal(err)
	}
	c, err := saga.New(store, saga.WithObserver(m))
	if err != nil {
		t.Fatal(err)
	}
	noop := saga.Local(func(context.Context, *sql.Tx, *saga.Run[trip]) error { return nil })
	def, err := saga.Define("trip", []saga.Step[trip]{
		{Name: "book", Action: noop, Compensate: saga.Local(func(_ context.Context, _ *sql.Tx, r *saga.Run[trip]) error {
			if r.Data.UndoFails {
				return errors.New("hotel unreachable")
			}
			return nil
		}), CompensateRetry: saga.Retry{MaxAttempts: 1}},
		{Name: "pay", Action: saga.Local(func(_ context.Context, _ *sql.Tx, r *saga.Run[trip]) error {
			if r.Data.Fail {
				return handoff.Permanent(errors.New("card declined"))
			}
			return nil
		}), Compensate: noop, Retry: saga.Retry{MaxAttempts: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := saga.Register(c, def)
	if err != nil {
		t.Fatal(err)
	}
	var stuckID string
	for _, tr := range []trip{{}, {}, {Fail: true}, {Fail: true, UndoFails: true}} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if stuckID, err = s.Start(ctx, tx, tr); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if err := saga.WithObserver(nil)(c); err == nil {
		t.Error("WithObserver(nil) accepted")
	}

	fams := scrape(t, exp)
	for event, want := range map[string]float64{"started": 4, "completed": 2, "compensated": 1, "stuck": 1} {
		got := find(t, fams, "handoff_saga_events_total", dto.MetricType_COUNTER,
			map[string]string{"handoff_saga_name": "trip", "handoff_saga_event": event}).GetCounter().GetValue()
		if got != want {
			t.Errorf("%s: %v, want %v", event, got, want)
		}
	}
	for event, want := range map[string]uint64{"completed": 2, "compensated": 1} {
		h := find(t, fams, "handoff_saga_duration_seconds", dto.MetricType_HISTOGRAM,
			map[string]string{"handoff_saga_name": "trip", "handoff_saga_event": event}).GetHistogram()
		if h.GetSampleCount() != want || h.GetSampleSum() < 0 {
			t.Errorf("%s duration: %d samples (sum %v), want %d", event, h.GetSampleCount(), h.GetSampleSum(), want)
		}
	}
	// The gauge read from the store: the stuck trip is 1 under
	// handoff.saga.status=stuck (ended sagas are not counted there), and 0
	// once an operator aborted it.
	stuck := func() float64 {
		return find(t, scrape(t, exp), "handoff_saga_instances", dto.MetricType_GAUGE,
			map[string]string{"handoff_saga_name": "trip", "handoff_saga_status": "stuck"}).GetGauge().GetValue()
	}
	if n := stuck(); n != 1 {
		t.Errorf("stuck trips: %v, want 1", n)
	}
	if err := c.Abort(ctx, stuckID); err != nil {
		t.Fatal(err)
	}
	if n := stuck(); n != 0 {
		t.Errorf("stuck trips after the abort: %v, want 0", n)
	}
}
