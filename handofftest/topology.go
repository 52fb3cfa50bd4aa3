package handofftest

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff/topology/topologystore"
)

// RunTopologyStore runs the conformance suite of the observed topology's
// store (topology.Store). newStore returns an empty store on an isolated
// namespace (migrated, for SQL stores); it registers its own cleanup.
func RunTopologyStore(t *testing.T, newStore func(t testing.TB) topologystore.Store) {
	t.Run("RoundTripsEveryField", func(t *testing.T) { testTopologyRoundTrip(t, newStore(t)) })
	t.Run("AddMergesIntoItsKey", func(t *testing.T) { testTopologyMerge(t, newStore(t)) })
	t.Run("ConcurrentAddsAllCount", func(t *testing.T) { testTopologyConcurrent(t, newStore(t)) })
	t.Run("RecordsSinceAndDeleteBefore", func(t *testing.T) { testTopologyRetention(t, newStore(t)) })
	t.Run("BadRecordRefusesTheBatch", func(t *testing.T) { testTopologyRefuse(t, newStore(t)) })
}

func topoRecord(from, to, kind, route string, calls int64, seen time.Time) topologystore.Record {
	r := topologystore.Record{From: from, To: to, Kind: kind, Route: route, Calls: calls, LastSeen: seen,
		Total: time.Duration(calls) * 3 * time.Millisecond}
	r.Latency[2] = calls
	return r
}

func topoRecords(t testing.TB, s topologystore.Store, since time.Time) []topologystore.Record {
	t.Helper()
	rs, err := s.Records(suiteCtx(t), since)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(rs, func(a, b topologystore.Record) int {
		return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Route, b.Route))
	})
	for i := range rs {
		rs[i].LastSeen = rs[i].LastSeen.UTC()
	}
	return rs
}

func testTopologyRoundTrip(t *testing.T, s topologystore.Store) {
	ctx := suiteCtx(t)
	a := topologystore.Record{From: "checkout", To: "payments", Kind: "sync", Route: "POST /charges", Protocol: "http",
		Calls: 7, Errors: 2, Total: 1234567 * time.Nanosecond, LastSeen: suiteBase}
	for i := range a.Latency {
		a.Latency[i] = int64(i + 1)
	}
	b := topoRecord("checkout", "orders", "async", "publish", 1, suiteBase.Add(time.Second))
	c := topoRecord("orders", "shipping", "async", "consume", 1, suiteBase)
	long := strings.Repeat("r", topologystore.MaxName)
	d := topoRecord("checkout", "payments", "sync", long, 1, suiteBase) // same edge, another route: its own row
	if err := s.Add(ctx, []topologystore.Record{a, b, c, d}); err != nil {
		t.Fatal(err)
	}
	want := []topologystore.Record{b, a, d, c}
	if got := topoRecords(t, s, time.Time{}); !slices.Equal(got, want) {
		t.Errorf("records:\n got %+v\nwant %+v", got, want)
	}
}

func testTopologyMerge(t *testing.T, s topologystore.Store) {
	ctx := suiteCtx(t)
	first := topoRecord("a", "b", "sync", "GET /x", 2, suiteBase.Add(time.Minute))
	second := topoRecord("a", "b", "sync", "GET /x", 3, suiteBase) // earlier: LastSeen stays
	second.Protocol, second.Errors = "http", 1
	second.Latency[12] = 4
	third := topoRecord("a", "b", "sync", "GET /x", 1, suiteBase)
	third.Protocol = "grpc" // the first protocol set is kept
	for _, r := range []topologystore.Record{first, second, third} {
		if err := s.Add(ctx, []topologystore.Record{r}); err != nil {
			t.Fatal(err)
		}
	}
	want := first
	want.Merge(second)
	want.Merge(third)
	if want.Calls != 6 || want.Protocol != "http" || !want.LastSeen.Equal(suiteBase.Add(time.Minute)) {
		t.Fatalf("Record.Merge: %+v", want)
	}
	if got := topoRecords(t, s, time.Time{}); len(got) != 1 || got[0] != want {
		t.Errorf("merged records:\n got %+v\nwant [%+v]", got, want)
	}
}

func testTopologyConcurrent(t *testing.T, s topologystore.Store) {
	ctx := suiteCtx(t)
	const writers, adds = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*adds)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < adds; i++ {
				batch := []topologystore.Record{
					topoRecord("a", "b", "sync", "", 1, suiteBase),
					topoRecord("a", "c", "sync", "", 2, suiteBase),
				}
				errs <- s.Add(ctx, batch)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := topoRecords(t, s, time.Time{})
	if len(got) != 2 || got[0].Calls != writers*adds || got[1].Calls != 2*writers*adds || got[1].Latency[2] != 2*writers*adds {
		t.Errorf("after %d concurrent adds: %+v; want %d and %d calls", writers*adds, got, writers*adds, 2*writers*adds)
	}
}

func testTopologyRetention(t *testing.T, s topologystore.Store) {
	ctx := suiteCtx(t)
	old := topoRecord("a", "b", "sync", "", 1, suiteBase)
	recent := topoRecord("a", "c", "sync", "", 1, suiteBase.Add(time.Hour))
	if err := s.Add(ctx, []topologystore.Record{old, recent}); err != nil {
		t.Fatal(err)
	}
	if got := topoRecords(t, s, suiteBase.Add(time.Hour)); len(got) != 1 || got[0].To != "c" {
		t.Errorf("records since the recent one's time: %+v; want only a -> c", got)
	}
	n, err := s.DeleteBefore(ctx, suiteBase.Add(time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("DeleteBefore: %d, %v; want 1 deleted", n, err)
	}
	if got := topoRecords(t, s, time.Time{}); len(got) != 1 || got[0].To != "c" {
		t.Errorf("after DeleteBefore: %+v; want only a -> c", got)
	}
	// A record seen again after its deletion starts over.
	if err := s.Add(ctx, []topologystore.Record{old}); err != nil {
		t.Fatal(err)
	}
	if got := topoRecords(t, s, time.Time{}); len(got) != 2 || got[0].Calls != 1 {
		t.Errorf("after adding the deleted one again: %+v", got)
	}
}

func testTopologyRefuse(t *testing.T, s topologystore.Store) {
	ctx := suiteCtx(t)
	good := topoRecord("a", "b", "sync", "", 1, suiteBase)
	for name, bad := range map[string]topologystore.Record{
		"route": topoRecord("a", "b", "sync", strings.Repeat("r", topologystore.MaxName+1), 1, suiteBase),
		"kind":  topoRecord("a", "b", "maybe", "", 1, suiteBase),
		"to":    topoRecord("a", "", "sync", "", 1, suiteBase),
	} {
		err := s.Add(ctx, []topologystore.Record{good, bad})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("bad %s: %v; want an error naming %s", name, err, name)
		}
	}
	if got := topoRecords(t, s, time.Time{}); len(got) != 0 {
		t.Errorf("a refused batch stored %+v", got)
	}
}
