package impact_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/contract"
	"github.com/handoffhq/handoff/impact"
	"github.com/handoffhq/handoff/schema"
	"github.com/handoffhq/handoff/system"
	"github.com/handoffhq/handoff/topology"
)

var sample = filepath.Join("..", "system", "testdata", "sample")

func parse(t *testing.T, typ schema.Type, text string) *schema.Parsed {
	t.Helper()
	p, err := schema.Parse(schema.Schema{Type: typ, Text: text})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sampleFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sample, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sampleInput(t *testing.T, newFile string) impact.Input {
	t.Helper()
	sys, err := system.Load(filepath.Join(sample, "handoff.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(sample, "pacts", "shipping-order.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := contract.ReadPact(f)
	if err != nil {
		t.Fatal(err)
	}
	return impact.Input{
		Subject: "order.placed-value",
		New:     parse(t, schema.JSON, sampleFile(t, "schemas/"+newFile)),
		Earlier: []schema.Version{{Version: 1, Schema: parse(t, schema.JSON, sampleFile(t, "schemas/order.placed-value.v1.json"))}},
		Level:   schema.Backward,
		System:  sys,
		Pacts:   []*contract.Pact{p},
	}
}

// Dropping total, which no consumer's pact reads: the subject's level
// refuses it (a closed content model), yet it is safe for the known
// consumers; both verdicts are shown.
func TestAnalyze_RemovedFieldReadByNone(t *testing.T) {
	v, err := impact.Analyze(sampleInput(t, "order.placed-value.v2-drops-total.json"))
	if err != nil {
		t.Fatal(err)
	}
	if v.Compatible || len(v.Violations) == 0 {
		t.Fatalf("BACKWARD accepted removing a property from a closed model: %+v", v)
	}
	if !v.SafeForKnownConsumers {
		t.Fatalf("not safe for known consumers: %+v", v.Consumers)
	}
	if len(v.Changes) != 1 || v.Changes[0].Path != "/total" || v.Changes[0].Kind != impact.Removed {
		t.Fatalf("changes: %+v", v.Changes)
	}
	if len(v.Consumers) != 1 || v.Consumers[0].Service != "shipping" || v.Consumers[0].Owner != "team-logistics" ||
		strings.Join(v.Consumers[0].Reads, ",") != "/id" || len(v.Consumers[0].Breaks) != 0 {
		t.Fatalf("consumers: %+v", v.Consumers)
	}
	if len(v.Unverified) != 0 || len(v.Migration) == 0 || !strings.Contains(v.Migration[0], "No known consumer reads the changed fields, but BACKWARD refuses") {
		t.Fatalf("migration: %q unverified %v", v.Migration, v.Unverified)
	}
}

// Renaming id to order_id removes the one field shipping reads: the
// report names shipping, its owner, what breaks, and the migration.
func TestAnalyze_RemovedFieldReadByOneConsumer(t *testing.T) {
	v, err := impact.Analyze(sampleInput(t, "order.placed-value.v2-drops-id.json"))
	if err != nil {
		t.Fatal(err)
	}
	if v.SafeForKnownConsumers {
		t.Fatal("removing a field shipping reads was called safe")
	}
	aff := v.Affected()
	if len(aff) != 1 || aff[0].Service != "shipping" || len(aff[0].Breaks) != 1 {
		t.Fatalf("affected: %+v", aff)
	}
	b := aff[0].Breaks[0]
	if b.Field.Path != "/id" || b.Field.Kind != impact.Removed || !strings.Contains(b.Effect, "reads /id, which the new version removes") {
		t.Fatalf("break: %+v", b)
	}
	steps := strings.Join(v.Migration, "\n")
	for _, want := range []string{"Keep /id in the new version (optional, with a default)", "Move shipping (team-logistics) off", "drop the old field"} {
		if !strings.Contains(steps, want) {
			t.Errorf("migration lacks %q:\n%s", want, steps)
		}
	}
}

// A consumer with no message pact is listed as unverified, and one seen
// only in traces is found through the topology.
func TestAnalyze_UnverifiedAndObservedConsumers(t *testing.T) {
	in := sampleInput(t, "order.placed-value.v2-drops-total.json")
	in.Pacts = nil
	g := topology.FromSystem(in.System)
	if err := g.Observe(topology.Observation{From: "order.placed", To: "reporting", Kind: system.Async, Protocol: "nats"}); err != nil {
		t.Fatal(err)
	}
	in.Graph = g
	v, err := impact.Analyze(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(v.Unverified, ",") != "shipping,reporting" {
		t.Fatalf("unverified: %v (consumers %+v)", v.Unverified, v.Consumers)
	}
	if !v.SafeForKnownConsumers || !strings.Contains(strings.Join(v.Migration, "\n"), "publish their pacts") {
		t.Fatalf("verdict: %v %q", v.SafeForKnownConsumers, v.Migration)
	}
}

// Avro: a field whose type changes is altered, a dropped nested record's
// fields are one removal at the record.
func TestAnalyze_AvroFields(t *testing.T) {
	old := parse(t, schema.Avro, `{"type":"record","name":"Order","fields":[
		{"name":"id","type":"string"},
		{"name":"total","type":"double"},
		{"name":"customer","type":{"type":"record","name":"Customer","fields":[{"name":"email","type":"string"}]}}]}`)
	new := parse(t, schema.Avro, `{"type":"record","name":"Order","fields":[
		{"name":"id","type":"string"},
		{"name":"total","type":"string","default":"0"}]}`)
	p := &contract.Pact{Consumer: "billing", Provider: "order", Interactions: []*contract.Interaction{{Type: contract.TypeMessage,
		Message: &contract.Message{Contents: contract.Body{Present: true, Content: []byte(`{"total": 1.5, "customer": {"email": "a@b"}}`)}}}}}
	sys := &system.System{Services: []*system.Service{{Name: "billing", Owner: "team-billing", Integrations: []*system.Integration{
		{Kind: system.Async, Direction: system.Consume, Topic: "orders", Subject: "orders-value"}}}}}
	v, err := impact.Analyze(impact.Input{Subject: "orders-value", New: new, Earlier: []schema.Version{{Version: 3, Schema: old}}, System: sys, Pacts: []*contract.Pact{p}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range v.Changes {
		got = append(got, c.Kind+" "+c.Path+" "+c.Old+">"+c.New)
	}
	if strings.Join(got, "; ") != "removed /customer record Customer>; altered /total double>string" {
		t.Fatalf("changes: %q", got)
	}
	if aff := v.Affected(); len(aff) != 1 || len(aff[0].Breaks) != 2 {
		t.Fatalf("affected: %+v", aff)
	}
}

func TestAnalyze_BadInput(t *testing.T) {
	in := sampleInput(t, "order.placed-value.v2-drops-total.json")
	for name, mod := range map[string]func(*impact.Input){
		"subject":               func(i *impact.Input) { i.Subject = "" },
		"new":                   func(i *impact.Input) { i.New = nil },
		"no registered version": func(i *impact.Input) { i.Earlier = nil },
	} {
		c := in
		mod(&c)
		if _, err := impact.Analyze(c); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}
