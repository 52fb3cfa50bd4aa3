package check_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/check"
	"github.com/handoffhq/handoff/contract"
	"github.com/handoffhq/handoff/contract/broker"
	"github.com/handoffhq/handoff/handofftest"
	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/schema"
	"github.com/handoffhq/handoff/system"
	"github.com/handoffhq/handoff/topology"
)

var sampleDir = filepath.Join("..", "system", "testdata", "sample")

func read(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newRegistry serves a real registry (SQLite store) and registers each
// subject with the schema text given, at BACKWARD.
func newRegistry(t *testing.T, subjects map[string]string) *registry.Client {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := sqlite.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	srv, err := registry.NewServer(sqlite.RegistryStore(db), registry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	c, err := registry.NewClient(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	for sub, text := range subjects {
		if err := c.SetConfig(ctx, sub, schema.Backward); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Register(ctx, sub, registry.SchemaSpec{Type: schema.JSON, Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// newBroker serves a contract broker holding a pact for each
// consumer/provider pair.
func newBroker(t *testing.T, pairs ...[2]string) *contract.BrokerClient {
	t.Helper()
	b, err := broker.New(memory.NewContractStore(), broker.WithOpenReads(true))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(b)
	t.Cleanup(hs.Close)
	c := &contract.BrokerClient{BaseURL: hs.URL}
	for _, p := range pairs {
		pact := &contract.Pact{Consumer: p[0], Provider: p[1], Spec: contract.V3, Interactions: []*contract.Interaction{{
			Type: contract.TypeHTTP, Description: "a call from " + p[0],
			Request: &contract.Request{Method: "GET", Path: "/health"}, Response: &contract.Response{Status: 200}}}}
		if _, err := c.PublishContracts(context.Background(), contract.PublishRequest{Pacticipant: p[0], Version: "1", Branch: "main", Pacts: []*contract.Pact{pact}}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

const idOnly = `{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}`

var fixedPairs = [][2]string{{"gateway", "order"}, {"order", "payment"}, {"payment", "fraud"}, {"shipping", "order"}, {"ledger", "payment"}}

// fixedInput is the fixed sample with all its evidence: every checkpoint
// passes.
func fixedInput(t *testing.T) check.Input {
	sys, err := system.Load(filepath.Join("testdata", "fixed", "handoff.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	full := string(read(t, filepath.Join(sampleDir, "schemas", "order.placed-value.v1.json")))
	return check.Input{
		System:     sys,
		Registry:   newRegistry(t, map[string]string{"order.placed-value": full, "payment.settled-value": `{"type":"object","properties":{"payment_id":{"type":"string"},"amount":{"type":"number"}}}`, "ledger.posted-value": `{"type":"object","properties":{"entry_id":{"type":"string"},"amount":{"type":"number"}}}`}),
		Broker:     newBroker(t, fixedPairs...),
		TestReport: read(t, filepath.Join("testdata", "tests-pass.json")),
	}
}

func run(t *testing.T, in check.Input) *check.Report {
	t.Helper()
	r, err := check.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func failed(r *check.Report) string { return strings.Join(r.Failed(), ",") }

// The gate on the sample system: the fixed sample passes; breaking one
// checkpoint at a time fails exactly that one, naming its owner; fixing it
// passes again.
func TestRun_FailsOnEachCheckpointInTurn(t *testing.T) {
	if r := run(t, fixedInput(t)); !r.Passed {
		var b bytes.Buffer
		r.WriteText(&b)
		t.Fatalf("the fixed sample fails:\n%s", b.String())
	}
	for _, tc := range []struct {
		checkpoint string
		owner      string
		want       string
		breakIt    func(t *testing.T, in *check.Input)
	}{
		{check.Topology, "team-risk", `kind "" must be sync or async`, func(t *testing.T, in *check.Input) {
			in.System.Service("payment").Integrations[0].Kind = ""
			in.System.Service("payment").Owner = "team-risk"
		}},
		{check.Schemas, "team-finance", "ledger.posted-value: not registered", func(t *testing.T, in *check.Input) {
			in.Registry = newRegistry(t, map[string]string{"order.placed-value": string(read(t, filepath.Join(sampleDir, "schemas", "order.placed-value.v1.json"))), "payment.settled-value": `{"type":"object"}`})
		}},
		{check.Schemas, "team-payments", "payment.settled-value: compatibility is NONE (its own level)", func(t *testing.T, in *check.Input) {
			if err := in.Registry.SetConfig(context.Background(), "payment.settled-value", schema.None); err != nil {
				t.Fatal(err)
			}
		}},
		{check.DeadLetters, "team-platform", "must fire within 5m0s", func(t *testing.T, in *check.Input) {
			in.System.Alerts[0].Within = 15 * time.Minute
		}},
		{check.DeadLetters, "team-logistics", "shipping: consumes events but no dead-letter store lists it", func(t *testing.T, in *check.Input) {
			in.System.DeadLetters[0].Services = []string{"gateway", "order", "payment", "fraud", "ledger"}
		}},
		{check.Idempotency, "team-finance", "ledger: its duplicate-delivery test failed", func(t *testing.T, in *check.Input) {
			in.TestReport = read(t, filepath.Join("testdata", "tests-ledger-fails.json"))
		}},
		{check.Contracts, "team-logistics", "shipping -> order: no pact registered", func(t *testing.T, in *check.Input) {
			in.Broker = newBroker(t, slices.DeleteFunc(slices.Clone(fixedPairs), func(p [2]string) bool { return p[0] == "shipping" })...)
		}},
		{check.OpenAPI, "providers", "api-removed-without-deprecation", func(t *testing.T, in *check.Input) {
			dir := filepath.Join("..", "contract", "openapi", "testdata")
			in.APIChanges = []check.APIChange{{OldName: "v1", NewName: "v2", Old: read(t, filepath.Join(dir, "orders-v1.yaml")), New: read(t, filepath.Join(dir, "orders-v2-breaking.yaml"))}}
		}},
		{check.Findings, "team-payments", "shared-table", func(t *testing.T, in *check.Input) {
			in.System.Service("ledger").Writes = []string{"payments.transactions"}
		}},
		{check.Drift, "team-finance", "declared, never observed", func(t *testing.T, in *check.Input) {
			g := topology.FromSystem(in.System)
			g.Observe(topology.Observation{From: "gateway", To: "order", Kind: system.Sync, Protocol: "http"})
			in.Graph = g
		}},
	} {
		t.Run(tc.checkpoint, func(t *testing.T) {
			in := fixedInput(t)
			tc.breakIt(t, &in)
			r := run(t, in)
			if r.Passed || failed(r) != tc.checkpoint {
				t.Fatalf("failed %q, want only %s", failed(r), tc.checkpoint)
			}
			res := r.Result(tc.checkpoint)
			var b bytes.Buffer
			r.WriteText(&b)
			if !strings.Contains(b.String(), tc.want) || !slices.Contains(res.Owners, tc.owner) && strings.Join(res.Owners, ", ") != tc.owner {
				t.Fatalf("owners %v, want %s; report lacks %q?\n%s", res.Owners, tc.owner, tc.want, b.String())
			}
		})
	}
}

// The sample as it is: every anti-pattern is a finding (the four-hop chains
// from gateway and from shipping,
// the shared table, the phantom event through the registry's id-only
// schema), the traces show drift, and every missing piece of evidence fails
// its checkpoint.
func TestRun_SampleSystem(t *testing.T) {
	sys, err := system.Load(filepath.Join(sampleDir, "handoff.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join("..", "topology", "testdata", "spans.otlp.json"))
	if err != nil {
		t.Fatal(err)
	}
	spans, err := topology.ReadOTLP(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	g := topology.FromSystem(sys)
	if _, err := g.ObserveSpans(spans, nil); err != nil {
		t.Fatal(err)
	}
	r := run(t, check.Input{System: sys, Graph: g, Registry: newRegistry(t, map[string]string{"order.placed-value": idOnly, "ledger.posted-value": `{"type":"object","properties":{"entry_id":{"type":"string"},"amount":{"type":"number"}}}`})})
	var rules []string
	for _, p := range r.Result(check.Findings).Problems {
		rules = append(rules, strings.SplitN(p.Message, ":", 2)[0])
	}
	slices.Sort(rules)
	if strings.Join(rules, ",") != strings.Join([]string{topology.RulePhantomEvent, topology.RuleSharedTable, topology.RuleLongChain, topology.RuleLongChain}, ",") {
		t.Fatalf("findings %v", rules)
	}
	if got := failed(r); got != "duplicate-delivery-tested,contracts-registered,anti-patterns,topology-drift" {
		t.Fatalf("failed %s", got)
	}
	if p := r.Result(check.Idempotency).Problems; len(p) != 1 || !strings.Contains(p[0].Message, "--tests") {
		t.Fatalf("idempotency without a report: %+v", p)
	}
	// JUnit: one case per checkpoint, failures and skips counted.
	var b bytes.Buffer
	if err := r.WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suite    struct {
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if doc.Tests != 9 || doc.Failures != 4 || doc.Skipped != 2 || len(doc.Suite.Cases) != 9 {
		t.Fatalf("junit counts %d/%d/%d:\n%s", doc.Tests, doc.Failures, doc.Skipped, b.String())
	}
	for _, c := range doc.Suite.Cases {
		if c.Name == check.Findings && (c.Failure == nil || !strings.Contains(c.Failure.Text, "[team-logistics, team-orders] order.placed")) {
			t.Fatalf("findings case: %+v", c.Failure)
		}
	}
}

func TestDuplicateDeliveryRuns(t *testing.T) {
	if check.DuplicateDeliveryMarker != handofftest.DuplicateDeliveryMarker {
		t.Fatal("the gate and handofftest disagree on the marker")
	}
	runs, err := check.DuplicateDeliveryRuns(read(t, filepath.Join("testdata", "tests-ledger-fails.json")))
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || !runs["shipping"] || runs["ledger"] {
		t.Fatalf("runs %v", runs)
	}
	if _, err := check.DuplicateDeliveryRuns([]byte("{\"Action\":")); err == nil {
		t.Fatal("a broken report was accepted")
	}
}

// can-i-deploy asks the broker: gateway's pact with order was never
// verified, so gateway cannot go to production; once order verified it and
// is deployed there, gateway can.
func TestRun_CanIDeploy(t *testing.T) {
	in := fixedInput(t)
	ctx := context.Background()
	if err := in.Broker.CreateEnvironment(ctx, "production", true); err != nil {
		t.Fatal(err)
	}
	in.Environment = "production"
	in.Deployments = []check.Deployment{{Pacticipant: "gateway", Version: "1"}}
	r := run(t, in)
	if failed(r) != check.CanIDeploy || r.Result(check.CanIDeploy).Owners[0] != "team-edge" ||
		!strings.Contains(r.Result(check.CanIDeploy).Problems[0].Message, "not deployable to production") {
		t.Fatalf("gateway 1: failed %q %+v", failed(r), r.Result(check.CanIDeploy))
	}
	// Fixed: order verifies gateway's pact and is deployed to production.
	pacts, err := in.Broker.PactsForVerification(ctx, "order", contract.ForVerificationRequest{Selectors: []contract.Selector{{Latest: true}}})
	if err != nil || len(pacts) == 0 {
		t.Fatalf("pacts for order: %v %d", err, len(pacts))
	}
	for _, p := range pacts {
		_, links, err := in.Broker.FetchPact(ctx, p.Href)
		if err != nil {
			t.Fatal(err)
		}
		if err := in.Broker.PublishVerification(ctx, links["pb:publish-verification-results"], contract.VerificationResult{Success: true, ProviderVersion: "1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := in.Broker.RecordDeployment(ctx, "order", "1", "production", "", false); err != nil {
		t.Fatal(err)
	}
	if r := run(t, in); !r.Passed || r.Result(check.CanIDeploy).Status != check.Pass {
		t.Fatalf("gateway 1 after the fix: %+v", r.Result(check.CanIDeploy))
	}
	in.Deployments = nil
	if r := run(t, in); r.Result(check.CanIDeploy).Status != check.Skip || !r.Passed {
		t.Fatalf("no deployments: %+v", r.Result(check.CanIDeploy))
	}
}

func FuzzDuplicateDeliveryRuns(f *testing.F) {
	f.Add(read(f, filepath.Join("testdata", "tests-pass.json")))
	f.Add([]byte(`{"Action":"output","Test":"T","Output":"handofftest: duplicate-delivery consumer=\n"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		runs, err := check.DuplicateDeliveryRuns(b)
		if err == nil && runs == nil {
			t.Fatal("nil runs without error")
		}
	})
}
