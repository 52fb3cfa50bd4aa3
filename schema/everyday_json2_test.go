package schema_test

import (
	"testing"

	"github.com/handoffhq/handoff/schema"
)

func TestEverydayJSONMore(t *testing.T) {
	s := func(p string) string { return obj(`"v":`+p, "") }
	cases := []tc{
		{"add minLength 0", J, schema.Backward, []string{s(`{"type":"string"}`)}, s(`{"type":"string","minLength":0}`), nil, nil, true, "no-op constraint"},
		{"add uniqueItems false", J, schema.Backward, []string{s(`{"type":"array"}`)}, s(`{"type":"array","uniqueItems":false}`), nil, nil, true, "no-op"},
		{"add required []", J, schema.Backward, []string{obj(`"a":{"type":"string"}`, "")}, obj(`"a":{"type":"string"}`, `,"required":[]`), nil, nil, true, "no-op"},
		{"add additionalProperties {}", J, schema.Full, []string{obj(`"a":{"type":"string"}`, "")}, obj(`"a":{"type":"string"}`, `,"additionalProperties":{}`), nil, nil, true, "same as open"},
		{"add additionalProperties true", J, schema.Full, []string{obj(`"a":{"type":"string"}`, "")}, obj(`"a":{"type":"string"}`, `,"additionalProperties":true`), nil, nil, true, "same as open"},
		{"type array reorder", J, schema.Full, []string{s(`{"type":["null","string"]}`)}, s(`{"type":["string","null"]}`), nil, nil, true, "same set"},
		{"enum reorder", J, schema.Full, []string{s(`{"enum":["a","b"]}`)}, s(`{"enum":["b","a"]}`), nil, nil, true, "same set"},
		{"enum 1 -> 1.0", J, schema.Full, []string{s(`{"enum":[1,2]}`)}, s(`{"enum":[1.0,2.0]}`), nil, nil, true, "JSON Schema numeric equality"},
		{"multipleOf 0.01 -> 0.001 BACKWARD", J, schema.Backward, []string{s(`{"type":"number","multipleOf":0.01}`)}, s(`{"type":"number","multipleOf":0.001}`), nil, nil, true, "0.01 is a multiple of 0.001 (relaxing money precision)"},
		{"multipleOf 0.1 -> 0.05 BACKWARD", J, schema.Backward, []string{s(`{"type":"number","multipleOf":0.1}`)}, s(`{"type":"number","multipleOf":0.05}`), nil, nil, true, "divisor"},
		{"multipleOf 0.001 -> 0.01 BACKWARD", J, schema.Backward, []string{s(`{"type":"number","multipleOf":0.001}`)}, s(`{"type":"number","multipleOf":0.01}`), nil, nil, false, "expanded"},
		{"multipleOf 1 added on integer", J, schema.Backward, []string{s(`{"type":"integer"}`)}, s(`{"type":"integer","multipleOf":1}`), nil, nil, true, "no-op"},
		{"maximum 1000 -> 1e3", J, schema.Full, []string{s(`{"type":"number","maximum":1000}`)}, s(`{"type":"number","maximum":1e3}`), nil, nil, true, "same number"},
		{"anyOf -> oneOf disjoint", J, schema.Full, []string{s(`{"anyOf":[{"type":"string"},{"type":"integer"}]}`)}, s(`{"oneOf":[{"type":"string"},{"type":"integer"}]}`), nil, nil, true, "disjoint branches: same set"},
		{"oneOf overlapping branch added BACKWARD", J, schema.Backward, []string{s(`{"oneOf":[{"type":"string"},{"type":"integer"}]}`)}, s(`{"oneOf":[{"type":"string"},{"type":"integer"},{"type":"string","format":"email"}]}`), nil, nil, false, "old email strings now match 2 branches"},
		{"add title/default/examples/readOnly", J, schema.Full, []string{s(`{"type":"string"}`)}, s(`{"type":"string","title":"V","default":"x","examples":["a"],"readOnly":true,"deprecated":true,"$comment":"c"}`), nil, nil, true, "annotations"},
		{"unknown keyword nullable:true", J, schema.Full, []string{s(`{"type":"string"}`)}, s(`{"type":"string","nullable":true}`), nil, nil, true, "unknown keyword ignored by validators"},
		{"const null -> type null", J, schema.Full, []string{s(`{"const":null}`)}, s(`{"type":"null"}`), nil, nil, true, "same set"},
		{"type integer -> [integer,string] BACKWARD", J, schema.Backward, []string{s(`{"type":"integer","minimum":0}`)}, s(`{"type":["integer","string"],"minimum":0}`), nil, nil, true, "superset"},
		{"allOf ref + extra prop on writer, reader flattened FULL", J, schema.Full,
			[]string{`{"$defs":{"b":{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}},"allOf":[{"$ref":"#/$defs/b"}],"properties":{"n":{"type":"integer"}}}`},
			`{"type":"object","properties":{"id":{"type":"string"},"n":{"type":"integer"}},"required":["id"]}`, nil, nil, true, "same instance set (open both)"},
		{"if/then identical", J, schema.Full, []string{s(`{"if":{"type":"string"},"then":{"minLength":1}}`)}, s(`{"if":{"type":"string"},"then":{"minLength":1}}`), nil, nil, true, "identical"},
		{"date-time -> date FORMAT_CHANGED", J, schema.Backward, []string{s(`{"type":"string","format":"date-time"}`)}, s(`{"type":"string","format":"date"}`), nil, nil, false, "different sets"},
		{"uri -> uri-reference BACKWARD (widening format)", J, schema.Backward, []string{s(`{"type":"string","format":"uri"}`)}, s(`{"type":"string","format":"uri-reference"}`), nil, nil, false, "documented conservative choice (rules-json.md): formats are compared by name; every uri is a uri-reference, but a changed format is reported"},
		{"unknown format added", J, schema.Backward, []string{s(`{"type":"string"}`)}, s(`{"type":"string","format":"money"}`), nil, nil, true, "unknown formats ignored"},
		{"pattern identical but maxLength raised", J, schema.Backward, []string{s(`{"type":"string","pattern":"^[a-z]+$","maxLength":3}`)}, s(`{"type":"string","pattern":"^[a-z]+$","maxLength":5}`), nil, nil, true, "relax"},
		{"minItems added to array", J, schema.Backward, []string{s(`{"type":"array","items":{"type":"string"}}`)}, s(`{"type":"array","items":{"type":"string"},"minItems":1}`), nil, nil, false, "MIN_ITEMS_ADDED"},
		{"draft-07 dependencies array add", J, schema.Backward, []string{`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"a":{},"b":{}}}`}, `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"a":{},"b":{}},"dependencies":{"a":["b"]}}`, nil, nil, false, "DEPENDENCY_ARRAY_ADDED"},
		{"open writer, new prop typed {\"type\":[..all types..]}", J, schema.Backward, []string{obj(`"a":{}`, "")}, obj(`"a":{},"z":{"type":["null","boolean","object","array","number","string"]}`, ""), nil, nil, false, "documented conservative choice (rules-json.md): only {}, true and annotation-only schemas count as accepting anything"},
		{"root type object -> no type BACKWARD", J, schema.Backward, []string{obj(`"a":{"type":"string"}`, "")}, `{"properties":{"a":{"type":"string"}}}`, nil, nil, true, "widen"},
		{"$id'd schema relative ref FULL", J, schema.Full,
			[]string{`{"$id":"https://acme.com/order.json","type":"object","properties":{"a":{"$ref":"addr.json"}}}`}, `{"$id":"https://acme.com/order.json","type":"object","properties":{"a":{"$ref":"addr.json"}}}`,
			map[string]string{"addr.json": obj(`"zip":{"type":"string"}`, "")}, map[string]string{"addr.json": obj(`"zip":{"type":"string"}`, "")}, true, "identical"},
	}
	run(t, cases)
}
