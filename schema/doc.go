// Package schema is handoff's compatibility engine for JSON Schema (draft
// 2020-12 and draft-07), Avro and Protobuf. It is pure: no I/O, no registry.
//
// Parse a schema, then Check a candidate against the earlier versions of its
// subject at a compatibility Level:
//
//	next, err := schema.Parse(schema.Schema{Type: schema.JSON, Text: text})
//	res := schema.Check(schema.BackwardTransitive, next, earlier)
//	for _, v := range res.Violations {
//		fmt.Println(v) // rule, path, direction, version, message and hint
//	}
//
// Every violation is reported, not only the first, each with a stable rule
// id, a JSON pointer, the direction that breaks and a hint. The rules per
// language are in rules-json.md, rules-avro.md and rules-protobuf.md, and
// each is table-tested.
//
// Parsing uses well-kept libraries (santhosh-tekuri/jsonschema, hamba/avro,
// bufbuild/protocompile); the compatibility rules are handoff's own.
package schema
