package alert_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/alert"
	"github.com/handoffhq/handoff/alert/alertstate"
	"github.com/handoffhq/handoff/relay"
)

// startManager runs a manager with one shared check until the returned
// stop is called.
func startManager(t *testing.T, rec alert.Notifier, opts ...alert.Option) (m *alert.Manager, stop func()) {
	t.Helper()
	m, err := alert.New([]alert.Notifier{rec}, append([]alert.Option{alert.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	return m, func() { cancel(); <-done }
}

// Two managers (two processes) run the same shared check on one source
// with one shared state and one receiver: each episode is sent once,
// firing and resolved, whichever manager sees it first; a second episode
// of the same key is sent again, once.
func TestState_TwoManagersNotifyOncePerEpisode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		state := memory.NewAlertState()
		src := &stats{}
		rec := &recorder{}
		check := alert.WithCheck(alert.Backlog("main", src, time.Minute, 2*time.Second))
		_, stop1 := startManager(t, rec, alert.WithState(state), check)
		defer stop1()
		time.Sleep(500 * time.Millisecond) // the second checks at other instants
		_, stop2 := startManager(t, rec, alert.WithState(state), check)
		defer stop2()

		for episode := 1; episode <= 2; episode++ {
			src.set(relay.Stats{Pending: 3, Oldest: time.Now().Add(-2 * time.Minute)})
			time.Sleep(time.Minute)
			synctest.Wait()
			got, _ := rec.deliveries()
			if len(got) != 2*episode-1 || got[len(got)-1].Status != alert.Firing || got[len(got)-1].Key != "outbox_backlog/main" {
				t.Fatalf("episode %d while it holds: %d deliveries %+v, want one more firing", episode, len(got), got)
			}
			src.set(relay.Stats{})
			time.Sleep(time.Minute)
			synctest.Wait()
			got, _ = rec.deliveries()
			if len(got) != 2*episode || got[len(got)-1].Status != alert.Resolved || got[len(got)-1].Key != "outbox_backlog/main" {
				t.Fatalf("episode %d after it cleared: %d deliveries %+v, want one more resolved", episode, len(got), got)
			}
		}
	})
}

// A manager that fired an alert and stopped (a crash, a deploy) is
// followed by a new one on the same state: it does not send again what is
// still firing, and it resolves it once when it clears. The hook of a
// second process firing the same key sends nothing either.
func TestState_RestartedManagerDoesNotNotifyAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		state := memory.NewAlertState()
		src := &stats{}
		src.set(relay.Stats{Pending: 1, Oldest: time.Now().Add(-time.Hour)})
		rec := &recorder{}
		check := alert.WithCheck(alert.Backlog("main", src, time.Minute, 2*time.Second))
		_, stop := startManager(t, rec, alert.WithState(state), check)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		stop()
		if got, _ := rec.deliveries(); len(got) != 1 {
			t.Fatalf("first life: %+v, want one firing", got)
		}
		m2, stop2 := startManager(t, rec, alert.WithState(state), check)
		defer stop2()
		time.Sleep(time.Minute)
		synctest.Wait()
		m2.Fire(alert.Alert{Condition: alert.ConditionBacklog, Subject: "main", Summary: "again"})
		synctest.Wait()
		if got, _ := rec.deliveries(); len(got) != 1 {
			t.Fatalf("after restart, still firing: %+v, want nothing more", got)
		}
		if a := m2.Active(); len(a) != 1 || a[0].Key != "outbox_backlog/main" {
			t.Errorf("restarted manager's active: %+v, want the firing backlog", a)
		}
		src.set(relay.Stats{})
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got, _ := rec.deliveries(); len(got) != 2 || got[1].Status != alert.Resolved || got[1].Summary == "again" {
			t.Fatalf("after it cleared: %+v, want one resolved of the first firing", got)
		}
	})
}

// A local check's alerts stay out of the shared state: a shared check of
// the same condition in another manager neither sees nor resolves them.
func TestState_LocalCheckStaysLocal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		state := memory.NewAlertState()
		rec := &recorder{}
		r := &fakeRelay{p: relay.Progress{Started: time.Now()}}
		_, stop1 := startManager(t, rec, alert.WithState(state), alert.WithCheck(alert.RelayLease(r, 10*time.Second, time.Second)))
		defer stop1()
		un := &leases{}
		_, stop2 := startManager(t, rec, alert.WithState(state), alert.WithCheck(alert.Unleased("outbox", un, time.Minute, time.Second)))
		defer stop2()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if got, _ := rec.deliveries(); len(got) != 1 || got[0].Key != "relay_no_lease/relay-1" {
			t.Fatalf("deliveries: %+v, want the relay's own relay_no_lease once", got)
		}
		if rs, _ := state.Firing(t.Context(), alert.ConditionNoLease); len(rs) != 0 {
			t.Errorf("shared state holds a local alert: %+v", rs)
		}
	})
}

type failingState struct{}

var errState = errors.New("database down")

func (failingState) Fire(context.Context, alertstate.Record) (bool, error) { return false, errState }
func (failingState) Resolve(context.Context, string, time.Time) (alertstate.Record, bool, error) {
	return alertstate.Record{}, false, errState
}
func (failingState) Firing(context.Context, string) ([]alertstate.Record, error) {
	return nil, errState
}

// A shared state that fails does not lose alerts: the manager notifies as
// without one, once per episode in this process, and resolves.
func TestState_FailingStoreStillNotifies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &stats{}
		rec := &recorder{}
		_, stop := startManager(t, rec, alert.WithState(failingState{}), alert.WithCheck(alert.Backlog("main", src, time.Minute, 2*time.Second)))
		defer stop()
		src.set(relay.Stats{Pending: 1, Oldest: time.Now().Add(-time.Hour)})
		time.Sleep(time.Minute)
		synctest.Wait()
		src.set(relay.Stats{})
		time.Sleep(time.Minute)
		synctest.Wait()
		got, _ := rec.deliveries()
		if len(got) != 2 || got[0].Status != alert.Firing || got[1].Status != alert.Resolved {
			t.Fatalf("deliveries: %+v, want firing then resolved", got)
		}
	})
}

func TestWithState_RefusesNil(t *testing.T) {
	if _, err := alert.New(nil, alert.WithState(nil)); err == nil || err.Error() != "alert: WithState: must not be nil" {
		t.Errorf("WithState(nil): %v", err)
	}
}
