// Package schema is handoff's compatibility engine for JSON Schema (drafts
// 04, 06, 07, 2019-09 and 2020-12; draft-07 when a schema names none, as
// Confluent's registry reads it), Avro and Protobuf. It is pure: no I/O,
// no registry.
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
// Every finding is reported, not only the first, each with a stable rule
// id, a JSON pointer, the direction that breaks and a hint. By default a
// verdict is Confluent's registry's (ConfluentRules): what only handoff's
// stricter engine finds comes back in res.Warnings, and
// res.Under(StrictRules) refuses it too. The rules per language, with
// Confluent's, the default and the strict verdict of each and why they
// differ, are in rules-json.md, rules-avro.md and rules-protobuf.md; each
// is table-tested, and the parity_*_test.go cases pin Confluent's verdicts.
//
// Parsing uses well-kept libraries (santhosh-tekuri/jsonschema, hamba/avro,
// bufbuild/protocompile); the compatibility rules are handoff's own.
package schema
