package topology_test

import (
	"context"
	"fmt"

	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/system"
	"github.com/handoffhq/handoff/topology"
)

// Two processes share their observed edges through one store (in
// production, adapter/postgres's TopologyStore on the database they
// share; Run flushes every interval): what one observed is in the other's
// graph once flushed, and the counts add up.
func ExampleShared() {
	ctx := context.Background()
	store := memory.NewTopologyStore()
	a, _ := topology.NewShared(store)
	b, _ := topology.NewShared(store)

	a.Observe(topology.Observation{From: "checkout", To: "payments", Kind: system.Sync, Protocol: "http"})
	b.Observe(topology.Observation{From: "checkout", To: "payments", Kind: system.Sync, Protocol: "http"})
	a.Flush(ctx)

	g, _ := b.Graph(ctx) // flushes b's own observation first
	for _, e := range g.Edges() {
		fmt.Println(e.From, "->", e.To, e.Observed.Calls)
	}
	// Output: checkout -> payments 2
}
