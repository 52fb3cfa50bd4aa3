package topology_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/system"
	"github.com/handoffhq/handoff/topology"
)

func newShared(t *testing.T, store topology.Store, opts ...topology.SharedOption) *topology.Shared {
	t.Helper()
	s, err := topology.NewShared(store, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs s until the test's bubble ends it.
func run(t *testing.T, s *topology.Shared) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func edgeOf(t *testing.T, s *topology.Shared, from, to string) topology.Edge {
	t.Helper()
	g, err := s.Graph(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range g.Edges() {
		if e.From == from && e.To == to {
			return e
		}
	}
	return topology.Edge{}
}

func call(from, to, route string, d time.Duration, failed bool) topology.Observation {
	return topology.Observation{From: from, To: to, Kind: system.Sync, Protocol: "http", Route: route, Duration: d, Err: failed}
}

// Two processes sharing a store: each sees its own observations at once,
// the other's within the flush interval plus the cache TTL, and the counts
// and latency histograms of both add up over the declared graph.
func TestShared_TwoProcessesAddUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		declared := topology.New()
		declared.Observe(call("web", "checkout", "", 0, false)) // stands for a declared edge
		store := memory.NewTopologyStore()
		a := newShared(t, store, topology.WithDeclared(declared))
		b := newShared(t, store, topology.WithDeclared(declared))
		run(t, a)
		run(t, b)

		for range 3 {
			if err := a.Observe(call("checkout", "payments", "POST /charges", 7*time.Millisecond, false)); err != nil {
				t.Fatal(err)
			}
		}
		b.Observe(call("checkout", "payments", "POST /refunds", 2*time.Second, true))
		b.Observe(call("checkout", "payments", "POST /charges", 30*time.Millisecond, false))

		if e := edgeOf(t, b, "checkout", "payments"); e.Observed.Calls != 2 {
			t.Errorf("b at once: %d calls; want its own 2", e.Observed.Calls)
		}
		time.Sleep(topology.DefaultFlushInterval + topology.DefaultCacheTTL)
		for name, s := range map[string]*topology.Shared{"a": a, "b": b} {
			e := edgeOf(t, s, "checkout", "payments")
			if e.Observed.Calls != 5 || e.Observed.Errors != 1 || e.Observed.Latency[2] != 3 || e.Observed.Latency[4] != 1 ||
				e.Observed.Latency[9] != 1 || e.Observed.Total != 3*7*time.Millisecond+2*time.Second+30*time.Millisecond {
				t.Errorf("%s after flush + TTL: %+v; want 5 calls, 1 error, buckets 3 at 10ms, 1 at 50ms, 1 at 2.5s", name, e.Observed)
			}
			if strings.Join(e.Routes, ",") != "POST /charges,POST /refunds" || e.Protocol != "http" || e.LastSeen.IsZero() {
				t.Errorf("%s: routes %v, protocol %q, last seen %v", name, e.Routes, e.Protocol, e.LastSeen)
			}
			if e := edgeOf(t, s, "web", "checkout"); e.Observed.Calls != 1 {
				t.Errorf("%s: the declared graph's edge: %+v", name, e)
			}
		}
		if got := declared.Edges(); len(got) != 1 || got[0].Observed.Calls != 1 {
			t.Errorf("the declared graph changed: %+v", got)
		}
	})
}

// A read within the TTL is served from the cache; after it, from the
// store.
func TestShared_ReadCacheLastsItsTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewTopologyStore()
		a := newShared(t, store)
		b := newShared(t, store, topology.WithCacheTTL(10*time.Second))
		edgeOf(t, b, "x", "y") // caches the empty graph
		a.Observe(call("x", "y", "", 0, false))
		if err := a.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if e := edgeOf(t, b, "x", "y"); e.Observed.Calls != 0 {
			t.Errorf("within the TTL: %d calls; want the cached 0", e.Observed.Calls)
		}
		time.Sleep(10 * time.Second)
		if e := edgeOf(t, b, "x", "y"); e.Observed.Calls != 1 {
			t.Errorf("after the TTL: %d calls; want 1", e.Observed.Calls)
		}
	})
}

// Edges not seen for the retention period leave the graph and the store.
func TestShared_RetentionDropsOldEdges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewTopologyStore()
		s := newShared(t, store, topology.WithRetention(time.Hour))
		run(t, s)
		s.Observe(call("old", "gone", "", 0, false))
		time.Sleep(30 * time.Minute)
		s.Observe(call("new", "kept", "", 0, false))
		if e := edgeOf(t, s, "old", "gone"); e.Observed.Calls != 1 {
			t.Fatalf("within retention: %+v", e)
		}
		time.Sleep(45 * time.Minute)
		if e := edgeOf(t, s, "old", "gone"); e.Observed.Calls != 0 {
			t.Errorf("past retention, still in the graph: %+v", e)
		}
		if e := edgeOf(t, s, "new", "kept"); e.Observed.Calls != 1 {
			t.Errorf("within retention, gone: %+v", e)
		}
		s.Observe(call("new", "kept", "", 0, false)) // seen again at 1:15
		if err := s.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(45 * time.Minute) // to 2:00, when Run deletes (every hour from its start)
		synctest.Wait()
		rs, _ := store.Records(context.Background(), time.Time{})
		if len(rs) != 1 || rs[0].From != "new" {
			t.Errorf("store after the deletion: %+v; want only new -> kept", rs)
		}
	})
}

// failingStore fails Add while fail is set.
type failingStore struct {
	*memory.TopologyStore
	fail atomic.Bool
}

func (f *failingStore) Add(ctx context.Context, rs []topology.Record) error {
	if f.fail.Load() {
		return errors.New("database down")
	}
	return f.TopologyStore.Add(ctx, rs)
}

// A flush the store refuses keeps its batch for the next one; Run flushes
// what is left when it stops.
func TestShared_FailedFlushKeepsTheBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &failingStore{TopologyStore: memory.NewTopologyStore()}
		s := newShared(t, store)
		store.fail.Store(true)
		s.Observe(call("a", "b", "", 0, false))
		if err := s.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), "database down") {
			t.Fatalf("flush into a failing store: %v", err)
		}
		if _, err := s.Graph(context.Background()); err == nil {
			t.Error("Graph could not flush, and said nothing")
		}
		s.Observe(call("a", "b", "", 0, false))
		store.fail.Store(false)

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		rs, _ := store.Records(context.Background(), time.Time{})
		if len(rs) != 1 || rs[0].Calls != 2 {
			t.Errorf("after Run stopped: %+v; want a -> b with both calls", rs)
		}
	})
}

// Observations the store could not keep, and bad options, are refused
// with the field and the rule.
func TestShared_RefusesBadInput(t *testing.T) {
	s := newShared(t, memory.NewTopologyStore())
	err := s.Observe(call("a", "b", strings.Repeat("r", 600), 0, false))
	if err == nil || !strings.Contains(err.Error(), "route is 600 bytes") {
		t.Errorf("long route: %v", err)
	}
	if err := s.Observe(topology.Observation{From: "a", To: "b"}); err == nil || !strings.Contains(err.Error(), "kind") {
		t.Errorf("no kind: %v", err)
	}
	for _, o := range []topology.SharedOption{topology.WithFlushInterval(0), topology.WithCacheTTL(-1), topology.WithRetention(0), topology.WithDeclared(nil), topology.WithLogger(nil)} {
		if _, err := topology.NewShared(memory.NewTopologyStore(), o); err == nil {
			t.Error("a bad option was taken")
		}
	}
	if _, err := topology.NewShared(nil); err == nil {
		t.Error("NewShared(nil) was taken")
	}
}

// Spans whose observations a Shared graph cannot all keep are refused
// together: none of them is recorded.
func TestShared_ObserveSpansAllOrNone(t *testing.T) {
	s := newShared(t, memory.NewTopologyStore())
	ok := topology.Span{TraceID: "t", SpanID: "1", Service: "checkout", Kind: topology.KindProducer,
		Attrs: map[string]string{"messaging.destination.name": "orders"}}
	long := topology.Span{TraceID: "t", SpanID: "2", Service: "checkout", Kind: topology.KindProducer,
		Attrs: map[string]string{"messaging.destination.name": strings.Repeat("o", 600)}}
	if _, err := topology.ObserveSpans(s, []topology.Span{ok, long}, nil); err == nil || !strings.Contains(err.Error(), "to is 600 bytes") {
		t.Fatalf("ObserveSpans with a 600-byte topic: %v", err)
	}
	if e := edgeOf(t, s, "checkout", "orders"); e.Observed.Calls != 0 {
		t.Errorf("a refused export recorded %+v", e)
	}
	if n, err := topology.ObserveSpans(s, []topology.Span{ok}, nil); n != 1 || err != nil {
		t.Fatalf("ObserveSpans: %d, %v", n, err)
	}
	if e := edgeOf(t, s, "checkout", "orders"); e.Observed.Calls != 1 {
		t.Errorf("after the good export: %+v", e)
	}
}
