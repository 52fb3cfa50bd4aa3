package alert_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/handoffhq/handoff/alert"
	"github.com/handoffhq/handoff/saga"
)

type sagaCounts struct {
	mu sync.Mutex
	cs []saga.Count
}

func (s *sagaCounts) CountsByName(context.Context) ([]saga.Count, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]saga.Count(nil), s.cs...), nil
}

func (s *sagaCounts) set(cs ...saga.Count) { s.mu.Lock(); s.cs = cs; s.mu.Unlock() }

// A stuck saga is delivered within 5 seconds by the periodic check alone
// (no hook: as after a crash), once while it stays stuck, and resolved
// within 5 seconds of the last one being aborted; the coordinator's hook
// for a second stuck saga of the same name while it fires adds nothing.
func TestStuckSagas_FiresWithinFiveSecondsOnceAndResolves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		src := &sagaCounts{}
		src.set(saga.Count{Name: "order", Status: saga.Running, Sagas: 4})
		rec := &recorder{}
		m, err := alert.New([]alert.Notifier{rec}, alert.WithLogger(quiet), alert.WithCheck(alert.StuckSagas(src, 2*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got, _ := rec.deliveries(); len(got) != 0 {
			t.Fatalf("sent %v with no stuck saga", got)
		}
		stuck := time.Now()
		src.set(saga.Count{Name: "order", Status: saga.Running, Sagas: 3}, saga.Count{Name: "order", Status: saga.Stuck, Sagas: 1})
		time.Sleep(time.Minute)
		m.SagaStuck(ctx, saga.Alert{SagaID: "s2", Name: "order", Step: "charge"})
		time.Sleep(time.Minute)
		synctest.Wait()
		got, at := rec.deliveries()
		if len(got) != 1 || got[0].Key != "saga_stuck/order" || got[0].Status != alert.Firing || got[0].Details["stuck"] != "1" {
			t.Fatalf("deliveries while stuck: %+v, want one firing saga_stuck/order", got)
		}
		if d := at[0].Sub(stuck); d > 5*time.Second {
			t.Errorf("delivered %v after the saga got stuck, want within 5s", d)
		}
		cleared := time.Now()
		src.set(saga.Count{Name: "order", Status: saga.Running, Sagas: 3})
		time.Sleep(time.Minute)
		synctest.Wait()
		got, at = rec.deliveries()
		if len(got) != 2 || got[1].Status != alert.Resolved || got[1].Key != "saga_stuck/order" {
			t.Fatalf("deliveries after it cleared: %+v, want firing then resolved", got)
		}
		if d := at[1].Sub(cleared); d > 5*time.Second {
			t.Errorf("resolved %v after it cleared, want within 5s", d)
		}
		cancel()
		<-done
	})
}

// The coordinator's hook fires saga_stuck at once, with the saga's id and
// step; the check, on its next round, keeps it (same key) rather than
// sending it again.
func TestManager_SagaStuckHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		src := &sagaCounts{}
		rec := &recorder{}
		m, err := alert.New([]alert.Notifier{rec}, alert.WithLogger(quiet), alert.WithCheck(alert.StuckSagas(src, 2*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		synctest.Wait()
		src.set(saga.Count{Name: "order", Status: saga.Stuck, Sagas: 1})
		if err := m.SagaStuck(ctx, saga.Alert{SagaID: "s1", Name: "order", Step: "charge", Error: "card api down"}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		got, _ := rec.deliveries()
		if len(got) != 1 || got[0].Key != "saga_stuck/order" || got[0].Details["saga_id"] != "s1" || got[0].Details["step"] != "charge" {
			t.Fatalf("deliveries after the hook: %+v", got)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got, _ := rec.deliveries(); len(got) != 1 {
			t.Fatalf("deliveries after the checks: %+v, want the hook's one", got)
		}
		cancel()
		<-done
	})
}

type leases struct {
	mu sync.Mutex
	un map[int]time.Time
}

func (l *leases) Unleased(context.Context) (map[int]time.Time, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int]time.Time{}
	for p, t := range l.un {
		out[p] = t
	}
	return out, nil
}

func (l *leases) set(un map[int]time.Time) { l.mu.Lock(); l.un = un; l.mu.Unlock() }

// Partitions uncovered for less than the grace do not fire; once one has
// been uncovered past it, relay_no_lease is delivered within 5 seconds,
// once (a second partition crossing later is the same episode), and
// resolves within 5 seconds of a relay taking the leases.
func TestUnleased_FiresPastGraceAndResolves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		src := &leases{}
		rec := &recorder{}
		m, err := alert.New([]alert.Notifier{rec}, alert.WithLogger(quiet),
			alert.WithCheck(alert.Unleased("outbox", src, 30*time.Second, 2*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		start := time.Now()
		src.set(map[int]time.Time{3: start, 5: start.Add(-10 * time.Second)})
		time.Sleep(19 * time.Second) // partition 5 uncovered for 29s: within the grace
		synctest.Wait()
		if got, _ := rec.deliveries(); len(got) != 0 {
			t.Fatalf("sent %v within the grace", got)
		}
		crossed := start.Add(20 * time.Second)
		time.Sleep(time.Minute)
		synctest.Wait()
		got, at := rec.deliveries()
		if len(got) != 1 || got[0].Key != "relay_no_lease/outbox" || got[0].Details["partitions"] != "[5]" {
			t.Fatalf("deliveries past the grace: %+v, want one relay_no_lease/outbox for [5] (partition 3 crosses later, in the same episode)", got)
		}
		if d := at[0].Sub(crossed); d > 5*time.Second {
			t.Errorf("delivered %v after the grace passed, want within 5s", d)
		}
		cleared := time.Now()
		src.set(nil)
		time.Sleep(time.Minute)
		synctest.Wait()
		got, at = rec.deliveries()
		if len(got) != 2 || got[1].Status != alert.Resolved {
			t.Fatalf("deliveries after a relay took the leases: %+v", got)
		}
		if d := at[1].Sub(cleared); d > 5*time.Second {
			t.Errorf("resolved %v after it cleared, want within 5s", d)
		}
		cancel()
		<-done
	})
}
