// Package topology is the integration graph of a system: services and
// topics as nodes, handoffs as edges (synchronous calls, publishes,
// consumes). Edges come from two sides: declared, from handoff.yaml
// (FromSystem), and observed, from what ran (Observe, fed by OpenTelemetry
// spans).
//
//	g := topology.FromSystem(sys)
//	g.Observe(topology.Observation{From: "web", To: "order", Kind: system.Sync, Protocol: "http"})
//	for _, c := range g.Chains() {
//		fmt.Println(c.Services, c.Availability) // [gateway order payment] 0.997002999
//	}
//
// Analysis: the maximal synchronous chains, each with its availability as
// the exact product of its members' (declared SLOs, or the observed success
// rate of calls into a member) and its latency as the sum of the members'
// declared latencies; chains starting at an entry point (no inbound edge) are
// all-synchronous critical paths. Fans gives each node's fan-in and fan-out;
// Drift the edges declared but never observed and observed but undeclared.
// Exports: JSON (Document), Graphviz DOT, Mermaid and SVG (a layered layout
// drawn by WriteSVG, no Graphviz needed), synchronous edges red.
//
// Shared is the observed graph of several processes (the instances of a
// server behind a load balancer) that share a Store in their database:
// each batches its observations and adds them to the store every flush
// interval (counts, errors, latency sum and histogram add up; records
// merge by adding), and reads the stored edges over the declared graph
// through a short cache. An edge observed by one process is in another's
// Graph within the flush interval plus the cache TTL; edges not seen for
// the retention period are dropped. adapter/postgres, adapter/mysql,
// adapter/sqlite and adapter/memory have a TopologyStore.
//
// Chains enumerates at most MaxChains paths; the graph is not a tracing
// backend and keeps only counts per edge.
package topology
