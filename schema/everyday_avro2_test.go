package schema_test

import (
	"testing"

	"github.com/handoffhq/handoff/schema"
)

func TestEverydayAvroNested(t *testing.T) {
	optAddr := func(ns, extra string) string {
		return rec(`{"name":"address","type":["null",{"type":"record","name":"Address","namespace":"` + ns + `","fields":[{"name":"street","type":"string"}` + extra + `]}],"default":null}`)
	}
	cases := []tc{
		{"union [null,int]->[null,long] BACKWARD", A, schema.Backward, []string{rec(`{"name":"n","type":["null","int"],"default":null}`)}, rec(`{"name":"n","type":["null","long"],"default":null}`), nil, nil, true, "branch promotion"},
		{"union [null,int,long]->[null,long] BACKWARD", A, schema.Backward, []string{rec(`{"name":"n","type":["null","int","long"],"default":null}`)}, rec(`{"name":"n","type":["null","long"],"default":null}`), nil, nil, true, "int promotes into long branch"},
		{"int -> [null,string] BACKWARD", A, schema.Backward, []string{rec(`{"name":"n","type":"int"}`)}, rec(`{"name":"n","type":["null","string"],"default":null}`), nil, nil, false, "no branch reads int"},
		{"optional nested record add field no default BACKWARD", A, schema.Backward, []string{optAddr("acme", "")}, optAddr("acme", `,{"name":"zip","type":"string"}`), nil, nil, false, "nested reader field w/o default"},
		{"optional nested record namespace change FULL", A, schema.Full, []string{optAddr("acme", "")}, optAddr("acme.geo", ""), nil, nil, true, "unqualified names equal (Avro Java unionEquals/ schemaNameEquals)"},
		{"add default to existing field FULL", A, schema.Full, []string{rec(`{"name":"n","type":"int"}`)}, rec(`{"name":"n","type":"int","default":0}`), nil, nil, true, "default irrelevant when field present"},
		{"array of records, add field w default FULL", A, schema.Full, []string{rec(`{"name":"xs","type":{"type":"array","items":{"type":"record","name":"X","fields":[{"name":"a","type":"int"}]}}}`)}, rec(`{"name":"xs","type":{"type":"array","items":{"type":"record","name":"X","fields":[{"name":"a","type":"int"},{"name":"b","type":"int","default":0}]}}}`), nil, nil, true, "recursive"},
		{"decimal scale change BACKWARD (documented)", A, schema.Backward, []string{rec(`{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}}`)}, rec(`{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":3}}`), nil, nil, false, "documented choice"},
		{"FULL_TRANSITIVE 3 versions add optional each time", A, schema.FullTransitive, []string{rec(fID), rec(fID + `,{"name":"a","type":["null","string"],"default":null}`)}, rec(fID + `,{"name":"a","type":["null","string"],"default":null},{"name":"b","type":["null","string"],"default":null}`), nil, nil, true, "optional adds are fully transitive"},
		{"FORWARD_TRANSITIVE remove field that older version required", A, schema.ForwardTransitive, []string{rec(fID + `,{"name":"x","type":"int"}`), rec(fID + `,{"name":"x","type":"int","default":0}`)}, rec(fID), nil, nil, false, "v1 reader needs x without default"},
	}
	run(t, cases)
}
