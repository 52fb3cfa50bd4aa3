package handofftest

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff/alert/alertstate"
)

// RunAlertState runs the conformance suite of the shared alert state
// (alertstate.Store). newStore returns an empty store on an isolated
// namespace (migrated, for SQL stores); it registers its own cleanup.
// Stores on one database are opened twice by calling newStore once and
// sharing it: concurrency is tested through one store value.
func RunAlertState(t *testing.T, newStore func(t testing.TB) alertstate.Store) {
	t.Run("FireOnceResolveOnceFireAgain", func(t *testing.T) { testAlertEpisodes(t, newStore(t)) })
	t.Run("FiringByConditionRoundTrips", func(t *testing.T) { testAlertFiring(t, newStore(t)) })
	t.Run("ConcurrentFireOneWins", func(t *testing.T) { testAlertConcurrent(t, newStore(t)) })
	t.Run("BadRecordRefused", func(t *testing.T) { testAlertRefuse(t, newStore(t)) })
}

func alertRecord(key, condition string, fired time.Time) alertstate.Record {
	return alertstate.Record{Key: key, Condition: condition, Subject: strings.TrimPrefix(key, condition+"/"),
		Severity: "critical", Summary: "outbox main is behind: é ✓", Details: map[string]string{"pending": "3"}, FiredAt: fired}
}

func testAlertEpisodes(t *testing.T, s alertstate.Store) {
	ctx := suiteCtx(t)
	r := alertRecord("outbox_backlog/main", "outbox_backlog", suiteBase)
	if _, ok, err := s.Resolve(ctx, r.Key, suiteBase); err != nil || ok {
		t.Fatalf("Resolve of a key never fired = %v, %v; want false", ok, err)
	}
	if ok, err := s.Fire(ctx, r); err != nil || !ok {
		t.Fatalf("first Fire = %v, %v; want true", ok, err)
	}
	later := r
	later.FiredAt, later.Summary = suiteBase.Add(time.Minute), "later"
	if ok, err := s.Fire(ctx, later); err != nil || ok {
		t.Fatalf("Fire of a firing key = %v, %v; want false", ok, err)
	}
	resolvedAt := suiteBase.Add(2 * time.Minute)
	got, ok, err := s.Resolve(ctx, r.Key, resolvedAt)
	if err != nil || !ok {
		t.Fatalf("Resolve of a firing key = %v, %v; want true", ok, err)
	}
	want := r
	want.ResolvedAt = resolvedAt
	if !alertEqual(got, want) {
		t.Errorf("resolved record:\n got %+v\nwant %+v (the first firing's fields)", got, want)
	}
	if _, ok, err := s.Resolve(ctx, r.Key, resolvedAt); err != nil || ok {
		t.Fatalf("second Resolve = %v, %v; want false", ok, err)
	}
	if ok, err := s.Fire(ctx, later); err != nil || !ok {
		t.Fatalf("Fire after resolution (a new episode) = %v, %v; want true", ok, err)
	}
	rs := alertFiring(t, s, "outbox_backlog")
	if len(rs) != 1 || !alertEqual(rs[0], later) {
		t.Errorf("firing after a new episode: %+v, want %+v", rs, later)
	}
}

func testAlertFiring(t *testing.T, s alertstate.Store) {
	ctx := suiteCtx(t)
	a := alertRecord("saga_stuck/order", "saga_stuck", suiteBase)
	b := alertRecord("saga_stuck/payment", "saga_stuck", suiteBase.Add(time.Second))
	b.Details = nil
	c := alertRecord("dead_letter/shipping", "dead_letter", suiteBase)
	d := alertRecord("saga_stuck/"+strings.Repeat("k", alertstate.MaxKey-len("saga_stuck/")), "saga_stuck", suiteBase)
	for _, r := range []alertstate.Record{a, b, c, d} {
		if ok, err := s.Fire(ctx, r); err != nil || !ok {
			t.Fatalf("Fire %s = %v, %v", r.Key, ok, err)
		}
	}
	if _, ok, err := s.Resolve(ctx, d.Key, suiteBase.Add(time.Hour)); err != nil || !ok {
		t.Fatalf("Resolve %s = %v, %v", d.Key, ok, err)
	}
	rs := alertFiring(t, s, "saga_stuck")
	if len(rs) != 2 || !alertEqual(rs[0], a) || !alertEqual(rs[1], b) {
		t.Errorf("firing saga_stuck:\n got %+v\nwant %+v and %+v", rs, a, b)
	}
	if rs := alertFiring(t, s, "none"); len(rs) != 0 {
		t.Errorf("firing of an unknown condition: %+v", rs)
	}
}

// Processes sharing the state fire one key at once, in each of two
// episodes: exactly one is told it fired, and exactly one that it resolved.
func testAlertConcurrent(t *testing.T, s alertstate.Store) {
	ctx := suiteCtx(t)
	const n = 8
	for episode := range 2 {
		var wins, resolves sync.WaitGroup
		var mu sync.Mutex
		fired, resolved := 0, 0
		r := alertRecord("relay_no_lease/outbox", "relay_no_lease", suiteBase.Add(time.Duration(episode)*time.Hour))
		for range n {
			wins.Go(func() {
				ok, err := s.Fire(ctx, r)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				if ok {
					fired++
				}
				mu.Unlock()
			})
		}
		wins.Wait()
		for range n {
			resolves.Go(func() {
				_, ok, err := s.Resolve(ctx, r.Key, r.FiredAt.Add(time.Minute))
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				if ok {
					resolved++
				}
				mu.Unlock()
			})
		}
		resolves.Wait()
		if fired != 1 || resolved != 1 {
			t.Errorf("episode %d: %d of %d concurrent Fire calls won and %d Resolve calls, want exactly 1 each", episode+1, fired, n, resolved)
		}
	}
}

func testAlertRefuse(t *testing.T, s alertstate.Store) {
	ctx := suiteCtx(t)
	for _, c := range []struct {
		r    alertstate.Record
		want string
	}{
		{alertstate.Record{FiredAt: suiteBase}, "Key"},
		{alertRecord(strings.Repeat("k", alertstate.MaxKey+1), "c", suiteBase), "Key"},
		{alertRecord("k", strings.Repeat("c", alertstate.MaxCondition+1), suiteBase), "Condition"},
		{alertRecord("k", "c", time.Time{}), "FiredAt"},
	} {
		if ok, err := s.Fire(ctx, c.r); ok || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Fire of a bad record = %v, %v; want an error naming %s", ok, err, c.want)
		}
	}
	if rs := alertFiring(t, s, "c"); len(rs) != 0 {
		t.Errorf("a refused record is firing: %+v", rs)
	}
}

func alertFiring(t testing.TB, s alertstate.Store, condition string) []alertstate.Record {
	t.Helper()
	rs, err := s.Firing(suiteCtx(t), condition)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(rs, func(a, b alertstate.Record) int { return cmp.Compare(a.Key, b.Key) })
	return rs
}

func alertEqual(a, b alertstate.Record) bool {
	return a.Key == b.Key && a.Condition == b.Condition && a.Subject == b.Subject && a.Severity == b.Severity &&
		a.Summary == b.Summary && maps.Equal(a.Details, b.Details) && a.FiredAt.Equal(b.FiredAt) && a.ResolvedAt.Equal(b.ResolvedAt)
}
