package schema_test

import (
	"strings"
	"testing"

	"github.com/handoffhq/handoff/schema"
)

func rec(fields string) string {
	return `{"type":"record","name":"User","namespace":"acme","fields":[` + fields + `]}`
}

const (
	fID   = `{"name":"id","type":"long"}`
	fName = `{"name":"name","type":"string"}`
)

func TestEverydayAvro(t *testing.T) {
	base := rec(fID + "," + fName)
	enumF := func(syms string, def string) string {
		d := ""
		if def != "" {
			d = `,"default":"` + def + `"`
		}
		return rec(fID + `,{"name":"status","type":{"type":"enum","name":"Status","symbols":[` + syms + `]` + d + `}}`)
	}
	addr := func(extra string) string {
		return rec(fID + `,{"name":"address","type":{"type":"record","name":"Address","fields":[{"name":"street","type":"string"}` + extra + `]}}`)
	}
	cases := []tc{
		{"add field with default", A, schema.Backward, []string{base}, rec(fID + "," + fName + `,{"name":"email","type":"string","default":""}`), nil, nil, true, "spec: reader field absent in writer uses its default"},
		{"add field with default FULL", A, schema.Full, []string{base}, rec(fID + "," + fName + `,{"name":"email","type":"string","default":""}`), nil, nil, true, "old reader ignores extra writer field; new reader defaults"},
		{"add optional nullable field FULL", A, schema.Full, []string{base}, rec(fID + "," + fName + `,{"name":"email","type":["null","string"],"default":null}`), nil, nil, true, "canonical Confluent example"},
		{"add field no default BACKWARD", A, schema.Backward, []string{base}, rec(fID + "," + fName + `,{"name":"email","type":"string"}`), nil, nil, false, "spec: reader field w/o default missing in writer -> error"},
		{"add field no default FORWARD", A, schema.Forward, []string{base}, rec(fID + "," + fName + `,{"name":"email","type":"string"}`), nil, nil, true, "old reader ignores new writer field"},
		{"remove field no default BACKWARD", A, schema.Backward, []string{base}, rec(fID), nil, nil, true, "writer field not in reader is ignored"},
		{"remove field no default FORWARD", A, schema.Forward, []string{base}, rec(fID), nil, nil, false, "old reader needs 'name', no default"},
		{"remove field with default FULL", A, schema.Full, []string{rec(fID + `,{"name":"name","type":"string","default":"x"}`)}, rec(fID), nil, nil, true, "old reader has default"},
		{"rename with alias BACKWARD", A, schema.Backward, []string{base}, rec(fID + `,{"name":"fullName","type":"string","aliases":["name"]}`), nil, nil, true, "spec: reader field aliases match writer name"},
		{"rename with alias FORWARD", A, schema.Forward, []string{base}, rec(fID + `,{"name":"fullName","type":"string","aliases":["name"]}`), nil, nil, false, "old reader has no alias, no default"},
		{"rename no alias BACKWARD", A, schema.Backward, []string{base}, rec(fID + `,{"name":"fullName","type":"string"}`), nil, nil, false, "missing field w/o default"},
		{"widen int->long BACKWARD", A, schema.Backward, []string{rec(`{"name":"n","type":"int"}`)}, rec(`{"name":"n","type":"long"}`), nil, nil, true, "spec promotion int->long"},
		{"widen int->long FORWARD", A, schema.Forward, []string{rec(`{"name":"n","type":"int"}`)}, rec(`{"name":"n","type":"long"}`), nil, nil, false, "long cannot be read as int"},
		{"narrow long->int BACKWARD", A, schema.Backward, []string{rec(`{"name":"n","type":"long"}`)}, rec(`{"name":"n","type":"int"}`), nil, nil, false, "no promotion long->int"},
		{"int->double BACKWARD", A, schema.Backward, []string{rec(`{"name":"n","type":"int"}`)}, rec(`{"name":"n","type":"double"}`), nil, nil, true, "spec promotion"},
		{"string->bytes FULL", A, schema.Full, []string{rec(`{"name":"n","type":"string"}`)}, rec(`{"name":"n","type":"bytes"}`), nil, nil, true, "spec: string<->bytes promotable both ways"},
		{"string->int BACKWARD", A, schema.Backward, []string{rec(`{"name":"n","type":"string"}`)}, rec(`{"name":"n","type":"int"}`), nil, nil, false, "type mismatch"},
		{"make nullable BACKWARD", A, schema.Backward, []string{base}, rec(fID + `,{"name":"name","type":["null","string"],"default":null}`), nil, nil, true, "writer string matches reader union branch"},
		{"make nullable FORWARD", A, schema.Forward, []string{base}, rec(fID + `,{"name":"name","type":["null","string"],"default":null}`), nil, nil, false, "writer null branch unreadable by string reader (Avro SchemaCompatibility)"},
		{"nullable -> required BACKWARD", A, schema.Backward, []string{rec(fID + `,{"name":"name","type":["null","string"],"default":null}`)}, base, nil, nil, false, "writer null branch unreadable"},
		{"nullable -> required FORWARD", A, schema.Forward, []string{rec(fID + `,{"name":"name","type":["null","string"],"default":null}`)}, base, nil, nil, true, "new writer string fits old union"},
		{"add enum symbol BACKWARD", A, schema.Backward, []string{enumF(`"A","B"`, "")}, enumF(`"A","B","C"`, ""), nil, nil, true, "reader has all writer symbols"},
		{"add enum symbol FORWARD no default", A, schema.Forward, []string{enumF(`"A","B"`, "")}, enumF(`"A","B","C"`, ""), nil, nil, false, "old reader lacks C and no default"},
		{"add enum symbol FULL with default", A, schema.Full, []string{enumF(`"U","A","B"`, "U")}, enumF(`"U","A","B","C"`, "U"), nil, nil, true, "spec 1.9+: reader enum default used for unknown symbol"},
		{"remove enum symbol BACKWARD no default", A, schema.Backward, []string{enumF(`"A","B","C"`, "")}, enumF(`"A","B"`, ""), nil, nil, false, "writer may write C"},
		{"remove enum symbol BACKWARD new has default", A, schema.Backward, []string{enumF(`"A","B","C"`, "")}, enumF(`"A","B"`, "A"), nil, nil, true, "reader default absorbs C"},
		{"reorder enum symbols FULL", A, schema.Full, []string{enumF(`"A","B"`, "")}, enumF(`"B","A"`, ""), nil, nil, true, "resolved by name"},
		{"change namespace FULL", A, schema.Full, []string{base}, strings.Replace(base, `"acme"`, `"acme.v2"`, 1), nil, nil, true, "Avro Java/Confluent compare unqualified names"},
		{"rename record no alias BACKWARD", A, schema.Backward, []string{base}, strings.Replace(base, `"User"`, `"Person"`, 1), nil, nil, false, "NAME_MISMATCH (Avro Java)"},
		{"rename record with alias BACKWARD", A, schema.Backward, []string{base}, strings.Replace(base, `"name":"User"`, `"name":"Person","aliases":["acme.User"]`, 1), nil, nil, true, "reader alias"},
		{"add union branch BACKWARD", A, schema.Backward, []string{rec(`{"name":"v","type":["null","string"]}`)}, rec(`{"name":"v","type":["null","string","long"]}`), nil, nil, true, "reader union superset"},
		{"add union branch FORWARD", A, schema.Forward, []string{rec(`{"name":"v","type":["null","string"]}`)}, rec(`{"name":"v","type":["null","string","long"]}`), nil, nil, false, "old reader lacks long"},
		{"reorder union branches FULL", A, schema.Full, []string{rec(`{"name":"v","type":["null","string"],"default":null}`)}, rec(`{"name":"v","type":["string","null"],"default":""}`), nil, nil, true, "union branches resolved by type"},
		{"array items int->long BACKWARD", A, schema.Backward, []string{rec(`{"name":"v","type":{"type":"array","items":"int"}}`)}, rec(`{"name":"v","type":{"type":"array","items":"long"}}`), nil, nil, true, "items resolve recursively"},
		{"array items int->string BACKWARD", A, schema.Backward, []string{rec(`{"name":"v","type":{"type":"array","items":"int"}}`)}, rec(`{"name":"v","type":{"type":"array","items":"string"}}`), nil, nil, false, "item mismatch"},
		{"map values int->long FORWARD", A, schema.Forward, []string{rec(`{"name":"v","type":{"type":"map","values":"int"}}`)}, rec(`{"name":"v","type":{"type":"map","values":"long"}}`), nil, nil, false, "long not readable as int"},
		{"nested record add field no default BACKWARD", A, schema.Backward, []string{addr("")}, addr(`,{"name":"zip","type":"string"}`), nil, nil, false, "nested reader field w/o default"},
		{"nested record add field w/ default FULL", A, schema.Full, []string{addr("")}, addr(`,{"name":"zip","type":"string","default":""}`), nil, nil, true, "nested default"},
		{"logical: add timestamp-millis to long FULL", A, schema.Full, []string{rec(`{"name":"t","type":"long"}`)}, rec(`{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}}`), nil, nil, true, "Confluent ignores logical types; same bytes"},
		{"logical: millis->micros BACKWARD (documented break)", A, schema.Backward, []string{rec(`{"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}}`)}, rec(`{"name":"t","type":{"type":"long","logicalType":"timestamp-micros"}}`), nil, nil, false, "documented choice (Confluent: compatible)"},
		{"logical: decimal precision widen BACKWARD", A, schema.Backward, []string{rec(`{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}}`)}, rec(`{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}}`), nil, nil, true, "wider precision reads all"},
		{"logical: uuid on string FULL", A, schema.Full, []string{rec(`{"name":"u","type":"string"}`)}, rec(`{"name":"u","type":{"type":"string","logicalType":"uuid"}}`), nil, nil, true, "same bytes"},
		{"doc + field order change FULL", A, schema.Full, []string{base}, `{"type":"record","name":"User","namespace":"acme","doc":"a user","fields":[` + fName + `,` + fID + `]}`, nil, nil, true, "fields by name"},
		{"default value changed FULL", A, schema.Full, []string{rec(fID + `,{"name":"n","type":"int","default":1}`)}, rec(fID + `,{"name":"n","type":"int","default":2}`), nil, nil, true, "defaults only used when missing"},
		{"fixed size change BACKWARD", A, schema.Backward, []string{rec(`{"name":"f","type":{"type":"fixed","name":"H","size":16}}`)}, rec(`{"name":"f","type":{"type":"fixed","name":"H","size":32}}`), nil, nil, false, "spec: fixed sizes must match"},
		{"writer int reader [null,long] BACKWARD", A, schema.Backward, []string{rec(`{"name":"n","type":"int"}`)}, rec(`{"name":"n","type":["null","long"],"default":null}`), nil, nil, true, "spec: first matching union branch, with promotion"},
		{"field to record type BACKWARD", A, schema.Backward, []string{rec(`{"name":"a","type":"string"}`)}, rec(`{"name":"a","type":{"type":"record","name":"A","fields":[{"name":"s","type":"string"}]}}`), nil, nil, false, "kind change"},
		{"TRANSITIVE: v3 drops default added in v2", A, schema.BackwardTransitive,
			[]string{rec(fID), rec(fID + `,{"name":"email","type":"string","default":""}`)},
			rec(fID + `,{"name":"email","type":"string"}`), nil, nil, false, "v3 cannot read v1 data (no email, no default)"},
		{"NON-TRANSITIVE same chain", A, schema.Backward,
			[]string{rec(fID), rec(fID + `,{"name":"email","type":"string","default":""}`)},
			rec(fID + `,{"name":"email","type":"string"}`), nil, nil, true, "v3 reads v2 data fine"},
		{"recursive linked list add field w default FULL", A, schema.Full,
			[]string{`{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"],"default":null}]}`},
			`{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"],"default":null},{"name":"w","type":"int","default":0}]}`, nil, nil, true, "recursion"},
		{"named type reused, change once BACKWARD", A, schema.Backward,
			[]string{rec(`{"name":"home","type":{"type":"record","name":"Addr","fields":[{"name":"s","type":"string"}]}},{"name":"work","type":"Addr"}`)},
			rec(`{"name":"home","type":{"type":"record","name":"Addr","fields":[{"name":"s","type":"string"},{"name":"z","type":"int"}]}},{"name":"work","type":"Addr"}`), nil, nil, false, "Addr.z no default"},
		{"top-level string->bytes", A, schema.Full, []string{`"string"`}, `"bytes"`, nil, nil, true, "promotion both ways"},
		{"referenced type changes BACKWARD", A, schema.Backward,
			[]string{rec(`{"name":"a","type":"acme.Addr"}`)}, rec(`{"name":"a","type":"acme.Addr"}`),
			map[string]string{"acme.Addr": `{"type":"record","name":"Addr","namespace":"acme","fields":[{"name":"s","type":"string"}]}`},
			map[string]string{"acme.Addr": `{"type":"record","name":"Addr","namespace":"acme","fields":[{"name":"s","type":"string"},{"name":"z","type":"int"}]}`}, false, "reference's new field lacks default"},
	}
	run(t, cases)
}
