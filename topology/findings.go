package topology

import (
	"fmt"
	"sort"
	"strings"

	"github.com/handoffhq/handoff/system"
)

// Anti-pattern rules.
const (
	RuleLongChain      = "sync-chain-length"
	RuleLowAvailChain  = "sync-chain-availability"
	RuleSharedTable    = "shared-table"
	RulePhantomEvent   = "phantom-event"
	defaultMaxHops     = 3
	defaultMinAvailPct = 99.5
)

// Thresholds of the anti-pattern findings. The zero value flags chains of
// more than 3 hops and chains below 99.5% availability.
type Thresholds struct {
	MaxHops int
	// MinAvailability is a fraction (0.995).
	MinAvailability float64
}

// Finding is one anti-pattern found, with the owners who should act.
type Finding struct {
	Rule    string   `json:"rule"`
	Subject string   `json:"subject"`
	Message string   `json:"message"`
	Owners  []string `json:"owners"`
}

// PayloadFields returns the top-level fields of a schema subject's latest
// payload, ok false when unknown (a registry lookup, usually).
type PayloadFields func(subject string) (fields []string, ok bool)

// Findings returns the anti-patterns of a system: synchronous chains longer
// than th.MaxHops or less available than th.MinAvailability (the chain of
// death); tables written by two services (integration through a shared
// database); and phantom events, whose payload holds only identifiers while
// a consumer calls the producer back synchronously for the rest (declared or
// observed in g). fields may be nil: phantom events are then not looked for.
func Findings(s *system.System, g *Graph, th Thresholds, fields PayloadFields) []Finding {
	if th.MaxHops == 0 {
		th.MaxHops = defaultMaxHops
	}
	if th.MinAvailability == 0 {
		th.MinAvailability = defaultMinAvailPct / 100
	}
	owner := func(names ...string) []string {
		set := map[string]bool{}
		for _, n := range names {
			if svc := s.Service(n); svc != nil && svc.Owner != "" {
				set[svc.Owner] = true
			}
		}
		out := make([]string, 0, len(set))
		for o := range set {
			out = append(out, o)
		}
		sort.Strings(out)
		return out
	}
	var out []Finding
	for _, c := range g.Chains() {
		path := strings.Join(c.Services, " -> ")
		if c.Hops() > th.MaxHops {
			out = append(out, Finding{RuleLongChain, path, fmt.Sprintf("%d synchronous hops (at most %d): every service waits on the next; make a hop asynchronous", c.Hops(), th.MaxHops), owner(c.Services...)})
		}
		if c.AvailabilityValue < th.MinAvailability {
			out = append(out, Finding{RuleLowAvailChain, path, fmt.Sprintf("availability %s%% is below %s%%: the product of its members'", pct(c.AvailabilityValue), pct(th.MinAvailability)), owner(c.Services...)})
		}
	}
	writers := map[string][]string{}
	for _, svc := range s.Services {
		for _, w := range svc.Writes {
			writers[w] = append(writers[w], svc.Name)
		}
	}
	tables := make([]string, 0, len(writers))
	for t := range writers {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		if ws := writers[t]; len(ws) > 1 {
			out = append(out, Finding{RuleSharedTable, t, fmt.Sprintf("written by %s: integration through a shared database; let one service own it and publish its changes", strings.Join(ws, " and ")), owner(ws...)})
		}
	}
	if fields != nil {
		edges := g.Edges()
		calls := map[[2]string]bool{}
		for _, e := range edges {
			if e.Kind == system.Sync {
				calls[[2]string{e.From, e.To}] = true
			}
		}
		s.Integrations(func(prod *system.Service, in *system.Integration) {
			if in.Direction != system.Publish || in.Subject == "" {
				return
			}
			f, ok := fields(in.Subject)
			if !ok || !onlyIdentifiers(f) {
				return
			}
			for _, e := range edges {
				if e.Kind == system.Async && e.From == in.Topic && calls[[2]string{e.To, prod.Name}] {
					out = append(out, Finding{RulePhantomEvent, in.Topic, fmt.Sprintf("%s carries only identifiers (%s) and %s calls %s back synchronously for the rest: put the data the consumer needs in the event", in.Subject, strings.Join(f, ", "), e.To, prod.Name), owner(prod.Name, e.To)})
				}
			}
		})
	}
	return out
}

func onlyIdentifiers(fields []string) bool {
	if len(fields) == 0 {
		return false
	}
	for _, f := range fields {
		l := strings.ToLower(f)
		if l != "id" && !strings.HasSuffix(l, "id") && !strings.HasSuffix(l, "_id") && l != "ids" && !strings.HasSuffix(l, "ids") {
			return false
		}
	}
	return true
}

func pct(f float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", f*100), "0"), ".")
}
