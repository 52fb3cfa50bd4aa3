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
