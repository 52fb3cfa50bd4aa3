package schema

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

func pb3(body string) string { return "syntax = \"proto3\";\npackage acme;\n" + body }
func pb2(body string) string { return "syntax = \"proto2\";\npackage acme;\n" + body }

func pbParse(t testing.TB, text string, refs map[string]string) *Parsed {
	t.Helper()
	p, err := Parse(Schema{Type: Protobuf, Text: text, References: refs})
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, text)
	}
	return p
}

func pbTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "protobuf", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pbVersion is one registered version: its text and references.
type pbVersion struct {
	text string
	refs map[string]string
}

type pbCompatCase struct {
	name     string
	level    Level
	versions []pbVersion // oldest first; the last is the candidate
	want     []string    // "RULE path direction vN"
}

func pbV(texts ...string) []pbVersion {
	vs := make([]pbVersion, len(texts))
	for i, t := range texts {
		vs[i] = pbVersion{text: t}
	}
	return vs
}

func pbCompatCases(t testing.TB) []pbCompatCase {
	order := pbTestdata(t, "order.proto")
	money1 := map[string]string{"acme/common/money.proto": pbTestdata(t, "money_v1.proto")}
	money2 := map[string]string{"acme/common/money.proto": pbTestdata(t, "money_v2.proto")}
	scalar := func(typ string) string { return pb3("message Order {\n  string id = 1;\n  " + typ + " qty = 2;\n}\n") }
	return []pbCompatCase{
		{
			name:     "field added",
			level:    Full,
			versions: pbV(pb3("message Order { string id = 1; }"), pb3("message Order { string id = 1; int64 qty = 2; }")),
		},
		{
			name:     "field removed",
			level:    Full,
			versions: pbV(pb3("message Order { string id = 1; int64 qty = 2; }"), pb3("message Order { string id = 1; }")),
		},
		{
			name:     "field removed and reserved",
			level:    FullTransitive,
			versions: pbV(pb3("message Order { string id = 1; int64 qty = 2; }"), pb3("message Order { string id = 1; reserved 2; reserved \"qty\"; }")),
		},
		{
			name:     "int32 to int64 is wire-compatible",
			level:    Full,
			versions: pbV(scalar("int32"), scalar("int64")),
		},
		{
			name:  "wire-compatible scalar groups",
			level: Full,
			versions: pbV(
				pb3("message M { fixed32 a = 1; sint32 b = 2; sfixed64 c = 3; bool d = 4; uint32 e = 5; }"),
				pb3("message M { sfixed32 a = 1; sint64 b = 2; fixed64 c = 3; uint64 d = 4; int64 e = 5; }"),
			),
		},
		{
			name:     "int32 to string breaks a new reader",
			level:    Backward,
			versions: pbV(scalar("int32"), scalar("string")),
			want:     []string{"FIELD_SCALAR_KIND_CHANGED /acme.Order/qty reader v1"},
		},
		{
			name:     "int32 to string breaks an old reader",
			level:    Forward,
			versions: pbV(scalar("int32"), scalar("string")),
			want:     []string{"FIELD_SCALAR_KIND_CHANGED /acme.Order/qty writer v1"},
		},
		{
			name:     "int32 to string breaks both ways",
			level:    Full,
			versions: pbV(scalar("int32"), scalar("string")),
			want: []string{
				"FIELD_SCALAR_KIND_CHANGED /acme.Order/qty reader v1",
				"FIELD_SCALAR_KIND_CHANGED /acme.Order/qty writer v1",
			},
		},
		{
			name:     "sint32 to int32 changes the encoding",
			level:    Backward,
			versions: pbV(scalar("sint32"), scalar("int32")),
			want:     []string{"FIELD_SCALAR_KIND_CHANGED /acme.Order/qty reader v1"},
		},
		{
			name:     "float to double",
			level:    Backward,
			versions: pbV(scalar("float"), scalar("double")),
			want:     []string{"FIELD_SCALAR_KIND_CHANGED /acme.Order/qty reader v1"},
		},
		{
			name:     "string to bytes is safe for the new reader",
			level:    Backward,
			versions: pbV(scalar("string"), scalar("bytes")),
		},
		{
			name:     "bytes to string: a proto3 reader rejects invalid UTF-8",
			level:    Full,
			versions: pbV(scalar("string"), scalar("bytes")),
			want:     []string{"FIELD_SCALAR_KIND_CHANGED /acme.Order/qty writer v1"},
		},
		{
			name:     "bytes to string: a proto2 reader accepts any bytes",
			level:    Full,
			versions: pbV(pb2("message Order { optional bytes b = 1; }"), pb2("message Order { optional string b = 1; }")),
		},
		{
			name:     "number reused with another type and name",
			level:    Backward,
			versions: pbV(pb3("message Order { string id = 1; int32 qty = 2; }"), pb3("message Order { string id = 1; string note = 2; }")),
			want:     []string{"FIELD_NUMBER_REUSED /acme.Order/qty reader v1"},
		},
		{
			name:     "number reused with another type and name, old reader",
			level:    Forward,
			versions: pbV(pb3("message Order { string id = 1; int32 qty = 2; }"), pb3("message Order { string id = 1; string note = 2; }")),
			want:     []string{"FIELD_NUMBER_REUSED /acme.Order/note writer v1"},
		},
		{
			name:     "number reused with another name",
			level:    Full,
			versions: pbV(pb3("message Order { string note = 2; }"), pb3("message Order { string comment = 2; }")),
			want: []string{
				"FIELD_NAME_CHANGED /acme.Order/note reader v1",
				"FIELD_NAME_CHANGED /acme.Order/comment writer v1",
			},
		},
		{
			name:     "field moved to another number",
			level:    Backward,
			versions: pbV(pb3("message Order { string id = 1; }"), pb3("message Order { string id = 3; }")),
			want:     []string{"FIELD_NUMBER_CHANGED /acme.Order/id reader v1"},
		},
		{
			name:     "message removed",
			level:    Backward,
			versions: pbV(pb3("message Order { string id = 1; }\nmessage Item { string sku = 1; }"), pb3("message Order { string id = 1; }")),
			want:     []string{"MESSAGE_REMOVED /acme.Item reader v1"},
		},
		{
			name:     "message removed is forward-compatible",
			level:    Forward,
			versions: pbV(pb3("message Order { string id = 1; }\nmessage Item { string sku = 1; }"), pb3("message Order { string id = 1; }")),
		},
		{
			// New producers may write the new type (by message index); old
			// consumers cannot decode it. Confluent judges it the same way.
			name:     "message added breaks old readers",
			level:    Full,
			versions: pbV(pb3("message Order { string id = 1; }"), pb3("message Order { string id = 1; }\nmessage Item { string sku = 1; }")),
			want:     []string{"MESSAGE_REMOVED /acme.Item writer v1"},
		},
		{
			name:  "message added in a new imported file",
			level: FullTransitive,
			versions: []pbVersion{
				{text: pb3("message Order { string id = 1; }")},
				{
					text: pb3("import \"acme/item.proto\";\nmessage Order { string id = 1; Item item = 2; }"),
					refs: map[string]string{"acme/item.proto": pb3("message Item { string sku = 1; }")},
				},
			},
		},
		{
			name:     "nested message removed",
			level:    Backward,
			versions: pbV(pb3("message Order { message Line { int32 qty = 1; } }"), pb3("message Order { }")),
			want:     []string{"MESSAGE_REMOVED /acme.Order.Line reader v1"},
		},
		{
			name:  "nested message field changed",
			level: Backward,
			versions: pbV(
				pb3("message Order {\n  message Line { int32 qty = 1; }\n  repeated Line lines = 1;\n}"),
				pb3("message Order {\n  message Line { string qty = 1; }\n  repeated Line lines = 1;\n}"),
			),
			want: []string{"FIELD_SCALAR_KIND_CHANGED /acme.Order.Line/qty reader v1"},
		},
		{
			name:     "recursive message",
			level:    Backward,
			versions: pbV(pb3("message Node { repeated Node kids = 1; int32 v = 2; }"), pb3("message Node { repeated Node kids = 1; string v = 2; }")),
			want:     []string{"FIELD_SCALAR_KIND_CHANGED /acme.Node/v reader v1"},
		},
		{
			name:     "closed enum value removed",
			level:    Full,
			versions: pbV(pb2("enum Kind { A = 1; B = 2; }\nmessage M { optional Kind k = 1; }"), pb2("enum Kind { A = 1; }\nmessage M { optional Kind k = 1; }")),
			want:     []string{"ENUM_CONST_REMOVED /acme.Kind/B reader v1"},
		},
		{
			name:     "closed nested enum value removed",
			level:    Backward,
			versions: pbV(pb2("message M { enum Kind { A = 1; B = 2; } optional Kind k = 1; }"), pb2("message M { enum Kind { A = 1; } optional Kind k = 1; }")),
			want:     []string{"ENUM_CONST_REMOVED /acme.M.Kind/B reader v1"},
		},
		{
			name:     "open enum value removed",
			level:    Full,
			versions: pbV(pb3("enum Kind { K0 = 0; A = 1; B = 2; }\nmessage M { Kind k = 1; }"), pb3("enum Kind { K0 = 0; A = 1; }\nmessage M { Kind k = 1; }")),
		},
		{
			name:     "enum to int32 and int64",
			level:    Full,
			versions: pbV(pb3("enum Kind { K0 = 0; }\nmessage M { Kind a = 1; Kind b = 2; }"), pb3("enum Kind { K0 = 0; }\nmessage M { int32 a = 1; int64 b = 2; }")),
		},
		{
			name:     "enum to string",
			level:    Backward,
			versions: pbV(pb3("enum Kind { K0 = 0; }\nmessage M { Kind k = 1; }"), pb3("enum Kind { K0 = 0; }\nmessage M { string k = 1; }")),
			want:     []string{"FIELD_KIND_CHANGED /acme.M/k reader v1"},
		},
		{
			name:     "scalar to message",
			level:    Backward,
			versions: pbV(pb3("message Money { int64 units = 1; }\nmessage M { int64 total = 1; }"), pb3("message Money { int64 units = 1; }\nmessage M { Money total = 1; }")),
			want:     []string{"FIELD_KIND_CHANGED /acme.M/total reader v1"},
		},
		{
			name:  "map to repeated message",
			level: Backward,
			versions: pbV(
				pb3("message E { string key = 1; string value = 2; }\nmessage M { map<string, string> labels = 1; }"),
				pb3("message E { string key = 1; string value = 2; }\nmessage M { repeated E labels = 1; }"),
			),
			want: []string{"FIELD_KIND_CHANGED /acme.M/labels reader v1"},
		},
		{
			name:     "message to group",
			level:    Backward,
			versions: pbV(pb2("message G { optional int32 a = 1; }\nmessage M { optional G g = 1; }"), pb2("message G { optional int32 a = 1; }\nmessage M { optional group G = 1 { optional int32 a = 1; } }")),
			want:     []string{"FIELD_KIND_CHANGED /acme.M/g reader v1"},
		},
		{
			name:     "named type changed",
			level:    Backward,
			versions: pbV(pb3("message Money { int64 units = 1; }\nmessage Price { int64 units = 1; }\nmessage M { Money total = 1; }"), pb3("message Money { int64 units = 1; }\nmessage Price { int64 units = 1; }\nmessage M { Price total = 1; }")),
			want:     []string{"FIELD_NAMED_TYPE_CHANGED /acme.M/total reader v1"},
		},
		{
			name:     "map key and value changed",
			level:    Backward,
			versions: pbV(pb3("message M { map<int32, int32> m = 1; }"), pb3("message M { map<string, string> m = 1; }")),
			want: []string{
				"FIELD_SCALAR_KIND_CHANGED /acme.M/m reader v1",
				"FIELD_SCALAR_KIND_CHANGED /acme.M/m reader v1",
			},
		},
		{
			name:     "repeated to singular",
			level:    Backward,
			versions: pbV(pb3("message M { repeated int32 a = 1; repeated string b = 2; }"), pb3("message M { int32 a = 1; string b = 2; }")),
			want: []string{
				"FIELD_CARDINALITY_CHANGED /acme.M/a reader v1",
				"FIELD_CARDINALITY_CHANGED /acme.M/b reader v1",
			},
		},
		{
			name:     "singular to repeated",
			level:    Full,
			versions: pbV(pb3("message M { int32 a = 1; }"), pb3("message M { repeated int32 a = 1; }")),
			want:     []string{"FIELD_CARDINALITY_CHANGED /acme.M/a writer v1"},
		},
		{
			name:     "proto3 optional",
			level:    Full,
			versions: pbV(pb3("message M { int32 a = 1; }"), pb3("message M { optional int32 a = 1; }")),
		},
		{
			name:     "oneof field removed",
			level:    Backward,
			versions: pbV(pb3("message M { oneof pay { string card = 1; string voucher = 2; } }"), pb3("message M { oneof pay { string card = 1; } }")),
			want:     []string{"ONEOF_FIELD_REMOVED /acme.M/voucher reader v1"},
		},
		{
			name:     "oneof field added",
			level:    Forward,
			versions: pbV(pb3("message M { oneof pay { string card = 1; string voucher = 2; } }"), pb3("message M { oneof pay { string card = 1; } }")),
		},
		{
			name:     "oneof removed as a whole",
			level:    Backward,
			versions: pbV(pb3("message M { string id = 3; oneof pay { string card = 1; string voucher = 2; } }"), pb3("message M { string id = 3; }")),
		},
		{
			name:     "one field moved into a new oneof",
			level:    Full,
			versions: pbV(pb3("message M { string card = 1; }"), pb3("message M { oneof pay { string card = 1; } }")),
		},
		{
			name:     "two fields moved into a new oneof",
			level:    Backward,
			versions: pbV(pb3("message M { string card = 1; string voucher = 2; }"), pb3("message M { oneof pay { string card = 1; string voucher = 2; } }")),
			want:     []string{"MULTIPLE_FIELDS_MOVED_TO_ONEOF /acme.M/pay reader v1"},
		},
		{
			name:     "field moved into an existing oneof",
			level:    Backward,
			versions: pbV(pb3("message M { string note = 3; oneof pay { string card = 1; string voucher = 2; } }"), pb3("message M { oneof pay { string card = 1; string voucher = 2; string note = 3; } }")),
			want:     []string{"FIELD_MOVED_TO_EXISTING_ONEOF /acme.M/note reader v1"},
		},
		{
			name:     "two oneofs merged",
			level:    Backward,
			versions: pbV(pb3("message M { oneof a { string x = 1; } oneof b { string y = 2; } }"), pb3("message M { oneof a { string x = 1; string y = 2; } }")),
			want:     []string{"MULTIPLE_FIELDS_MOVED_TO_ONEOF /acme.M/a reader v1"},
		},
		{
			name:     "required field added",
			level:    Full,
			versions: pbV(pb2("message M { optional string id = 1; }"), pb2("message M { optional string id = 1; required int64 cents = 2; }")),
			want: []string{
				"REQUIRED_FIELD_ADDED /acme.M/cents reader v1",
				"REQUIRED_FIELD_REMOVED /acme.M/cents writer v1",
			},
		},
		{
			name:     "required field removed",
			level:    Backward,
			versions: pbV(pb2("message M { optional string id = 1; required int64 cents = 2; }"), pb2("message M { optional string id = 1; }")),
			want:     []string{"REQUIRED_FIELD_REMOVED /acme.M/cents reader v1"},
		},
		{
			name:     "optional field made required",
			level:    Full,
			versions: pbV(pb2("message M { optional string id = 1; }"), pb2("message M { required string id = 1; }")),
			want: []string{
				"REQUIRED_FIELD_ADDED /acme.M/id reader v1",
				"REQUIRED_FIELD_REMOVED /acme.M/id writer v1",
			},
		},
		{
			name:  "type from an imported file changed",
			level: Backward,
			versions: []pbVersion{
				{text: order, refs: money1},
				{text: order, refs: money2},
			},
			want: []string{"FIELD_SCALAR_KIND_CHANGED /acme.common.Money/units reader v1"},
		},
		{
			name:  "same schema with imports",
			level: FullTransitive,
			versions: []pbVersion{
				{text: order, refs: money1},
				{text: order + "\n// a comment\n", refs: money1},
			},
		},
		{
			name:     "package changed",
			level:    Full,
			versions: pbV(pb3("message M { int32 a = 1; }"), "syntax = \"proto3\";\npackage acme.v2;\nmessage M { int32 a = 1; }"),
			want: []string{
				"PACKAGE_CHANGED  reader v1",
				"PACKAGE_CHANGED  writer v1",
			},
		},
		{
			name:     "package changed and a field broken",
			level:    Backward,
			versions: pbV(pb3("message M { int32 a = 1; }"), "syntax = \"proto3\";\npackage acme.v2;\nmessage M { string a = 1; }"),
			want: []string{
				"PACKAGE_CHANGED  reader v1",
				"FIELD_SCALAR_KIND_CHANGED /acme.M/a reader v1",
			},
		},
		{
			name:     "syntax changed",
			level:    Backward,
			versions: pbV(pb2("message M { optional int32 a = 1; }"), pb3("message M { int32 a = 1; }")),
			want:     []string{"SYNTAX_CHANGED  reader v1"},
		},
		{
			name:  "several violations at once",
			level: Backward,
			versions: pbV(
				pb3(`message Order {
  string id = 1;
  int32 qty = 2;
  repeated string tags = 3;
  Money total = 4;
}
message Money { int64 units = 1; }
message Gone {}`),
				pb3(`message Order {
  string ref = 1;
  string qty = 2;
  string tags = 3;
  Money total = 4;
}
message Money { string units = 1; }`),
			),
			want: []string{
				"MESSAGE_REMOVED /acme.Gone reader v1",
				"FIELD_NAME_CHANGED /acme.Order/id reader v1",
				"FIELD_SCALAR_KIND_CHANGED /acme.Order/qty reader v1",
				"FIELD_CARDINALITY_CHANGED /acme.Order/tags reader v1",
				"FIELD_SCALAR_KIND_CHANGED /acme.Money/units reader v1",
			},
		},
		{
			name:  "number reused after a deletion: only the latest is checked",
			level: Backward,
			versions: pbV(
				pb3("message Order { string id = 1; int32 qty = 2; }"),
				pb3("message Order { string id = 1; }"),
				pb3("message Order { string id = 1; string note = 2; }"),
			),
		},
		{
			name:  "number reused after a deletion: transitive",
			level: BackwardTransitive,
			versions: pbV(
				pb3("message Order { string id = 1; int32 qty = 2; }"),
				pb3("message Order { string id = 1; }"),
				pb3("message Order { string id = 1; string note = 2; }"),
			),
			want: []string{"FIELD_NUMBER_REUSED /acme.Order/qty reader v1"},
		},
		{
			name:  "full transitive",
			level: FullTransitive,
			versions: pbV(
				pb3("message Order { string id = 1; int32 qty = 2; }"),
				pb3("message Order { string id = 1; }"),
				pb3("message Order { string id = 1; string note = 2; }"),
			),
			want: []string{
				"FIELD_NUMBER_REUSED /acme.Order/qty reader v1",
				"FIELD_NUMBER_REUSED /acme.Order/note writer v1",
			},
		},
		{
			name:     "level NONE",
			level:    None,
			versions: pbV(scalar("int32"), scalar("string")),
		},
	}
}

func pbCheck(t testing.TB, c pbCompatCase) Result {
	t.Helper()
	var earlier []Version
	for i, v := range c.versions[:len(c.versions)-1] {
		earlier = append(earlier, Version{Version: i + 1, Schema: pbParse(t, v.text, v.refs)})
	}
	last := c.versions[len(c.versions)-1]
	return strictCheck(c.level, pbParse(t, last.text, last.refs), earlier)
}

func TestProtobufCompat(t *testing.T) {
	for _, c := range pbCompatCases(t) {
		t.Run(c.name, func(t *testing.T) {
			res := pbCheck(t, c)
			var got []string
			for _, v := range res.Violations {
				got = append(got, fmt.Sprintf("%s %s %s v%d", v.Rule, v.Path, v.Direction, v.Version))
				if v.Message == "" || v.Hint == "" {
					t.Errorf("violation without message or hint: %v", v)
				}
			}
			want := slices.Clone(c.want)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("violations:\n got %q\nwant %q\nall: %v", got, want, res.Violations)
			}
			if res.Compatible() != (len(want) == 0) {
				t.Errorf("Compatible() = %v with %d violations", res.Compatible(), len(want))
			}
		})
	}
}

// evolve is the check Check does not run yet: reuse of a reserved number or
// name needs to know which schema is newer.
var pbReservedCases = []struct {
	name         string
	older, newer string
	want         []string
}{
	{
		name:  "reserved number and name reused",
		older: pb3("message Order { string id = 1; reserved 2, 5 to 7; reserved \"qty\"; }"),
		newer: pb3("message Order { string id = 1; string note = 6; int32 qty = 8; }"),
		want:  []string{"RESERVED_FIELD_REUSED /acme.Order/note", "RESERVED_FIELD_REUSED /acme.Order/qty"},
	},
	{
		name:  "field deleted and reserved",
		older: pb3("message Order { string id = 1; int32 qty = 2; }"),
		newer: pb3("message Order { string id = 1; reserved 2; reserved \"qty\"; }"),
	},
	{
		name:  "reserved enum value reused",
		older: pb3("enum Kind { K0 = 0; reserved 3; reserved \"OLD\"; }"),
		newer: pb3("enum Kind { K0 = 0; NEW = 3; OLD = 4; }"),
		want:  []string{"RESERVED_FIELD_REUSED /acme.Kind/NEW", "RESERVED_FIELD_REUSED /acme.Kind/OLD"},
	},
	{
		name:  "nested message",
		older: pb3("message A { message B { reserved 1; } }"),
		newer: pb3("message A { message B { int32 x = 1; } }"),
		want:  []string{"RESERVED_FIELD_REUSED /acme.A.B/x"},
	},
}

func TestProtobufReservedReuse(t *testing.T) {
	for _, c := range pbReservedCases {
		t.Run(c.name, func(t *testing.T) {
			older, newer := pbParse(t, c.older, nil), pbParse(t, c.newer, nil)
			var got []string
			for _, v := range newer.impl.(*protoSchema).evolve(older.impl) {
				got = append(got, v.Rule+" "+v.Path)
			}
			slices.Sort(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
			// Check knows which version is newer, so it reports the reuse
			// (and only the reuse: a deletion that reserves is fine).
			res := strictCheck(Full, newer, []Version{{Version: 1, Schema: older}})
			var reported []string
			for _, v := range res.Violations {
				if v.Rule == pbReservedFieldReused {
					reported = append(reported, v.Rule+" "+v.Path)
				}
			}
			slices.Sort(reported)
			if !slices.Equal(reported, c.want) {
				t.Errorf("Check reported %q, want %q", reported, c.want)
			}
		})
	}
}

func TestProtobufEveryRuleTested(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range pbCompatCases(t) {
		for _, v := range pbCheck(t, c).Violations {
			seen[v.Rule] = true
		}
	}
	for _, c := range pbReservedCases {
		older, newer := pbParse(t, c.older, nil), pbParse(t, c.newer, nil)
		for _, v := range newer.impl.(*protoSchema).evolve(older.impl) {
			seen[v.Rule] = true
		}
	}
	rules := []string{
		pbSyntaxChanged, pbPackageChanged, pbMessageRemoved, pbFieldKindChanged,
		pbFieldScalarKindChanged, pbFieldNamedTypeChanged, pbFieldCardinality,
		pbFieldNameChanged, pbFieldNumberReused, pbFieldNumberChanged,
		pbRequiredFieldAdded, pbRequiredFieldRemoved, pbOneofFieldRemoved,
		pbMultipleFieldsToOneof, pbFieldToExistingOneof, pbEnumConstRemoved,
		pbReservedFieldReused,
	}
	doc := pbTestdataDoc(t)
	for _, r := range rules {
		if !seen[r] {
			t.Errorf("rule %s is never triggered by a test", r)
		}
		if !strings.Contains(doc, "`"+r+"`") {
			t.Errorf("rule %s is not documented in rules-protobuf.md", r)
		}
		delete(seen, r)
	}
	for r := range seen {
		t.Errorf("rule %s is not in the rule list", r)
	}
}

func pbTestdataDoc(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile("rules-protobuf.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestProtobufParseError(t *testing.T) {
	cases := []struct {
		name     string
		text     string
		refs     map[string]string
		location string
		reason   string
	}{
		{
			name:     "syntax error",
			text:     "syntax = \"proto3\";\nmessage A {\n  int32 x = 1\n}",
			location: "4:1",
			reason:   "syntax error: expecting ';'",
		},
		{
			name:     "unknown type",
			text:     "syntax = \"proto3\";\nmessage A {\n  Missing x = 1;\n}",
			location: "3:3",
			reason:   "Missing",
		},
		{
			name:     "missing import",
			text:     "syntax = \"proto3\";\nimport \"x.proto\";\nmessage A {}",
			location: "2:8",
			reason:   "x.proto",
		},
		{
			name:     "error in a reference",
			text:     "syntax = \"proto3\";\nimport \"c.proto\";\nmessage A { X x = 1; }",
			refs:     map[string]string{"c.proto": "syntax = \"proto3\";\nmessage X {\n  int32 = 1; }"},
			location: "c.proto:3:9",
			reason:   "syntax error",
		},
		{
			// The file exists on disk, relative to the package directory:
			// the compiler must not read it.
			name:     "no file system",
			text:     "syntax = \"proto3\";\nimport \"testdata/protobuf/money_v1.proto\";\nmessage A { acme.common.Money m = 1; }",
			location: "2:8",
			reason:   "does not exist",
		},
		{
			name:     "reserved number used",
			text:     "syntax = \"proto3\";\nmessage A {\n  reserved 2;\n  int32 x = 2;\n}",
			location: "4:13",
			reason:   "reserved",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(Schema{Type: Protobuf, Text: c.text, References: c.refs})
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *ParseError", err)
			}
			if !errors.Is(err, ErrInvalidSchema) {
				t.Errorf("%v does not wrap ErrInvalidSchema", err)
			}
			if pe.Type != Protobuf || pe.Location != c.location || !strings.Contains(pe.Reason, c.reason) {
				t.Errorf("got %+v, want location %q and a reason containing %q", pe, c.location, c.reason)
			}
			if strings.Contains(pe.Error(), pbMainFile) {
				t.Errorf("error names the internal file name: %v", pe)
			}
		})
	}
}

func TestProtobufParseImports(t *testing.T) {
	p := pbParse(t, pbTestdata(t, "order.proto"), map[string]string{"acme/common/money.proto": pbTestdata(t, "money_v1.proto")})
	md, err := p.MessageDescriptor(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := md.Fields().ByName("total").Message().FullName(); got != "acme.common.Money" {
		t.Errorf("total is a %s", got)
	}
	if got := md.Fields().ByName("placed_at").Message().FullName(); got != "google.protobuf.Timestamp" {
		t.Errorf("placed_at is a %s", got)
	}
}

func TestProtobufCanonical(t *testing.T) {
	a := pbParse(t, " \r\n\nsyntax = \"proto3\";   \r\nmessage A {}\t\n\n\n", nil)
	b := pbParse(t, "syntax = \"proto3\";\nmessage A {}", nil)
	if a.Canonical() != b.Canonical() || a.Canonical() != "syntax = \"proto3\";\nmessage A {}" {
		t.Errorf("canonical texts differ: %q and %q", a.Canonical(), b.Canonical())
	}
	c := pbParse(t, "syntax = \"proto3\";\nmessage A { int32 x = 1; }", nil)
	if c.Canonical() == b.Canonical() {
		t.Error("two schemas have one canonical text")
	}
}

func TestProtobufMessageIndexes(t *testing.T) {
	p := pbParse(t, pb3(`
message A {}
message B {
  map<string, int32> m = 1;
  message Inner {
    message Deep {}
  }
  message Other {}
}
`), nil)
	want := map[string][]int{
		"acme.A":             {0},
		"acme.B":             {1},
		"acme.B.MEntry":      {1, 0}, // map entries count, as in the descriptor
		"acme.B.Inner":       {1, 1},
		"acme.B.Inner.Deep":  {1, 1, 0},
		".acme.B.Other":      {1, 2},
		"acme.B.Inner.Deep.": nil,
		"acme.C":             nil,
		"acme.Inner":         nil,
	}
	for name, idx := range want {
		got, err := p.MessageIndexes(name)
		if idx == nil {
			if err == nil {
				t.Errorf("MessageIndexes(%q) = %v, want an error", name, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, idx) {
			t.Errorf("MessageIndexes(%q) = %v, %v; want %v", name, got, err, idx)
			continue
		}
		md, err := p.MessageDescriptor(got)
		if err != nil || string(md.FullName()) != strings.TrimPrefix(name, ".") {
			t.Errorf("MessageDescriptor(%v) = %v, %v; want %s", got, md, err, name)
		}
	}
	md, err := p.MessageDescriptor(nil)
	if err != nil || md.FullName() != "acme.A" {
		t.Errorf("MessageDescriptor(nil) = %v, %v; want acme.A", md, err)
	}
	for _, idx := range [][]int{{2}, {-1}, {1, 3}, {0, 0}, {1, 1, 0, 0}} {
		if md, err := p.MessageDescriptor(idx); err == nil {
			t.Errorf("MessageDescriptor(%v) = %v, want an error", idx, md.FullName())
		}
	}

	other := &Parsed{schema: Schema{Type: Avro}}
	if _, err := other.MessageDescriptor([]int{0}); err == nil || !strings.Contains(err.Error(), "not PROTOBUF") {
		t.Errorf("MessageDescriptor on AVRO: %v", err)
	}
	if _, err := other.MessageIndexes("acme.A"); err == nil || !strings.Contains(err.Error(), "not PROTOBUF") {
		t.Errorf("MessageIndexes on AVRO: %v", err)
	}
	empty := pbParse(t, pb3("enum E { E0 = 0; }"), nil)
	if _, err := empty.MessageDescriptor(nil); err == nil {
		t.Error("MessageDescriptor on a schema without messages: no error")
	}
}

// pbMessage builds a dynamic message of md, setting fields by name.
func pbMessage(t testing.TB, md protoreflect.MessageDescriptor, set func(m *dynamicpb.Message)) []byte {
	t.Helper()
	m := dynamicpb.NewMessage(md)
	set(m)
	b, err := proto.MarshalOptions{AllowPartial: true, Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProtobufValidate(t *testing.T) {
	order := pbParse(t, pbTestdata(t, "order.proto"), map[string]string{"acme/common/money.proto": pbTestdata(t, "money_v1.proto")})
	legacy := pbParse(t, pbTestdata(t, "legacy.proto"), nil)
	omd, _ := order.MessageDescriptor(nil)
	lmd, _ := legacy.MessageDescriptor(nil)
	of := omd.Fields()
	lineMD := of.ByName("lines").Message()
	entryMD := lmd.Fields().ByName("entries").Message()

	goodOrder := pbMessage(t, omd, func(m *dynamicpb.Message) {
		m.Set(of.ByName("id"), protoreflect.ValueOfString("o-1"))
		line := dynamicpb.NewMessage(lineMD)
		line.Set(lineMD.Fields().ByName("sku"), protoreflect.ValueOfString("sku-1"))
		line.Set(lineMD.Fields().ByName("qty"), protoreflect.ValueOfInt32(2))
		m.Mutable(of.ByName("lines")).List().Append(protoreflect.ValueOfMessage(line))
		m.Mutable(of.ByName("labels")).Map().Set(protoreflect.ValueOfString("k").MapKey(), protoreflect.ValueOfString("v"))
		m.Set(of.ByName("card"), protoreflect.ValueOfString("4242"))
		m.Set(of.ByName("status"), protoreflect.ValueOfEnum(2))
	})
	onlyLines := pbMessage(t, omd, func(m *dynamicpb.Message) {
		line := dynamicpb.NewMessage(lineMD)
		line.Set(lineMD.Fields().ByName("sku"), protoreflect.ValueOfString("sku-1"))
		m.Mutable(of.ByName("lines")).List().Append(protoreflect.ValueOfMessage(line))
	})
	// A line whose sku is not UTF-8, which a proto3 string rejects.
	badLine := protowire.AppendTag(nil, 1, protowire.BytesType)
	badLine = protowire.AppendBytes(badLine, []byte{0xff, 0xfe})
	badUTF8 := protowire.AppendTag(slices.Clone(goodOrder), 3, protowire.BytesType)
	badUTF8 = protowire.AppendBytes(badUTF8, badLine)
	unknown := protowire.AppendTag(slices.Clone(goodOrder), 99, protowire.VarintType)
	unknown = protowire.AppendVarint(unknown, 7)

	goodAccount := pbMessage(t, lmd, func(m *dynamicpb.Message) {
		m.Set(lmd.Fields().ByName("id"), protoreflect.ValueOfString("a-1"))
		e := dynamicpb.NewMessage(entryMD)
		e.Set(entryMD.Fields().ByName("cents"), protoreflect.ValueOfInt64(100))
		m.Mutable(lmd.Fields().ByName("entries")).List().Append(protoreflect.ValueOfMessage(e))
	})
	noID := pbMessage(t, lmd, func(m *dynamicpb.Message) {})
	noCents := pbMessage(t, lmd, func(m *dynamicpb.Message) {
		m.Set(lmd.Fields().ByName("id"), protoreflect.ValueOfString("a-1"))
		good := dynamicpb.NewMessage(entryMD)
		good.Set(entryMD.Fields().ByName("cents"), protoreflect.ValueOfInt64(1))
		l := m.Mutable(lmd.Fields().ByName("entries")).List()
		l.Append(protoreflect.ValueOfMessage(good))
		l.Append(protoreflect.ValueOfMessage(dynamicpb.NewMessage(entryMD)))
	})

	cases := []struct {
		name    string
		schema  *Parsed
		payload []byte
		path    string
		rule    string // "" means valid
	}{
		{name: "good order", schema: order, payload: goodOrder},
		{name: "empty proto3 message", schema: order, payload: nil},
		{name: "unknown field kept", schema: order, payload: unknown},
		{name: "truncated", schema: order, payload: onlyLines[:len(onlyLines)-1], path: "/lines", rule: "protobuf"},
		{name: "bad tag", schema: order, payload: []byte{0x00}, path: "", rule: "protobuf"},
		{name: "invalid UTF-8 in a nested string", schema: order, payload: badUTF8, path: "/lines/sku", rule: "protobuf"},
		{name: "good account", schema: legacy, payload: goodAccount},
		{name: "required field missing", schema: legacy, payload: noID, path: "/id", rule: "required"},
		{name: "nested required field missing", schema: legacy, payload: noCents, path: "/entries/1/cents", rule: "required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.schema.Validate(c.payload)
			if c.rule == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalidPayload) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			if ve.Rule != c.rule || ve.Path != c.path || ve.Reason == "" {
				t.Errorf("got %+v, want rule %s at %q", ve, c.rule, c.path)
			}
		})
	}

	enumOnly := pbParse(t, pb3("enum E { E0 = 0; }"), nil)
	if err := enumOnly.Validate(nil); err == nil {
		t.Error("Validate against a schema without messages: no error")
	}
}

func FuzzParseProtobuf(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "protobuf"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".proto") {
			f.Add(pbTestdata(f, e.Name()))
		}
	}
	for _, s := range []string{
		"",
		"syntax = \"proto3\";",
		pb3("message A { oneof o { int32 x = 1; } map<string, A> m = 2; optional int32 p = 3; }"),
		pb2("message A { required int32 x = 1 [default = 3]; extensions 100 to 200; }\nextend A { optional int32 y = 100; }"),
		"edition = \"2023\";\nmessage A { int32 x = 1; }",
		"syntax = \"proto3\";\nimport \"google/protobuf/any.proto\";\nmessage A { google.protobuf.Any a = 1; }",
		"syntax = \"proto3\";\nmessage A {\n  int32 x = 1\n}",
		"message A { /* unterminated",
		"syntax = \"proto3\"; service S { rpc M(A) returns (A); } message A {}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := Parse(Schema{Type: Protobuf, Text: text})
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is not a *ParseError: %v", err)
			}
			return
		}
		if vs := p.impl.compat(p.impl); len(vs) != 0 {
			t.Fatalf("a schema is incompatible with itself: %v", vs)
		}
		c := p.Canonical()
		again, err := Parse(Schema{Type: Protobuf, Text: c})
		if err != nil {
			t.Fatalf("the canonical text does not parse: %v\n%q", err, c)
		}
		if again.Canonical() != c {
			t.Fatalf("canonical text not stable: %q then %q", c, again.Canonical())
		}
		if vs := p.impl.compat(again.impl); len(vs) != 0 {
			t.Fatalf("a schema is incompatible with its canonical text: %v", vs)
		}
		_ = p.Validate([]byte(text)) // must not panic
	})
}
