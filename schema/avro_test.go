package schema

import (
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

// avroRecord builds a record schema test.R (or another name) from field JSON.
func avroRecord(name string, fields ...string) string {
	return `{"type":"record","name":"` + name + `","namespace":"test","fields":[` + strings.Join(fields, ",") + `]}`
}

func avroR(fields ...string) string { return avroRecord("R", fields...) }

func avroTestdata(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "avro", name))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func avroParse(tb testing.TB, text string, refs map[string]string) *Parsed {
	tb.Helper()
	p, err := Parse(Schema{Type: Avro, Text: text, References: refs})
	if err != nil {
		tb.Fatalf("Parse(%s): %v", text, err)
	}
	return p
}

// avroVersions parses texts as versions 1, 2, ...
func avroVersions(tb testing.TB, refs []map[string]string, texts ...string) []Version {
	tb.Helper()
	out := make([]Version, len(texts))
	for i, text := range texts {
		var r map[string]string
		if i < len(refs) {
			r = refs[i]
		}
		out[i] = Version{Version: i + 1, Schema: avroParse(tb, text, r)}
	}
	return out
}

// avroGot renders violations as "RULE path direction vN", sorted.
func avroGot(vs []Violation) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, fmt.Sprintf("%s %s %s v%d", v.Rule, pathOrRoot(v.Path), v.Direction, v.Version))
	}
	slices.Sort(out)
	return out
}

type avroCompatCase struct {
	name    string
	level   Level
	earlier []string // versions 1..n, oldest first
	next    string
	// refs for earlier versions (by index) and for next.
	earlierRefs []map[string]string
	nextRefs    map[string]string
	want        []string // "RULE path direction vN"
}

func avroRunCompat(t *testing.T, cases []avroCompatCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			earlier := avroVersions(t, tc.earlierRefs, tc.earlier...)
			next := avroParse(t, tc.next, tc.nextRefs)
			res := strictCheck(tc.level, next, earlier)
			got := avroGot(res.Violations)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("violations:\n got %q\nwant %q", got, want)
				for _, v := range res.Violations {
					t.Log(v)
				}
			}
			if res.Compatible() != (len(tc.want) == 0) {
				t.Errorf("Compatible() = %v with %d violations", res.Compatible(), len(res.Violations))
			}
			for _, v := range res.Violations {
				if v.Message == "" || v.Hint == "" {
					t.Errorf("violation without message or hint: %v", v)
				}
			}
		})
	}
}

var avroPrimitives = []string{"null", "boolean", "int", "long", "float", "double", "bytes", "string"}

// TestAvroPromotions checks every pair of primitive types, both directions:
// only the specification's promotions are readable.
func TestAvroPromotions(t *testing.T) {
	allowed := map[[2]string]bool{ // writer, reader
		{"int", "long"}: true, {"int", "float"}: true, {"int", "double"}: true,
		{"long", "float"}: true, {"long", "double"}: true,
		{"float", "double"}: true,
		{"string", "bytes"}: true, {"bytes", "string"}: true,
	}
	var cases []avroCompatCase
	for _, w := range avroPrimitives {
		for _, r := range avroPrimitives {
			tc := avroCompatCase{
				name:    w + "_to_" + r,
				level:   Backward,
				earlier: []string{avroR(`{"name":"f","type":"` + w + `"}`)},
				next:    avroR(`{"name":"f","type":"` + r + `"}`),
			}
			if w != r && !allowed[[2]string{w, r}] {
				tc.want = []string{"TYPE_MISMATCH /f reader v1"}
			}
			cases = append(cases, tc)
		}
	}
	// The same pairs as top-level schemas, under FORWARD: the old schema reads.
	for _, w := range avroPrimitives {
		for _, r := range avroPrimitives {
			tc := avroCompatCase{
				name:    "top_level_forward_" + r + "_reads_" + w,
				level:   Forward,
				earlier: []string{`"` + r + `"`},
				next:    `{"type":"` + w + `"}`,
			}
			if w != r && !allowed[[2]string{w, r}] {
				tc.want = []string{"TYPE_MISMATCH / writer v1"}
			}
			cases = append(cases, tc)
		}
	}
	avroRunCompat(t, cases)
}

func TestAvroCompatRecords(t *testing.T) {
	base := avroR(`{"name":"id","type":"long"}`)
	withDefault := avroR(`{"name":"id","type":"long"}`, `{"name":"email","type":"string","default":""}`)
	noDefault := avroR(`{"name":"id","type":"long"}`, `{"name":"email","type":"string"}`)
	nameV1 := avroR(`{"name":"name","type":"string"}`)
	renamedAlias := avroR(`{"name":"fullName","type":"string","aliases":["name"]}`)
	renamedBare := avroR(`{"name":"fullName","type":"string"}`)
	avroRunCompat(t, []avroCompatCase{
		{name: "field added with default, backward", level: Backward, earlier: []string{base}, next: withDefault},
		{name: "field added with default, forward", level: Forward, earlier: []string{base}, next: withDefault},
		{name: "field added with default, full", level: Full, earlier: []string{base}, next: withDefault},
		{name: "field added without default, backward", level: Backward, earlier: []string{base}, next: noDefault,
			want: []string{"READER_FIELD_MISSING_DEFAULT_VALUE /email reader v1"}},
		{name: "field added without default, forward", level: Forward, earlier: []string{base}, next: noDefault},
		{name: "field added without default, full", level: Full, earlier: []string{base}, next: noDefault,
			want: []string{"READER_FIELD_MISSING_DEFAULT_VALUE /email reader v1"}},
		{name: "field without default removed, backward", level: Backward, earlier: []string{noDefault}, next: base},
		{name: "field without default removed, forward", level: Forward, earlier: []string{noDefault}, next: base,
			want: []string{"READER_FIELD_MISSING_DEFAULT_VALUE /email writer v1"}},
		{name: "field with default removed, full", level: Full, earlier: []string{withDefault}, next: base},
		{name: "field renamed with alias, backward", level: Backward, earlier: []string{nameV1}, next: renamedAlias},
		{name: "field renamed with alias, forward", level: Forward, earlier: []string{nameV1}, next: renamedAlias,
			want: []string{"READER_FIELD_MISSING_DEFAULT_VALUE /name writer v1"}},
		{name: "field renamed without alias, backward", level: Backward, earlier: []string{nameV1}, next: renamedBare,
			want: []string{"READER_FIELD_MISSING_DEFAULT_VALUE /fullName reader v1"}},
		{name: "record renamed", level: Backward, earlier: []string{base}, next: avroRecord("Client", `{"name":"id","type":"long"}`),
			want: []string{"NAME_MISMATCH / reader v1"}},
		{name: "record renamed with alias, backward", level: Backward, earlier: []string{base},
			next: `{"type":"record","name":"Client","namespace":"test","aliases":["R"],"fields":[{"name":"id","type":"long"}]}`},
		{name: "record renamed with alias, full", level: Full, earlier: []string{base},
			next: `{"type":"record","name":"Client","namespace":"test","aliases":["test.R"],"fields":[{"name":"id","type":"long"}]}`,
			want: []string{"NAME_MISMATCH / writer v1"}},
		{name: "namespace change only", level: Full, earlier: []string{base},
			next: `{"type":"record","name":"R","namespace":"other","fields":[{"name":"id","type":"long"}]}`},
		{name: "nested record field type change", level: Full,
			earlier: []string{avroR(`{"name":"address","type":` + avroRecord("Address", `{"name":"zip","type":"int"}`) + `}`)},
			next:    avroR(`{"name":"address","type":` + avroRecord("Address", `{"name":"zip","type":"long"}`) + `}`),
			want:    []string{"TYPE_MISMATCH /address/zip writer v1"}},
		{name: "nested record field added without default", level: Backward,
			earlier: []string{avroR(`{"name":"address","type":` + avroRecord("Address", `{"name":"zip","type":"int"}`) + `}`)},
			next:    avroR(`{"name":"address","type":` + avroRecord("Address", `{"name":"zip","type":"int"}`, `{"name":"city","type":"string"}`) + `}`),
			want:    []string{"READER_FIELD_MISSING_DEFAULT_VALUE /address/city reader v1"}},
		{name: "record replaced by a primitive", level: Backward,
			earlier: []string{avroR(`{"name":"address","type":` + avroRecord("Address", `{"name":"zip","type":"int"}`) + `}`)},
			next:    avroR(`{"name":"address","type":"string"}`),
			want:    []string{"TYPE_MISMATCH /address reader v1"}},
	})
}

func TestAvroCompatEnumsAndFixed(t *testing.T) {
	enum := func(def string, symbols ...string) string {
		d := ""
		if def != "" {
			d = `,"default":"` + def + `"`
		}
		return avroR(`{"name":"color","type":{"type":"enum","name":"Color","symbols":["` + strings.Join(symbols, `","`) + `"]` + d + `}}`)
	}
	fixed := func(name string, size int) string {
		return avroR(fmt.Sprintf(`{"name":"hash","type":{"type":"fixed","name":%q,"size":%d}}`, name, size))
	}
	avroRunCompat(t, []avroCompatCase{
		{name: "symbol added, backward", level: Backward, earlier: []string{enum("", "RED", "GREEN")}, next: enum("", "RED", "GREEN", "BLUE")},
		{name: "symbol added, forward", level: Forward, earlier: []string{enum("", "RED", "GREEN")}, next: enum("", "RED", "GREEN", "BLUE"),
			want: []string{"MISSING_ENUM_SYMBOLS /color writer v1"}},
		{name: "symbol added, old enum has a default", level: Full, earlier: []string{enum("RED", "RED", "GREEN")}, next: enum("RED", "RED", "GREEN", "BLUE")},
		{name: "symbol removed, backward", level: Backward, earlier: []string{enum("", "RED", "GREEN", "BLUE")}, next: enum("", "RED", "GREEN"),
			want: []string{"MISSING_ENUM_SYMBOLS /color reader v1"}},
		{name: "symbol removed, new enum has a default", level: Backward, earlier: []string{enum("", "RED", "GREEN", "BLUE")}, next: enum("RED", "RED", "GREEN")},
		{name: "symbols reordered", level: Full, earlier: []string{enum("", "RED", "GREEN")}, next: enum("", "GREEN", "RED")},
		{name: "enum renamed", level: Backward, earlier: []string{enum("", "RED")},
			next: avroR(`{"name":"color","type":{"type":"enum","name":"Colour","symbols":["RED"]}}`),
			want: []string{"NAME_MISMATCH /color reader v1"}},
		{name: "enum renamed with alias", level: Backward, earlier: []string{enum("", "RED")},
			next: avroR(`{"name":"color","type":{"type":"enum","name":"Colour","aliases":["Color"],"symbols":["RED"]}}`)},
		{name: "fixed size change", level: Full, earlier: []string{fixed("Hash", 16)}, next: fixed("Hash", 32),
			want: []string{"FIXED_SIZE_MISMATCH /hash reader v1", "FIXED_SIZE_MISMATCH /hash writer v1"}},
		{name: "fixed renamed and resized", level: Backward, earlier: []string{fixed("Hash", 16)}, next: fixed("Digest", 32),
			want: []string{"NAME_MISMATCH /hash reader v1", "FIXED_SIZE_MISMATCH /hash reader v1"}},
		{name: "fixed to bytes", level: Backward, earlier: []string{fixed("Hash", 16)}, next: avroR(`{"name":"hash","type":"bytes"}`),
			want: []string{"TYPE_MISMATCH /hash reader v1"}},
	})
}

func TestAvroCompatUnionsArraysMaps(t *testing.T) {
	f := func(typ string) string { return avroR(`{"name":"f","type":` + typ + `}`) }
	avroRunCompat(t, []avroCompatCase{
		{name: "branch added, backward", level: Backward, earlier: []string{f(`["null","string"]`)}, next: f(`["null","string","int"]`)},
		{name: "branch added, forward", level: Forward, earlier: []string{f(`["null","string"]`)}, next: f(`["null","string","int"]`),
			want: []string{"MISSING_UNION_BRANCH /f/int writer v1"}},
		{name: "branch removed, backward", level: Backward, earlier: []string{f(`["null","string","int"]`)}, next: f(`["null","string"]`),
			want: []string{"MISSING_UNION_BRANCH /f/int reader v1"}},
		{name: "branch removed, forward", level: Forward, earlier: []string{f(`["null","string","int"]`)}, next: f(`["null","string"]`)},
		{name: "branch promoted within a union", level: Backward, earlier: []string{f(`["null","int"]`)}, next: f(`["null","long"]`)},
		{name: "made optional, backward", level: Backward, earlier: []string{f(`"string"`)}, next: f(`["null","string"]`)},
		{name: "made optional, forward", level: Forward, earlier: []string{f(`"string"`)}, next: f(`["null","string"]`),
			want: []string{"MISSING_UNION_BRANCH /f/null writer v1"}},
		{name: "reader union lacks the writer type", level: Backward, earlier: []string{f(`"int"`)}, next: f(`["null","string"]`),
			want: []string{"MISSING_UNION_BRANCH /f reader v1"}},
		{name: "reader union branch resolved recursively", level: Backward,
			earlier: []string{f(avroRecord("A", `{"name":"x","type":"int"}`))},
			next:    f(`["null",` + avroRecord("A", `{"name":"x","type":"int"}`, `{"name":"y","type":"int"}`) + `]`),
			want:    []string{"READER_FIELD_MISSING_DEFAULT_VALUE /f/test.A/y reader v1"}},
		{name: "union of records, branch renamed", level: Backward,
			earlier: []string{f(`["null",` + avroRecord("A", `{"name":"x","type":"int"}`) + `]`)},
			next:    f(`["null",` + avroRecord("B", `{"name":"x","type":"int"}`) + `]`),
			want:    []string{"MISSING_UNION_BRANCH /f/test.A reader v1"}},
		{name: "array items changed", level: Full, earlier: []string{f(`{"type":"array","items":"int"}`)}, next: f(`{"type":"array","items":"string"}`),
			want: []string{"TYPE_MISMATCH /f/items reader v1", "TYPE_MISMATCH /f/items writer v1"}},
		{name: "array items promoted", level: Backward, earlier: []string{f(`{"type":"array","items":"int"}`)}, next: f(`{"type":"array","items":"double"}`)},
		{name: "map values narrowed", level: Backward, earlier: []string{f(`{"type":"map","values":"long"}`)}, next: f(`{"type":"map","values":"int"}`),
			want: []string{"TYPE_MISMATCH /f/values reader v1"}},
		{name: "map of arrays of records", level: Backward,
			earlier: []string{f(`{"type":"map","values":{"type":"array","items":` + avroRecord("P", `{"name":"x","type":"int"}`) + `}}`)},
			next:    f(`{"type":"map","values":{"type":"array","items":` + avroRecord("P", `{"name":"x","type":"boolean"}`) + `}}`),
			want:    []string{"TYPE_MISMATCH /f/values/items/x reader v1"}},
		{name: "array became map", level: Backward, earlier: []string{f(`{"type":"array","items":"int"}`)}, next: f(`{"type":"map","values":"int"}`),
			want: []string{"TYPE_MISMATCH /f reader v1"}},
	})
}

func TestAvroCompatLogicalTypes(t *testing.T) {
	f := func(typ string) string { return avroR(`{"name":"f","type":` + typ + `}`) }
	dec := func(p, s int) string {
		return f(fmt.Sprintf(`{"type":"bytes","logicalType":"decimal","precision":%d,"scale":%d}`, p, s))
	}
	avroRunCompat(t, []avroCompatCase{
		{name: "logical type added", level: Full, earlier: []string{f(`"long"`)}, next: f(`{"type":"long","logicalType":"timestamp-millis"}`)},
		{name: "millis to micros", level: Backward, earlier: []string{f(`{"type":"long","logicalType":"timestamp-millis"}`)},
			next: f(`{"type":"long","logicalType":"timestamp-micros"}`),
			want: []string{"LOGICAL_TYPE_MISMATCH /f reader v1"}},
		{name: "date promoted to timestamp", level: Backward, earlier: []string{f(`{"type":"int","logicalType":"date"}`)},
			next: f(`{"type":"long","logicalType":"timestamp-millis"}`),
			want: []string{"LOGICAL_TYPE_MISMATCH /f reader v1"}},
		{name: "decimal precision widened", level: Backward, earlier: []string{dec(9, 2)}, next: dec(12, 2)},
		{name: "decimal precision widened, full", level: Full, earlier: []string{dec(9, 2)}, next: dec(12, 2),
			want: []string{"DECIMAL_PRECISION_NARROWED /f writer v1"}},
		{name: "decimal scale changed", level: Backward, earlier: []string{dec(9, 2)}, next: dec(9, 3),
			want: []string{"DECIMAL_SCALE_MISMATCH /f reader v1"}},
		{name: "fixed decimal scale changed", level: Backward,
			earlier: []string{f(`{"type":"fixed","name":"Money","size":8,"logicalType":"decimal","precision":10,"scale":2}`)},
			next:    f(`{"type":"fixed","name":"Money","size":8,"logicalType":"decimal","precision":10,"scale":4}`),
			want:    []string{"DECIMAL_SCALE_MISMATCH /f reader v1"}},
	})
}

func TestAvroCompatReferencesRecursionTransitive(t *testing.T) {
	address := avroTestdata(t, "address.avsc")
	address2 := strings.Replace(address, `{"name": "zip", "type": "string"}`,
		`{"name": "zip", "type": "string"}, {"name": "country", "type": "string"}`, 1)
	if address2 == address {
		t.Fatal("address.avsc changed: fix the test's edit")
	}
	shipment := avroTestdata(t, "shipment.avsc")
	list := avroTestdata(t, "linked_list.avsc")
	listLong := strings.Replace(list, `{"name": "value", "type": "int"}`, `{"name": "value", "type": "long"}`, 1)
	listMore := strings.Replace(list, `{"name": "value", "type": "int"}`, `{"name": "value", "type": "int"}, {"name": "label", "type": "string"}`, 1)
	v1 := avroR(`{"name":"id","type":"int"}`)
	v2 := avroR(`{"name":"id","type":"int"}`, `{"name":"email","type":"string","default":""}`)
	v3 := avroR(`{"name":"id","type":"int"}`, `{"name":"email","type":"string"}`)
	avroRunCompat(t, []avroCompatCase{
		{name: "reference unchanged", level: FullTransitive, earlier: []string{shipment},
			earlierRefs: []map[string]string{{"acme.common.Address": address}},
			next:        shipment, nextRefs: map[string]string{"acme.common.Address": address}},
		{name: "referenced type gains a field without default", level: Full, earlier: []string{shipment},
			earlierRefs: []map[string]string{{"acme.common.Address": address}},
			next:        shipment, nextRefs: map[string]string{"acme.common.Address": address2},
			want: []string{"READER_FIELD_MISSING_DEFAULT_VALUE /to/country reader v1"}},
		{name: "linked list promoted, backward", level: Backward, earlier: []string{list}, next: listLong},
		{name: "linked list promoted, full", level: Full, earlier: []string{list}, next: listLong,
			want: []string{"TYPE_MISMATCH /value writer v1"}},
		{name: "linked list field added once", level: Backward, earlier: []string{list}, next: listMore,
			want: []string{"READER_FIELD_MISSING_DEFAULT_VALUE /label reader v1"}},
		{name: "only the latest is checked", level: Backward, earlier: []string{v1, v2}, next: v3},
		{name: "transitive: an older version breaks", level: BackwardTransitive, earlier: []string{v1, v2}, next: v3,
			want: []string{"READER_FIELD_MISSING_DEFAULT_VALUE /email reader v1"}},
		{name: "transitive full", level: FullTransitive, earlier: []string{v1, v2}, next: v3,
			want: []string{"READER_FIELD_MISSING_DEFAULT_VALUE /email reader v1"}},
	})
}

func TestAvroCompatManyViolationsAtOnce(t *testing.T) {
	old := avroR(
		`{"name":"id","type":"long"}`,
		`{"name":"color","type":{"type":"enum","name":"Color","symbols":["RED","GREEN","BLUE"]}}`,
		`{"name":"hash","type":{"type":"fixed","name":"Hash","size":16}}`,
		`{"name":"tags","type":{"type":"array","items":"string"}}`,
		`{"name":"opt","type":["null","string","int"]}`,
		`{"name":"address","type":`+avroRecord("Address", `{"name":"zip","type":"string"}`)+`}`,
	)
	next := avroRecord("Renamed",
		`{"name":"id","type":"int"}`,
		`{"name":"color","type":{"type":"enum","name":"Color","symbols":["RED"]}}`,
		`{"name":"hash","type":{"type":"fixed","name":"Hash","size":8}}`,
		`{"name":"tags","type":{"type":"array","items":"int"}}`,
		`{"name":"opt","type":["null","string"]}`,
		`{"name":"address","type":`+avroRecord("Address", `{"name":"zip","type":"string"}`, `{"name":"city","type":"string"}`)+`}`,
		`{"name":"added","type":"string"}`,
	)
	avroRunCompat(t, []avroCompatCase{{
		name: "every break", level: Backward, earlier: []string{old}, next: next,
		want: []string{
			"NAME_MISMATCH / reader v1",
			"TYPE_MISMATCH /id reader v1",
			"MISSING_ENUM_SYMBOLS /color reader v1",
			"FIXED_SIZE_MISMATCH /hash reader v1",
			"TYPE_MISMATCH /tags/items reader v1",
			"MISSING_UNION_BRANCH /opt/int reader v1",
			"READER_FIELD_MISSING_DEFAULT_VALUE /address/city reader v1",
			"READER_FIELD_MISSING_DEFAULT_VALUE /added reader v1",
		},
	}})
}

// TestAvroEveryRuleTriggered keeps the rule table and the tests in step.
func TestAvroEveryRuleTriggered(t *testing.T) {
	rules := []string{avroRuleNameMismatch, avroRuleFixedSize, avroRuleMissingSymbols, avroRuleMissingDefault,
		avroRuleTypeMismatch, avroRuleMissingBranch, avroRuleLogicalMismatch, avroRuleDecimalScale, avroRuleDecimalPrecision}
	doc, err := os.ReadFile("rules-avro.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("avro_test.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if !strings.Contains(string(doc), "`"+r+"`") {
			t.Errorf("rules-avro.md does not document %s", r)
		}
		if strings.Count(string(src), `"`+r+" ") == 0 {
			t.Errorf("no test expects %s", r)
		}
	}
}

func TestAvroParseErrors(t *testing.T) {
	cases := []struct {
		name, text string
		refs       map[string]string
		rule, loc  string
	}{
		{"invalid JSON", `{"type":`, nil, "INVALID_JSON", ""},
		{"bare word", `string`, nil, "INVALID_JSON", ""},
		{"unknown field type", avroR(`{"name":"a","type":"Foo"}`), nil, "UNKNOWN_TYPE", "/fields/0/type"},
		{"unknown type in array", avroR(`{"name":"a","type":{"type":"array","items":"Foo"}}`), nil, "UNKNOWN_TYPE", "/fields/0/type/items"},
		{"type is a number", `{"type":5}`, nil, "UNKNOWN_TYPE", ""},
		{"default of the wrong type", avroR(`{"name":"a","type":"int","default":"x"}`), nil, "INVALID_DEFAULT", "/fields/0/default"},
		{"fractional int default", avroR(`{"name":"a","type":"int","default":1.5}`), nil, "INVALID_DEFAULT", "/fields/0/default"},
		{"int default out of range", avroR(`{"name":"a","type":"int","default":3000000000}`), nil, "INVALID_DEFAULT", "/fields/0/default"},
		{"union default not of the first branch", avroR(`{"name":"a","type":["null","string"],"default":"x"}`), nil, "INVALID_DEFAULT", "/fields/0/default"},
		{"fixed default of the wrong size", avroR(`{"name":"a","type":{"type":"fixed","name":"F","size":4},"default":"ab"}`), nil, "INVALID_DEFAULT", "/fields/0/default"},
		{"nested record default lacks a field", avroR(`{"name":"a","type":` + avroRecord("In", `{"name":"x","type":"int"}`) + `,"default":{}}`), nil, "INVALID_DEFAULT", "/fields/0/default"},
		{"enum default in a field", avroR(`{"name":"a","type":{"type":"enum","name":"E","symbols":["A"]},"default":"B"}`), nil, "INVALID_DEFAULT", "/fields/0/default"},
		{"invalid default deep down", avroR(`{"name":"a","type":{"type":"array","items":` + avroRecord("In", `{"name":"x","type":"long","default":"no"}`) + `}}`), nil, "INVALID_DEFAULT", "/fields/0/type/items/fields/0/default"},
		{"duplicate field", avroR(`{"name":"a","type":"int"}`, `{"name":"a","type":"long"}`), nil, "DUPLICATE_FIELD", "/fields/1"},
		{"record without fields", `{"type":"record","name":"R"}`, nil, "MISSING_FIELDS", ""},
		{"record without name", `{"type":"record","fields":[]}`, nil, "MISSING_NAME", ""},
		{"name not a string", `{"type":"record","name":5,"fields":[]}`, nil, "MALFORMED_SCHEMA", "/name"},
		{"invalid record name", `{"type":"record","name":"1R","fields":[]}`, nil, "INVALID_NAME", "/name"},
		{"invalid field name", avroR(`{"name":"a-b","type":"int"}`), nil, "INVALID_NAME", "/fields/0/name"},
		{"invalid enum symbol", avroR(`{"name":"a","type":{"type":"enum","name":"E","symbols":["A","b c"]}}`), nil, "INVALID_NAME", "/fields/0/type/symbols/1"},
		{"duplicate type name", avroR(`{"name":"a","type":`+avroRecord("In", `{"name":"x","type":"int"}`)+`}`, `{"name":"b","type":`+avroRecord("In", `{"name":"x","type":"int"}`)+`}`), nil, "DUPLICATE_NAME", "/fields/1/type"},
		{"field without type", avroR(`{"name":"a"}`), nil, "MISSING_FIELD_TYPE", "/fields/0"},
		{"invalid order", avroR(`{"name":"a","type":"int","order":"up"}`), nil, "INVALID_ORDER", "/fields/0/order"},
		{"duplicate enum symbol", `{"type":"enum","name":"E","symbols":["A","A"]}`, nil, "INVALID_ENUM", "/symbols/1"},
		{"empty enum", `{"type":"enum","name":"E","symbols":[]}`, nil, "INVALID_ENUM", "/symbols"},
		{"enum default not a symbol", `{"type":"enum","name":"E","symbols":["A"],"default":"B"}`, nil, "INVALID_ENUM", "/default"},
		{"array without items", avroR(`{"name":"a","type":{"type":"array"}}`), nil, "MISSING_ITEMS", "/fields/0/type"},
		{"map without values", `{"type":"map"}`, nil, "MISSING_VALUES", ""},
		{"duplicate union branch", avroR(`{"name":"a","type":["int","int"]}`), nil, "INVALID_UNION", "/fields/0/type/1"},
		{"union in a union", `["null",["int"]]`, nil, "INVALID_UNION", "/1"},
		{"fixed without size", `{"type":"fixed","name":"F"}`, nil, "INVALID_FIXED_SIZE", ""},
		{"fixed size negative", `{"type":"fixed","name":"F","size":-1}`, nil, "INVALID_FIXED_SIZE", "/size"},
		{"fixed size huge", `{"type":"fixed","name":"F","size":99999999999}`, nil, "INVALID_FIXED_SIZE", "/size"},
		{"reference does not define its name", `"acme.X"`, map[string]string{"acme.X": `{"type":"record","name":"Y","namespace":"acme","fields":[]}`}, "INVALID_REFERENCE", ""},
		{"reference does not parse", `"acme.X"`, map[string]string{"acme.X": `{"type":"record","name":"X","namespace":"acme","fields":[{"name":"a","type":"Nope"}]}`}, "UNKNOWN_TYPE", "/fields/0/type"},
		{"type from a missing reference", avroR(`{"name":"a","type":"acme.X"}`), nil, "UNKNOWN_TYPE", "/fields/0/type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(Schema{Type: Avro, Text: tc.text, References: tc.refs})
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse: err = %v, want a *ParseError", err)
			}
			if !errors.Is(err, ErrInvalidSchema) {
				t.Errorf("err does not wrap ErrInvalidSchema")
			}
			if !strings.HasPrefix(pe.Reason, tc.rule+": ") || pe.Location != tc.loc || pe.Type != Avro {
				t.Errorf("got %s %q at %q, want %s at %q", pe.Type, pe.Reason, pe.Location, tc.rule, tc.loc)
			}
			if tc.refs != nil && !strings.Contains(pe.Reason, "reference") {
				t.Errorf("reason %q does not name the reference", pe.Reason)
			}
		})
	}
}

func TestAvroParseAccepts(t *testing.T) {
	address := avroTestdata(t, "address.avsc")
	cases := []struct {
		name, text string
		refs       map[string]string
	}{
		{"primitive", `"string"`, nil},
		{"primitive object", `{"type":"long","logicalType":"timestamp-millis"}`, nil},
		{"order", avroTestdata(t, "order.avsc"), nil},
		{"recursive", avroTestdata(t, "linked_list.avsc"), nil},
		{"reference", avroTestdata(t, "shipment.avsc"), map[string]string{"acme.common.Address": address}},
		{"references using each other", `{"type":"record","name":"Top","fields":[{"name":"s","type":"acme.shop.Shipment"}]}`,
			map[string]string{"acme.common.Address": address, "acme.shop.Shipment": avroTestdata(t, "shipment.avsc")}},
		{"references listed before what they use", `"a.Uses"`, map[string]string{
			"a.Uses": `{"type":"record","name":"Uses","namespace":"a","fields":[{"name":"b","type":"z.Base"}]}`,
			"z.Base": `{"type":"enum","name":"Base","namespace":"z","symbols":["X"]}`,
		}},
		{"reference by alias", `"acme.Old"`, map[string]string{"acme.Old": `{"type":"record","name":"New","namespace":"acme","aliases":["Old"],"fields":[]}`}},
		{"namespaces and aliases", `{"type":"record","name":"a.b.R","aliases":["Old","x.y.Older"],"fields":[
			{"name":"e","type":{"type":"enum","name":"E","symbols":["A"]}},
			{"name":"e2","type":"a.b.E","aliases":["e_two"]},
			{"name":"in","type":{"type":"record","name":"In","namespace":"c","fields":[{"name":"e","type":"a.b.E"}]}},
			{"name":"in2","type":"c.In"}]}`, nil},
		{"defaults", avroR(`{"name":"a","type":"int","default":-3}`, `{"name":"b","type":"bytes","default":"\u00ff"}`,
			`{"name":"c","type":{"type":"array","items":"long"},"default":[1,2]}`, `{"name":"d","type":{"type":"map","values":"float"},"default":{"x":1.5}}`,
			`{"name":"e","type":["string","null"],"default":"x"}`, `{"name":"f","type":`+avroRecord("In", `{"name":"x","type":"int"}`, `{"name":"y","type":"int","default":2}`)+`,"default":{"x":1}}`,
			`{"name":"g","type":{"type":"fixed","name":"F","size":2},"default":"ab"}`, `{"name":"h","type":"double","default":1e3}`), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := avroParse(t, tc.text, tc.refs)
			if p.Type() != Avro {
				t.Errorf("Type() = %s", p.Type())
			}
			if c := p.Canonical(); strings.ContainsAny(c, "\n\t") {
				t.Errorf("Canonical() keeps whitespace: %s", c)
			}
			if vs := strictCheck(FullTransitive, p, []Version{{Version: 1, Schema: p}}).Violations; len(vs) > 0 {
				t.Errorf("schema incompatible with itself: %v", vs)
			}
		})
	}
}

func TestAvroCanonical(t *testing.T) {
	a := avroParse(t, "{ \"type\" : \"record\",\n \"name\":\"R\", \"fields\" : [ ] }", nil)
	b := avroParse(t, `{"type":"record","name":"R","fields":[]}`, nil)
	if a.Canonical() != b.Canonical() || a.Canonical() != `{"type":"record","name":"R","fields":[]}` {
		t.Errorf("canonical forms differ: %s vs %s", a.Canonical(), b.Canonical())
	}
	if c := avroParse(t, ` "string" `, nil).Canonical(); c != `"string"` {
		t.Errorf("canonical of a primitive = %s", c)
	}
	if c := avroParse(t, `{"type":"record","name":"R","fields":[],"doc":"x"}`, nil).Canonical(); c == b.Canonical() {
		t.Error("a different schema has the same canonical form")
	}
}

// TestAvroParseIsolated: a name defined in one parse's references is not
// visible to another parse (no global cache).
func TestAvroParseIsolated(t *testing.T) {
	avroParse(t, `"iso.X"`, map[string]string{"iso.X": `{"type":"record","name":"X","namespace":"iso","fields":[]}`})
	if _, err := Parse(Schema{Type: Avro, Text: `"iso.X"`}); err == nil {
		t.Fatal("a type from another parse's references leaked into this one")
	}
	if _, err := Parse(Schema{Type: Avro, Text: avroTestdata(t, "linked_list.avsc")}); err != nil {
		t.Fatal(err)
	}
	// The same type defined again in another parse is no duplicate.
	avroParse(t, avroTestdata(t, "linked_list.avsc"), nil)
}

func TestAvroParseConcurrent(t *testing.T) {
	address := avroTestdata(t, "address.avsc")
	shipment := avroTestdata(t, "shipment.avsc")
	done := make(chan error, 8)
	for i := range 8 {
		go func() {
			var err error
			for range 20 {
				ns := fmt.Sprintf("acme.common%d", i)
				refs := map[string]string{ns + ".Address": strings.Replace(address, "acme.common", ns, 1)}
				var p *Parsed
				p, err = Parse(Schema{Type: Avro, Text: strings.Replace(shipment, "acme.common", ns, 1), References: refs})
				if err != nil {
					break
				}
				if vs := strictCheck(Full, p, []Version{{Version: 1, Schema: p}}).Violations; len(vs) > 0 {
					err = fmt.Errorf("self-incompatible: %v", vs)
					break
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func avroEncode(tb testing.TB, p *Parsed, v any) []byte {
	tb.Helper()
	b, err := avro.Marshal(p.impl.(*avroParsed).schema, v)
	if err != nil {
		tb.Fatalf("avro.Marshal: %v", err)
	}
	return b
}

func TestAvroValidate(t *testing.T) {
	order := avroParse(t, avroTestdata(t, "order.avsc"), nil)
	good := avroEncode(t, order, map[string]any{
		"id": int64(42), "customer": "ada", "status": "PAID",
		"lines": []any{
			map[string]any{"sku": "A-1", "quantity": 2, "price": big.NewRat(1999, 100)},
			map[string]any{"sku": "B-2", "quantity": 1, "price": big.NewRat(5, 1)},
		},
		"attributes": map[string]any{"gift": "yes"},
		"note":       "leave at the door",
		"checksum":   [16]byte{1, 2, 3},
		"placed":     time.UnixMilli(1_700_000_000_000).UTC(),
		"express":    true, "weight": 1.25,
	})
	list := avroParse(t, avroTestdata(t, "linked_list.avsc"), nil)
	goodList := avroEncode(t, list, map[string]any{"value": 1, "next": map[string]any{
		"acme.list.Node": map[string]any{"value": 2, "next": nil},
	}})
	small := avroParse(t, avroR(`{"name":"a","type":"int"}`,
		`{"name":"color","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}}`,
		`{"name":"opt","type":["null","string"]}`,
		`{"name":"tags","type":{"type":"array","items":"string"}}`,
		`{"name":"m","type":{"type":"map","values":"boolean"}}`), nil)
	goodSmall := avroEncode(t, small, map[string]any{"a": 1, "color": "GREEN", "opt": "x", "tags": []any{"p", "q"}, "m": map[string]any{"k": true}})

	cases := []struct {
		name    string
		p       *Parsed
		payload []byte
		path    string // "" with ok
		ok      bool
	}{
		{"order", order, good, "", true},
		{"linked list", list, goodList, "", true},
		{"small", small, goodSmall, "", true},
		{"primitive", avroParse(t, `"long"`, nil), []byte{0x80, 0x01}, "", true},
		{"empty payload for null", avroParse(t, `"null"`, nil), nil, "", true},
		{"truncated", order, good[:len(good)-1], "/weight", false},
		{"empty", order, nil, "/id", false},
		{"trailing bytes", order, append(append([]byte{}, good...), 0), "", false},
		// a=1, color=5: no such symbol.
		{"enum index", small, []byte{0x02, 0x0a}, "/color", false},
		// a=1, color=0, union branch 3.
		{"union index", small, []byte{0x02, 0x00, 0x06}, "/opt", false},
		// a=1, color=0, opt=string of 1 byte 0xff.
		{"invalid UTF-8", small, []byte{0x02, 0x00, 0x02, 0x02, 0xff}, "/opt", false},
		// a=1, color=0, opt=null, tags: 1 item, string of length -1.
		{"negative length", small, []byte{0x02, 0x00, 0x00, 0x02, 0x01}, "/tags/0", false},
		// tags: empty; m: 1 entry "k" = 2 (not a boolean).
		{"invalid boolean", small, []byte{0x02, 0x00, 0x00, 0x00, 0x02, 0x02, 'k', 0x02}, "/m/k", false},
		// a=1, color=0, opt=null, tags: a block of 2^62 items, the first unreadable.
		{"huge array count", small, []byte{0x02, 0x00, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, "/tags/0", false},
		{"array of nulls too long", avroParse(t, `{"type":"array","items":"null"}`, nil), []byte{0xfe, 0xff, 0xff, 0xff, 0x0f, 0x00}, "/65583", false}, // the budget: 8*6 bytes + 2^16 values, one the array
		{"int overflow", avroParse(t, `"int"`, nil), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "", false},
		{"fixed too short", avroParse(t, `{"type":"fixed","name":"F","size":4}`, nil), []byte{1, 2}, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate(tc.payload)
			if tc.ok {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate: err = %v, want a *ValidationError", err)
			}
			if !errors.Is(err, ErrInvalidPayload) || ve.Rule != "avro" || ve.Reason == "" {
				t.Errorf("bad error %#v", ve)
			}
			if ve.Path != tc.path {
				t.Errorf("path = %q, want %q (%v)", ve.Path, tc.path, err)
			}
		})
	}
}

// FuzzParseAvro: no text panics the parser; a schema that parses is
// compatible with itself, its canonical form is stable, and validating any
// payload against it does not panic.
func FuzzParseAvro(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "avro", "*.avsc"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed schemas: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), []byte{0x02, 0x04, 0x00})
	}
	for _, s := range []string{
		`"string"`, `["null","int"]`, `{"type":"array","items":"null"}`, `{"type":"map","values":["null","long"]}`,
		`{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}`,
		`{"type":"fixed","name":"F","size":3,"logicalType":"decimal","precision":4,"scale":1}`,
		`{"type":"bytes","logicalType":"decimal","precision":4,"scale":1}`,
		`{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"fixed","name":"F","size":2},"default":"ab"}]}`,
		`{"type":"record","name":"R","fields":[{"name":"r","type":"R"}]}`,
		`{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":1.5}]}`,
		`["long",{"type":"long","logicalType":"timestamp-millis"}]`,
		`{`, `[`, `null`, `5`, `{"type":["int","string"]}`,
	} {
		f.Add(s, []byte{0x02, 0x04})
	}
	f.Fuzz(func(t *testing.T, text string, payload []byte) {
		p, err := Parse(Schema{Type: Avro, Text: text})
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.Contains(pe.Reason, ": ") {
				t.Fatalf("Parse: %T %v", err, err)
			}
			return
		}
		if vs := p.impl.compat(p.impl); len(vs) > 0 {
			t.Fatalf("schema incompatible with itself: %v", vs)
		}
		c := p.Canonical()
		q, err := Parse(Schema{Type: Avro, Text: c})
		if err != nil {
			t.Fatalf("canonical form %s does not parse: %v", c, err)
		}
		if q.Canonical() != c {
			t.Fatalf("canonical form unstable: %s then %s", c, q.Canonical())
		}
		if err := p.Validate(payload); err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate: %T %v", err, err)
			}
		}
	})
}
