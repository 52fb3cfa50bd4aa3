package topology_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/system"
	"github.com/handoffhq/handoff/topology"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func sample(t testing.TB) *topology.Graph {
	t.Helper()
	s, err := system.Load(filepath.Join("..", "system", "testdata", "sample", "handoff.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return topology.FromSystem(s)
}

// The sample's four-hop chain: five services at 99.9% each is exactly
// 0.999^5; the chain from shipping differs only in its head (99.95%).
func TestChains_AvailabilityIsTheExactProduct(t *testing.T) {
	chains := sample(t).Chains()
	if len(chains) != 2 {
		t.Fatalf("chains: %+v", chains)
	}
	want := []struct {
		services     string
		availability string
		latency      time.Duration
		entry        bool
	}{
		{"gateway>order>payment>fraud>ledger", "0.995009990004999", 150 * time.Millisecond, true},
		{"shipping>order>payment>fraud>ledger", "0.9955079930029995", 165 * time.Millisecond, false},
	}
	for i, w := range want {
		c := chains[i]
		if got := strings.Join(c.Services, ">"); got != w.services || c.Availability != w.availability || c.Latency != w.latency || c.Entry != w.entry || c.Hops() != 4 {
			t.Errorf("chain %d: %s %s %v entry=%v, want %s %s %v entry=%v", i, got, c.Availability, c.Latency, c.Entry, w.services, w.availability, w.latency, w.entry)
		}
	}
}

// The seeds' figure: 99.9% to the 4th is 99.6% (0.996005996001 exactly).
func TestChains_SeedsFigure(t *testing.T) {
	s, err := system.Parse("", []byte(`version: 1
system: four
services:
  - {name: a, owner: o, availability: 0.999, integrations: [{kind: sync, protocol: http, to: b}]}
  - {name: b, owner: o, availability: 0.999, integrations: [{kind: sync, protocol: http, to: c}]}
  - {name: c, owner: o, availability: 0.999, integrations: [{kind: sync, protocol: grpc, to: d}]}
  - {name: d, owner: o, availability: 0.999, integrations: [{kind: sync, protocol: http, to: b}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	chains := topology.FromSystem(s).Chains()
	if len(chains) != 1 || chains[0].Availability != "0.996005996001" || !chains[0].Cycle || !chains[0].Entry {
		t.Fatalf("chains: %+v", chains)
	}
}

// Observed success rates stand in for an SLO nobody declared, exactly.
func TestChains_ObservedAvailability(t *testing.T) {
	g := topology.New()
	for i := range 8 {
		must(t, g.Observe(topology.Observation{From: "web", To: "api", Kind: system.Sync, Protocol: "http", Route: "GET /x", Err: i == 0}))
	}
	must(t, g.Observe(topology.Observation{From: "api", To: "db-svc", Kind: system.Sync, Protocol: "grpc"}))
	c := g.Chains()
	if len(c) != 1 || c[0].Availability != "0.875" || strings.Join(c[0].Unknown, ",") != "web" {
		t.Fatalf("chains: %+v", c)
	}
}

func TestFans(t *testing.T) {
	fans := map[string]topology.Fan{}
	for _, f := range sample(t).Fans() {
		fans[f.Node] = f
	}
	if f := fans["order"]; f.In != 2 || f.Out != 2 {
		t.Fatalf("order: %+v", f)
	}
	if f := fans["order.placed"]; f.In != 1 || f.Out != 1 {
		t.Fatalf("order.placed: %+v", f)
	}
}

// Drift: the sample's ledger publishes ledger.posted, which no trace shows;
// the traces show a call from shipping to payment nobody declared.
func TestDrift(t *testing.T) {
	g := sample(t)
	if d := g.Drift(); d != nil {
		t.Fatalf("drift without observations: %+v", d)
	}
	observeSample(t, g)
	var got []string
	for _, d := range g.Drift() {
		got = append(got, string(d.Kind)+": "+d.Edge.From+"->"+d.Edge.To)
	}
	want := []string{"declared, never observed: ledger->ledger.posted", "observed, not declared: shipping->payment"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("drift:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func observeSample(t testing.TB, g *topology.Graph) {
	for _, o := range []topology.Observation{
		{From: "gateway", To: "order", Kind: system.Sync, Protocol: "http", Route: "POST /orders", Duration: 9 * time.Millisecond},
		{From: "order", To: "payment", Kind: system.Sync, Protocol: "http", Route: "POST /payments"},
		{From: "payment", To: "fraud", Kind: system.Sync, Protocol: "grpc", Route: "fraud.v1.Fraud/Score"},
		{From: "fraud", To: "ledger", Kind: system.Sync, Protocol: "http", Route: "POST /entries", Err: true},
		{From: "order", To: "order.placed", Kind: system.Async, Protocol: "nats", Route: "publish"},
		{From: "order.placed", To: "shipping", Kind: system.Async, Protocol: "nats", Route: "consume"},
		{From: "shipping", To: "order", Kind: system.Sync, Protocol: "http", Route: "GET /orders/{id}"},
		{From: "shipping", To: "payment", Kind: system.Sync, Protocol: "http", Route: "GET /payments/{id}"},
	} {
		must(t, g.Observe(o))
	}
}

func TestObserve_RefusesHalfAnEdge(t *testing.T) {
	g := topology.New()
	if err := g.Observe(topology.Observation{From: "a", Kind: system.Sync}); err == nil {
		t.Fatal("an observation without a target was accepted")
	}
	if err := g.Observe(topology.Observation{From: "a", To: "b"}); err == nil || !strings.Contains(err.Error(), "kind") {
		t.Fatalf("an observation without a kind: %v", err)
	}
}

// The exports of the sample with its observations, as golden files
// (go test ./topology -update rewrites them).
func TestExports_Golden(t *testing.T) {
	g := sample(t)
	observeSample(t, g)
	for _, x := range []struct {
		file  string
		write func(*bytes.Buffer) error
	}{
		{"sample.json", func(b *bytes.Buffer) error { return g.WriteJSON(b) }},
		{"sample.dot", func(b *bytes.Buffer) error { return g.WriteDOT(b) }},
		{"sample.mmd", func(b *bytes.Buffer) error { return g.WriteMermaid(b) }},
		{"sample.svg", func(b *bytes.Buffer) error { return g.WriteSVG(b) }},
	} {
		var b bytes.Buffer
		must(t, x.write(&b))
		golden(t, x.file, b.Bytes())
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		must(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; got:\n%s", name, got)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
