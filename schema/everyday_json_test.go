package schema_test

import (
	"testing"

	"github.com/handoffhq/handoff/schema"
)

func obj(props, extra string) string {
	return `{"type":"object","properties":{` + props + `}` + extra + `}`
}

func TestEverydayJSON(t *testing.T) {
	pID := `"id":{"type":"string"}`
	pZip := `"zip":{"type":"string"}`
	closed := `,"additionalProperties":false`
	cases := []tc{
		{"add optional prop open BACKWARD", J, schema.Backward, []string{obj(pID, "")}, obj(pID+","+pZip, ""), nil, nil, false, "Confluent PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL incompatible (documented A1)"},
		{"add optional prop open FORWARD", J, schema.Forward, []string{obj(pID, "")}, obj(pID+","+pZip, ""), nil, nil, true, "old open reader accepts zip"},
		{"add optional prop closed BACKWARD", J, schema.Backward, []string{obj(pID, closed)}, obj(pID+","+pZip, closed), nil, nil, true, "A3: old data never has zip"},
		{"add optional prop closed FORWARD", J, schema.Forward, []string{obj(pID, closed)}, obj(pID+","+pZip, closed), nil, nil, false, "old closed reader rejects zip"},
		{"add optional prop closed FULL", J, schema.Full, []string{obj(pID, closed)}, obj(pID+","+pZip, closed), nil, nil, false, "forward half breaks"},
		{"add optional any-typed prop open FULL", J, schema.Full, []string{obj(pID, "")}, obj(pID+`,"zip":{}`, ""), nil, nil, true, "A2"},
		{"remove prop open BACKWARD", J, schema.Backward, []string{obj(pID+","+pZip, "")}, obj(pID, ""), nil, nil, true, "D1 (Confluent PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL compatible)"},
		{"remove prop open FORWARD", J, schema.Forward, []string{obj(pID+","+pZip, "")}, obj(pID, ""), nil, nil, false, "new writer open may write zip of any type"},
		{"remove prop closed BACKWARD", J, schema.Backward, []string{obj(pID+","+pZip, closed)}, obj(pID, closed), nil, nil, false, "D2: old data has zip, new closed reader rejects"},
		{"make prop required BACKWARD", J, schema.Backward, []string{obj(pID+","+pZip, "")}, obj(pID+","+pZip, `,"required":["zip"]`), nil, nil, false, "REQUIRED_ATTRIBUTE_ADDED"},
		{"make prop required FORWARD", J, schema.Forward, []string{obj(pID+","+pZip, "")}, obj(pID+","+pZip, `,"required":["zip"]`), nil, nil, true, "new data always has zip; old reader fine"},
		{"drop required BACKWARD", J, schema.Backward, []string{obj(pID+","+pZip, `,"required":["zip"]`)}, obj(pID+","+pZip, ""), nil, nil, true, "R5"},
		{"drop required FORWARD", J, schema.Forward, []string{obj(pID+","+pZip, `,"required":["zip"]`)}, obj(pID+","+pZip, ""), nil, nil, false, "old reader requires zip"},
		{"raise maxLength BACKWARD", J, schema.Backward, []string{obj(`"n":{"type":"string","maxLength":10}`, "")}, obj(`"n":{"type":"string","maxLength":20}`, ""), nil, nil, true, "relax"},
		{"lower maxLength BACKWARD", J, schema.Backward, []string{obj(`"n":{"type":"string","maxLength":20}`, "")}, obj(`"n":{"type":"string","maxLength":10}`, ""), nil, nil, false, "MAX_LENGTH_DECREASED"},
		{"lower maxLength FORWARD", J, schema.Forward, []string{obj(`"n":{"type":"string","maxLength":20}`, "")}, obj(`"n":{"type":"string","maxLength":10}`, ""), nil, nil, true, "tightening is forward-safe"},
		{"add enum value BACKWARD", J, schema.Backward, []string{obj(`"s":{"enum":["A","B"]}`, "")}, obj(`"s":{"enum":["A","B","C"]}`, ""), nil, nil, true, "superset"},
		{"add enum value FORWARD", J, schema.Forward, []string{obj(`"s":{"enum":["A","B"]}`, "")}, obj(`"s":{"enum":["A","B","C"]}`, ""), nil, nil, false, "ENUM_ARRAY_NARROWED for old reader"},
		{"typed enum add value BACKWARD", J, schema.Backward, []string{obj(`"s":{"type":"string","enum":["A","B"]}`, "")}, obj(`"s":{"type":"string","enum":["A","B","C"]}`, ""), nil, nil, true, "superset"},
		{"raise minimum BACKWARD", J, schema.Backward, []string{obj(`"n":{"type":"integer","minimum":0}`, "")}, obj(`"n":{"type":"integer","minimum":5}`, ""), nil, nil, false, "MINIMUM_INCREASED"},
		{"lower minimum BACKWARD", J, schema.Backward, []string{obj(`"n":{"type":"integer","minimum":5}`, "")}, obj(`"n":{"type":"integer","minimum":0}`, ""), nil, nil, true, "relax"},
		{"string -> [string,null] BACKWARD", J, schema.Backward, []string{obj(`"n":{"type":"string"}`, "")}, obj(`"n":{"type":["string","null"]}`, ""), nil, nil, true, "superset"},
		{"string -> [string,null] FORWARD", J, schema.Forward, []string{obj(`"n":{"type":"string"}`, "")}, obj(`"n":{"type":["string","null"]}`, ""), nil, nil, false, "old reader rejects null"},
		{"string -> anyOf[string,null] BACKWARD", J, schema.Backward, []string{obj(`"n":{"type":"string","maxLength":5}`, "")}, obj(`"n":{"anyOf":[{"type":"string","maxLength":5},{"type":"null"}]}`, ""), nil, nil, true, "COMBINED_TYPE compat counterpart"},
		{"string -> oneOf[null,string] BACKWARD", J, schema.Backward, []string{obj(`"n":{"type":"string"}`, "")}, obj(`"n":{"oneOf":[{"type":"null"},{"type":"string"}]}`, ""), nil, nil, true, "superset, branches disjoint"},
		{"integer -> number BACKWARD", J, schema.Backward, []string{obj(`"n":{"type":"integer"}`, "")}, obj(`"n":{"type":"number"}`, ""), nil, nil, true, "widen"},
		{"number -> integer BACKWARD", J, schema.Backward, []string{obj(`"n":{"type":"number"}`, "")}, obj(`"n":{"type":"integer"}`, ""), nil, nil, false, "TYPE_NARROWED"},
		{"string -> integer FULL", J, schema.Full, []string{obj(`"n":{"type":"string"}`, "")}, obj(`"n":{"type":"integer"}`, ""), nil, nil, false, "TYPE_CHANGED"},
		{"additionalProperties false->true BACKWARD", J, schema.Backward, []string{obj(pID, closed)}, obj(pID, `,"additionalProperties":true`), nil, nil, true, "M3"},
		{"additionalProperties absent->false BACKWARD", J, schema.Backward, []string{obj(pID, "")}, obj(pID, closed), nil, nil, false, "M1"},
		{"additionalProperties string -> {} BACKWARD", J, schema.Backward, []string{obj(pID, `,"additionalProperties":{"type":"string"}`)}, obj(pID, ""), nil, nil, true, "M8"},
		{"$ref def changes type BACKWARD", J, schema.Backward,
			[]string{`{"type":"object","properties":{"a":{"$ref":"#/$defs/addr"}},"$defs":{"addr":{"type":"object","properties":{"zip":{"type":"string"}}}}}`},
			`{"type":"object","properties":{"a":{"$ref":"#/$defs/addr"}},"$defs":{"addr":{"type":"object","properties":{"zip":{"type":"integer"}}}}}`, nil, nil, false, "TYPE_CHANGED under $defs"},
		{"$ref def relaxes BACKWARD", J, schema.Backward,
			[]string{`{"type":"object","properties":{"a":{"$ref":"#/$defs/addr"}},"$defs":{"addr":{"type":"object","properties":{"zip":{"type":"string","maxLength":5}}}}}`},
			`{"type":"object","properties":{"a":{"$ref":"#/$defs/addr"}},"$defs":{"addr":{"type":"object","properties":{"zip":{"type":"string","maxLength":10}}}}}`, nil, nil, true, "relaxed"},
		{"draft-07 -> 2020-12 same schema FULL", J, schema.Full,
			[]string{`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"a":{"$ref":"#/definitions/x"}},"definitions":{"x":{"type":"string"}}}`},
			`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"a":{"$ref":"#/$defs/x"}},"$defs":{"x":{"type":"string"}}}`, nil, nil, true, "same instance set"},
		{"draft-07 tuple items -> 2020-12 prefixItems FULL", J, schema.Full,
			[]string{`{"$schema":"http://json-schema.org/draft-07/schema#","type":"array","items":[{"type":"string"},{"type":"integer"}],"additionalItems":false}`},
			`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}`, nil, nil, true, "same instance set"},
		{"add description only FULL", J, schema.Full, []string{obj(pID, "")}, `{"type":"object","description":"x","properties":{"id":{"type":"string","description":"the id"}}}`, nil, nil, true, "annotations"},
		{"add format date-time BACKWARD (documented)", J, schema.Backward, []string{obj(`"t":{"type":"string"}`, "")}, obj(`"t":{"type":"string","format":"date-time"}`, ""), nil, nil, false, "documented: format asserted"},
		{"remove format FULL", J, schema.Backward, []string{obj(`"t":{"type":"string","format":"date-time"}`, "")}, obj(`"t":{"type":"string"}`, ""), nil, nil, true, "relax"},
		{"nested closed object add required BACKWARD", J, schema.Backward, []string{obj(`"a":`+obj(`"s":{"type":"string"}`, closed), "")}, obj(`"a":`+obj(`"s":{"type":"string"},"z":{"type":"string"}`, closed+`,"required":["z"]`), ""), nil, nil, false, "R2"},
		{"array items widen BACKWARD", J, schema.Backward, []string{obj(`"xs":{"type":"array","items":{"type":"string"}}`, "")}, obj(`"xs":{"type":"array","items":{"type":["string","number"]}}`, ""), nil, nil, true, "widen"},
		{"array items narrow BACKWARD", J, schema.Backward, []string{obj(`"xs":{"type":"array","items":{"type":["string","number"]}}`, "")}, obj(`"xs":{"type":"array","items":{"type":"string"}}`, ""), nil, nil, false, "narrow"},
		{"oneOf add branch of distinct type BACKWARD", J, schema.Backward, []string{obj(`"v":{"oneOf":[{"type":"string"},{"type":"integer"}]}`, "")}, obj(`"v":{"oneOf":[{"type":"string"},{"type":"integer"},{"type":"boolean"}]}`, ""), nil, nil, true, "SUM_TYPE extended"},
		{"const change BACKWARD", J, schema.Backward, []string{obj(`"k":{"const":"a"}`, "")}, obj(`"k":{"const":"b"}`, ""), nil, nil, false, "value excluded"},
		{"external ref changes BACKWARD", J, schema.Backward,
			[]string{obj(`"a":{"$ref":"address.json"}`, "")}, obj(`"a":{"$ref":"address.json"}`, ""),
			map[string]string{"address.json": obj(`"zip":{"type":"string"}`, "")},
			map[string]string{"address.json": obj(`"zip":{"type":"integer"}`, "")}, false, "referenced zip changed type"},
		{"external ref unchanged FULL", J, schema.Full,
			[]string{obj(`"a":{"$ref":"address.json"}`, "")}, obj(`"a":{"$ref":"address.json"}`, ""),
			map[string]string{"address.json": obj(`"zip":{"type":"string"}`, "")},
			map[string]string{"address.json": obj(`"zip":{"type":"string"}`, "")}, true, "identical"},
		{"FORWARD_TRANSITIVE maxLength 10->20->15", J, schema.ForwardTransitive,
			[]string{obj(`"n":{"type":"string","maxLength":10}`, ""), obj(`"n":{"type":"string","maxLength":20}`, "")}, obj(`"n":{"type":"string","maxLength":15}`, ""), nil, nil, false, "v1 reader maxLength 10 rejects 15-char"},
		{"FORWARD non-transitive maxLength 10->20->15", J, schema.Forward,
			[]string{obj(`"n":{"type":"string","maxLength":10}`, ""), obj(`"n":{"type":"string","maxLength":20}`, "")}, obj(`"n":{"type":"string","maxLength":15}`, ""), nil, nil, true, "v2 reader accepts"},
		{"exclusiveMinimum draft-07 raise BACKWARD", J, schema.Backward, []string{`{"$schema":"http://json-schema.org/draft-07/schema#","type":"number","exclusiveMinimum":0}`}, `{"$schema":"http://json-schema.org/draft-07/schema#","type":"number","exclusiveMinimum":1}`, nil, nil, false, "tighten"},
		{"integer max 9 -> exclusiveMaximum 10 FULL", J, schema.Full, []string{`{"type":"integer","maximum":9}`}, `{"type":"integer","exclusiveMaximum":10}`, nil, nil, true, "same integer set"},
		{"nullable via oneOf ref BACKWARD", J, schema.Backward,
			[]string{`{"type":"object","properties":{"a":{"$ref":"#/$defs/x"}},"$defs":{"x":{"type":"object","properties":{"s":{"type":"string"}}}}}`},
			`{"type":"object","properties":{"a":{"oneOf":[{"type":"null"},{"$ref":"#/$defs/x"}]}},"$defs":{"x":{"type":"object","properties":{"s":{"type":"string"}}}}}`, nil, nil, true, "superset"},
		{"open: add typed prop w/ pattern props covering BACKWARD", J, schema.Backward, []string{obj(pID, `,"additionalProperties":{"type":"string"}`)}, obj(pID+","+pZip, `,"additionalProperties":{"type":"string"}`), nil, nil, true, "A4"},
		{"object minProperties etc unchanged + required reorder FULL", J, schema.Full, []string{obj(pID+","+pZip, `,"required":["id","zip"]`)}, obj(pZip+","+pID, `,"required":["zip","id"]`), nil, nil, true, "order irrelevant"},
		{"enum -> type string BACKWARD", J, schema.Backward, []string{obj(`"s":{"type":"string","enum":["A","B"]}`, "")}, obj(`"s":{"type":"string"}`, ""), nil, nil, true, "widen"},
		{"type string -> enum BACKWARD", J, schema.Backward, []string{obj(`"s":{"type":"string"}`, "")}, obj(`"s":{"type":"string","enum":["A","B"]}`, ""), nil, nil, false, "narrow"},
		{"$ref to local def added (refactor inline->def) FULL", J, schema.Full,
			[]string{obj(`"a":{"type":"object","properties":{"s":{"type":"string"}}}`, "")},
			`{"type":"object","properties":{"a":{"$ref":"#/$defs/A"}},"$defs":{"A":{"type":"object","properties":{"s":{"type":"string"}}}}}`, nil, nil, true, "pure refactor"},
		{"recursive tree schema unchanged FULL", J, schema.Full,
			[]string{`{"$defs":{"n":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/n"}}}}},"$ref":"#/$defs/n"}`},
			`{"$defs":{"n":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/n"}}}}},"$ref":"#/$defs/n"}`, nil, nil, true, "identical recursive"},
		{"recursive tree widen v BACKWARD", J, schema.Backward,
			[]string{`{"$defs":{"n":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/n"}}}}},"$ref":"#/$defs/n"}`},
			`{"$defs":{"n":{"type":"object","properties":{"v":{"type":"number"},"kids":{"type":"array","items":{"$ref":"#/$defs/n"}}}}},"$ref":"#/$defs/n"}`, nil, nil, true, "widen in recursion"},
	}
	run(t, cases)
}
