package topology

import (
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/handoffhq/handoff/system"
	"github.com/handoffhq/handoff/topology/topologystore"
)

// NodeKind tells services from topics.
type NodeKind string

// Node kinds.
const (
	Service NodeKind = "service"
	Topic   NodeKind = "topic"
)

// Node is a service or a topic.
type Node struct {
	ID    string   `json:"id"`
	Kind  NodeKind `json:"kind"`
	Owner string   `json:"owner,omitempty"`
	// Availability is the declared SLO as written ("0.999"), empty if none.
	Availability string        `json:"availability,omitempty"`
	Latency      time.Duration `json:"latencyNs,omitempty"`
}

// EdgeKey identifies an edge: its ends and its kind. A service calling
// another over two routes is one edge with two routes.
type EdgeKey struct {
	From, To string
	Kind     system.Kind
}

// Edge is a handoff between two nodes: a synchronous call between services,
// a publish (service to topic) or a consume (topic to service).
type Edge struct {
	From     string      `json:"from"`
	To       string      `json:"to"`
	Kind     system.Kind `json:"kind"`
	Protocol string      `json:"protocol,omitempty"`
	Routes   []string    `json:"routes,omitempty"`
	Declared bool        `json:"declared"`
	// Observed counts what spans showed of this edge.
	Observed Stats `json:"observed"`
	// Line is the handoff.yaml line of the declaration, zero if undeclared.
	Line int `json:"line,omitempty"`
	// LastSeen is when a Store last recorded the edge (see Shared); zero
	// for a graph fed by Observe alone.
	LastSeen time.Time `json:"lastSeen,omitzero"`
}

// Stats are the observations of one edge.
type Stats struct {
	Calls  int64         `json:"calls"`
	Errors int64         `json:"errors"`
	Total  time.Duration `json:"totalNs"`
	// Latency counts the calls' durations per bucket of
	// topologystore.LatencyBounds (the last bucket: above the largest).
	Latency Histogram `json:"latency,omitzero"`
}

// Histogram is topologystore.Histogram: call counts per latency bucket,
// merged by adding.
type Histogram = topologystore.Histogram

// Record is topologystore.Record: the observations of one edge over one
// route, as a Store keeps them.
type Record = topologystore.Record

// Store is topologystore.Store: where several processes keep their
// observed edges (adapter/postgres, adapter/mysql, adapter/sqlite and
// adapter/memory have one).
type Store = topologystore.Store

// SuccessRate is the share of observed calls that succeeded, and whether
// any were observed.
func (s Stats) SuccessRate() (float64, bool) {
	if s.Calls == 0 {
		return 0, false
	}
	return float64(s.Calls-s.Errors) / float64(s.Calls), true
}

// Graph is the integration graph. It is safe for concurrent use: the span
// processor records into it while readers analyse it.
type Graph struct {
	mu    sync.Mutex
	nodes map[string]*Node
	edges map[EdgeKey]*Edge
}

// New returns an empty graph.
func New() *Graph {
	return &Graph{nodes: map[string]*Node{}, edges: map[EdgeKey]*Edge{}}
}

// FromSystem returns the graph declared by a handoff.yaml: every service and
// topic a node, every integration an edge (calls from caller to callee,
// publishes from service to topic, consumes from topic to service).
// Integrations without a kind are left out (the gate reports them).
func FromSystem(s *system.System) *Graph {
	g := New()
	for _, svc := range s.Services {
		n := g.node(svc.Name, Service)
		n.Owner, n.Latency = svc.Owner, svc.Latency
		if svc.Availability > 0 {
			n.Availability = strconv.FormatFloat(svc.Availability, 'f', -1, 64)
		}
	}
	for _, t := range s.Topics {
		g.node(t.Name, Topic).Owner = t.Owner
	}
	s.Integrations(func(svc *system.Service, in *system.Integration) {
		var from, to string
		switch {
		case in.Kind == system.Sync:
			from, to = svc.Name, in.To
		case in.Kind == system.Async && in.Direction == system.Publish:
			from, to = svc.Name, in.Topic
		case in.Kind == system.Async && in.Direction == system.Consume:
			from, to = in.Topic, svc.Name
		default:
			return
		}
		e := g.edge(EdgeKey{from, to, in.Kind})
		e.Declared, e.Protocol = true, in.Protocol
		if e.Line == 0 {
			e.Line = in.Line
		}
		e.addRoute(in.Route)
	})
	return g
}

func (g *Graph) node(id string, k NodeKind) *Node {
	n := g.nodes[id]
	if n == nil {
		n = &Node{ID: id, Kind: k}
		g.nodes[id] = n
	}
	return n
}

func (g *Graph) edge(k EdgeKey) *Edge {
	e := g.edges[k]
	if e == nil {
		e = &Edge{From: k.From, To: k.To, Kind: k.Kind}
		g.edges[k] = e
	}
	return e
}

func (e *Edge) addRoute(r string) {
	if r == "" {
		return
	}
	for _, v := range e.Routes {
		if v == r {
			return
		}
	}
	e.Routes = append(e.Routes, r)
	sort.Strings(e.Routes)
}

// Observation is one handoff seen at run time, usually from a span.
type Observation struct {
	// From and To are service names, or a topic name on the topic side of
	// a publish (To) or consume (From).
	From, To string
	Kind     system.Kind
	Protocol string
	Route    string
	Err      bool
	Duration time.Duration
}

// Observer takes observations: a Graph records them at once, a Shared
// graph batches them into its Store. topologyotlp's receiver feeds one.
type Observer interface {
	Observe(Observation) error
}

var _ Observer = (*Graph)(nil)

// Observe records an observation: the edge is created if undeclared (it is
// then drift) and its statistics grow.
func (g *Graph) Observe(o Observation) error {
	r, err := o.record()
	if err != nil {
		return err
	}
	return g.Add(r)
}

// record is o as a Record of one call (no LastSeen).
func (o Observation) record() (Record, error) {
	if o.From == "" || o.To == "" {
		return Record{}, fmt.Errorf("topology: observation without both ends (from %q, to %q)", o.From, o.To)
	}
	if o.Kind != system.Sync && o.Kind != system.Async {
		return Record{}, fmt.Errorf("topology: observation %s -> %s: kind %q is neither sync nor async", o.From, o.To, o.Kind)
	}
	r := Record{From: o.From, To: o.To, Kind: string(o.Kind), Route: o.Route, Protocol: o.Protocol,
		Calls: 1, Total: max(o.Duration, 0)}
	if o.Err {
		r.Errors = 1
	}
	r.Latency.Observe(r.Total)
	return r, nil
}

// Add merges a record (what a Store keeps of many observations of one edge
// and route) into the graph, as that many calls to Observe would, and
// moves the edge's LastSeen up to the record's.
func (g *Graph) Add(r Record) error {
	if r.From == "" || r.To == "" {
		return fmt.Errorf("topology: record without both ends (from %q, to %q)", r.From, r.To)
	}
	kind := system.Kind(r.Kind)
	if kind != system.Sync && kind != system.Async {
		return fmt.Errorf("topology: record %s -> %s: kind %q is neither sync nor async", r.From, r.To, r.Kind)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	fromKind, toKind := Service, Service
	if kind == system.Async {
		if n, ok := g.nodes[r.To]; (ok && n.Kind == Topic) || !ok && r.Route == "publish" {
			toKind = Topic
		}
		if n, ok := g.nodes[r.From]; ok && n.Kind == Topic || !ok && r.Route == "consume" {
			fromKind = Topic
		}
	}
	g.node(r.From, fromKind)
	g.node(r.To, toKind)
	e := g.edge(EdgeKey{r.From, r.To, kind})
	if e.Protocol == "" {
		e.Protocol = r.Protocol
	}
	if r.Route != "publish" && r.Route != "consume" {
		e.addRoute(r.Route)
	}
	e.Observed.Calls += r.Calls
	e.Observed.Errors += r.Errors
	e.Observed.Total += r.Total
	e.Observed.Latency.Merge(r.Latency)
	if r.LastSeen.After(e.LastSeen) {
		e.LastSeen = r.LastSeen
	}
	return nil
}

// clone returns a deep copy of g.
func (g *Graph) clone() *Graph {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := New()
	for id, n := range g.nodes {
		cn := *n
		c.nodes[id] = &cn
	}
	for k, e := range g.edges {
		ce := *e
		ce.Routes = append([]string(nil), e.Routes...)
		c.edges[k] = &ce
	}
	return c
}

// Nodes returns copies of the nodes, sorted by id.
func (g *Graph) Nodes() []Node {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Node, 0, len(g.nodes))
	for _, n := range g.nodes {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Edges returns copies of the edges, sorted by ends and kind.
func (g *Graph) Edges() []Edge {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Edge, 0, len(g.edges))
	for _, e := range g.edges {
		c := *e
		c.Routes = append([]string(nil), e.Routes...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.From != b.From {
			return a.From < b.From
		}
		if a.To != b.To {
			return a.To < b.To
		}
		return a.Kind < b.Kind
	})
	return out
}

// rat parses a decimal availability exactly.
func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil
	}
	return r
}
