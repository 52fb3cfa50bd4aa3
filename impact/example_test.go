package impact_test

import (
	"fmt"

	"github.com/handoffhq/handoff/contract"
	"github.com/handoffhq/handoff/impact"
	"github.com/handoffhq/handoff/schema"
	"github.com/handoffhq/handoff/system"
)

func ExampleAnalyze() {
	v1, _ := schema.Parse(schema.Schema{Type: schema.JSON, Text: `{"type":"object","properties":{"id":{"type":"string"},"total":{"type":"number"},"note":{"type":"string"}}}`})
	v2, _ := schema.Parse(schema.Schema{Type: schema.JSON, Text: `{"type":"object","properties":{"id":{"type":"string"},"total":{"type":"string"}}}`})
	sys := &system.System{Services: []*system.Service{{Name: "billing", Owner: "team-billing", Integrations: []*system.Integration{
		{Kind: system.Async, Direction: system.Consume, Topic: "orders", Subject: "orders-value"}}}}}
	// billing's message pact: the fields it reads.
	pact := &contract.Pact{Consumer: "billing", Provider: "order", Interactions: []*contract.Interaction{{Type: contract.TypeMessage,
		Message: &contract.Message{Contents: contract.Body{Present: true, Content: []byte(`{"id":"o-1","total":12.5}`)}}}}}

	v, err := impact.Analyze(impact.Input{Subject: "orders-value", New: v2, Earlier: []schema.Version{{Version: 1, Schema: v1}},
		Level: schema.Backward, System: sys, Pacts: []*contract.Pact{pact}})
	if err != nil {
		panic(err)
	}
	fmt.Println("compatible:", v.Compatible, "safe for known consumers:", v.SafeForKnownConsumers)
	for _, c := range v.Changes {
		fmt.Println(c.Kind, c.Path)
	}
	for _, c := range v.Affected() {
		for _, b := range c.Breaks {
			fmt.Println(c.Service+":", b.Effect)
		}
	}
	// Output:
	// compatible: false safe for known consumers: false
	// removed /note
	// altered /total
	// billing: reads /total as number; the new version makes it string: decoding fails or misreads it
}
