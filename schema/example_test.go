package schema_test

import (
	"fmt"

	"github.com/handoffhq/handoff/schema"
)

// Adding a typed property to an open JSON schema is not backward
// compatible: data written with the old schema may already carry that
// property with any value. Closing the old content model makes the same
// change safe.
func Example() {
	check := func(old, next string) {
		o, err := schema.Parse(schema.Schema{Type: schema.JSON, Text: old})
		if err != nil {
			fmt.Println(err)
			return
		}
		n, err := schema.Parse(schema.Schema{Type: schema.JSON, Text: next})
		if err != nil {
			fmt.Println(err)
			return
		}
		res := schema.Check(schema.Backward, n, []schema.Version{{Version: 1, Schema: o}})
		fmt.Println("compatible:", res.Compatible())
		for _, v := range res.Violations {
			fmt.Println(v.Rule, v.Path, v.Direction)
		}
	}
	check(`{"type":"object","properties":{"id":{"type":"string"}}}`,
		`{"type":"object","properties":{"id":{"type":"string"},"zip":{"type":"string"}}}`)
	check(`{"type":"object","properties":{"id":{"type":"string"}},"additionalProperties":false}`,
		`{"type":"object","properties":{"id":{"type":"string"},"zip":{"type":"string"}},"additionalProperties":false}`)
	// Output:
	// compatible: false
	// PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL /properties/zip reader
	// compatible: true
}

// By default a check gives Confluent's verdict: what only handoff's
// stricter rule set refuses comes back as a warning. Under StrictRules it
// is a violation.
func ExampleResult_Under() {
	o, _ := schema.Parse(schema.Schema{Type: schema.JSON, Text: `{"type":"object","properties":{"id":{"type":"string"}}}`})
	n, _ := schema.Parse(schema.Schema{Type: schema.JSON, Text: `{"type":"object","properties":{"id":{"type":"string"}},"required":["zip"]}`})
	res := schema.Check(schema.Backward, n, []schema.Version{{Version: 1, Schema: o}})
	fmt.Println(res.Rules, "compatible:", res.Compatible())
	for _, v := range res.Warnings {
		fmt.Println("warning:", v.Rule, v.Path)
	}
	strict := res.Under(schema.StrictRules)
	fmt.Println(strict.Rules, "compatible:", strict.Compatible())
	// Output:
	// CONFLUENT compatible: true
	// warning: REQUIRED_ATTRIBUTE_ADDED /properties/zip
	// STRICT compatible: false
}

// The package's call sequence: parse a candidate, check it against every
// earlier version of its subject, print what breaks.
func Example_check() {
	v1, _ := schema.Parse(schema.Schema{Type: schema.JSON, Text: `{"type":"object","properties":{"id":{"type":"string"}}}`})
	earlier := []schema.Version{{Version: 1, Schema: v1}}
	text := `{"type":"object","properties":{"id":{"type":"integer"}}}`
	next, err := schema.Parse(schema.Schema{Type: schema.JSON, Text: text})
	if err != nil {
		panic(err)
	}
	res := schema.Check(schema.BackwardTransitive, next, earlier)
	for _, v := range res.Violations {
		fmt.Println(v) // rule, path, direction, version, message and hint
	}
	// Output:
	// TYPE_CHANGED at /properties/id (reader, version 1): the reader accepts integer, the writer allows string: the writer's data fails the reader; hint: make both accept the same types (a type array or anyOf on the reader), or use another property name
}
