package topology

import (
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/handoffhq/handoff/system"
)

// MaxChains bounds how many chains Chains enumerates: a dense call graph
// has exponentially many paths.
const MaxChains = 10_000

// Chain is a maximal path of synchronous calls: while the last service
// answers, every service before it waits. Its availability is the product
// of its members' (the seeds' chain of death: 99.9% to the 4th is 99.6%).
type Chain struct {
	Services []string `json:"services"`
	// Availability is the exact product of the members' availabilities as a
	// decimal string; AvailabilityValue the same as a float.
	Availability      string  `json:"availability"`
	AvailabilityValue float64 `json:"availabilityValue"`
	// Unknown lists members with neither a declared SLO nor observed
	// calls; they count as 1 in the product.
	Unknown []string `json:"unknown,omitempty"`
	// Latency is the sum of the members' declared latencies.
	Latency time.Duration `json:"latencyNs"`
	// Entry is true when the first service has no inbound edge at all: a
	// request from outside waits on the whole chain. Such a chain is an
	// all-synchronous critical path.
	Entry bool `json:"entry"`
	// Cycle is true when the last service calls back into the chain.
	Cycle bool `json:"cycle,omitempty"`
}

// Hops is the number of calls in the chain.
func (c Chain) Hops() int { return len(c.Services) - 1 }

// Availability returns a service's availability exactly: its declared SLO,
// else the success rate of the synchronous calls observed into it; ok is
// false when neither is known.
func (g *Graph) Availability(service string) (*big.Rat, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.availability(service)
}

func (g *Graph) availability(service string) (*big.Rat, bool) {
	if n := g.nodes[service]; n != nil && n.Availability != "" {
		if r := rat(n.Availability); r != nil {
			return r, true
		}
	}
	var calls, errs int64
	for k, e := range g.edges {
		if k.To == service && k.Kind == system.Sync {
			calls += e.Observed.Calls
			errs += e.Observed.Errors
		}
	}
	if calls == 0 {
		return big.NewRat(1, 1), false
	}
	return big.NewRat(calls-errs, calls), true
}

// Chains returns the maximal synchronous chains of two or more services,
// longest first, then least available.
func (g *Graph) Chains() []Chain {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string][]string{}
	calls := map[string][]string{}
	inSync := map[string]bool{}
	inAny := map[string]bool{}
	for k := range g.edges {
		inAny[k.To] = true
		if k.Kind == system.Sync {
			calls[k.From] = append(calls[k.From], k.To)
			inSync[k.To] = true
		}
	}
	for _, v := range calls {
		sort.Strings(v)
	}
	var heads []string
	for from := range calls {
		if !inSync[from] {
			heads = append(heads, from)
		}
	}
	if len(heads) == 0 { // every caller is in a cycle: start anywhere
		for from := range calls {
			heads = append(heads, from)
		}
	}
	sort.Strings(heads)
	cycles := map[string]bool{}
	var walk func(path []string)
	walk = func(path []string) {
		if len(out) >= MaxChains {
			return
		}
		last := path[len(path)-1]
		extended := false
		for _, next := range calls[last] {
			if contains(path, next) {
				key := strings.Join(path, ">")
				cycles[key] = true
				continue
			}
			extended = true
			walk(append(path[:len(path):len(path)], next))
		}
		if !extended && len(path) > 1 {
			out[strings.Join(path, ">")] = append([]string(nil), path...)
		}
	}
	for _, h := range heads {
		walk([]string{h})
	}
	chains := make([]Chain, 0, len(out))
	for key, path := range out {
		c := Chain{Services: path, Entry: !inAny[path[0]], Cycle: cycles[key]}
		prod := big.NewRat(1, 1)
		for _, s := range path {
			a, ok := g.availability(s)
			if !ok {
				c.Unknown = append(c.Unknown, s)
			}
			prod.Mul(prod, a)
			if n := g.nodes[s]; n != nil {
				c.Latency += n.Latency
			}
		}
		c.Availability = decimal(prod)
		c.AvailabilityValue, _ = prod.Float64()
		chains = append(chains, c)
	}
	sort.Slice(chains, func(i, j int) bool {
		a, b := chains[i], chains[j]
		if len(a.Services) != len(b.Services) {
			return len(a.Services) > len(b.Services)
		}
		if a.AvailabilityValue != b.AvailabilityValue {
			return a.AvailabilityValue < b.AvailabilityValue
		}
		return strings.Join(a.Services, ">") < strings.Join(b.Services, ">")
	})
	return chains
}

// decimal renders r exactly when its decimal expansion ends within 30
// digits, else rounded to 30.
func decimal(r *big.Rat) string {
	s := r.FloatString(30)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	return s
}

// Fan is a node's fan-in (distinct nodes with an edge to it) and fan-out
// (distinct nodes it has an edge to).
type Fan struct {
	Node string `json:"node"`
	In   int    `json:"in"`
	Out  int    `json:"out"`
}

// Fans returns every node's fan-in and fan-out, sorted by id.
func (g *Graph) Fans() []Fan {
	g.mu.Lock()
	defer g.mu.Unlock()
	in, out := map[string]map[string]bool{}, map[string]map[string]bool{}
	add := func(m map[string]map[string]bool, k, v string) {
		if m[k] == nil {
			m[k] = map[string]bool{}
		}
		m[k][v] = true
	}
	for k := range g.edges {
		add(out, k.From, k.To)
		add(in, k.To, k.From)
	}
	fans := make([]Fan, 0, len(g.nodes))
	for id := range g.nodes {
		fans = append(fans, Fan{Node: id, In: len(in[id]), Out: len(out[id])})
	}
	sort.Slice(fans, func(i, j int) bool { return fans[i].Node < fans[j].Node })
	return fans
}

// DriftKind says which side an edge is missing from.
type DriftKind string

// Drift kinds.
const (
	NotObserved DriftKind = "declared, never observed"
	NotDeclared DriftKind = "observed, not declared"
)

// Drift is an edge present on one side only.
type Drift struct {
	Kind DriftKind `json:"drift"`
	Edge Edge      `json:"edge"`
}

// Drift returns the edges declared but never observed and those observed
// but not declared. With no observations at all there is nothing to compare
// and it returns nil.
func (g *Graph) Drift() []Drift {
	var out []Drift
	any := false
	for _, e := range g.Edges() {
		if e.Observed.Calls > 0 {
			any = true
		}
		switch {
		case e.Declared && e.Observed.Calls == 0:
			out = append(out, Drift{NotObserved, e})
		case !e.Declared:
			out = append(out, Drift{NotDeclared, e})
		}
	}
	if !any {
		return nil
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
