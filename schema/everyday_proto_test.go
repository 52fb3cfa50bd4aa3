package schema_test

import (
	"testing"

	"github.com/handoffhq/handoff/schema"
)

func pb(body string) string {
	return "syntax = \"proto3\";\npackage acme;\n" + body + "\n"
}

func TestEverydayJSONOneOf(t *testing.T) {
	s := func(p string) string { return obj(`"v":`+p, "") }
	run(t, []tc{
		{"string -> oneOf[string, email]", J, schema.Backward, []string{s(`{"type":"string"}`)}, s(`{"oneOf":[{"type":"string"},{"type":"string","format":"email"}]}`), nil, nil, false, "emails match both"},
		{"oneOf [string,integer] -> +number", J, schema.Backward, []string{s(`{"oneOf":[{"type":"string"},{"type":"integer"}]}`)}, s(`{"oneOf":[{"type":"string"},{"type":"integer"},{"type":"number"}]}`), nil, nil, false, "ints match both"},
		{"oneOf objects discriminated by const, add branch", J, schema.Backward,
			[]string{s(`{"oneOf":[{"type":"object","properties":{"k":{"const":"a"}},"required":["k"]},{"type":"object","properties":{"k":{"const":"b"}},"required":["k"]}]}`)},
			s(`{"oneOf":[{"type":"object","properties":{"k":{"const":"a"}},"required":["k"]},{"type":"object","properties":{"k":{"const":"b"}},"required":["k"]},{"type":"object","properties":{"k":{"const":"c"}},"required":["k"]}]}`), nil, nil, true, "discriminated union: exclusive branch by const (documented hint)"},
	})
}

func TestEverydayProtobuf(t *testing.T) {
	base := pb(`message Order { string id = 1; int32 qty = 2; }`)
	cases := []tc{
		{"add field FULL", P, schema.Full, []string{base}, pb(`message Order { string id = 1; int32 qty = 2; string note = 3; }`), nil, nil, true, "unknown fields skipped; missing get default"},
		{"remove field FULL", P, schema.Full, []string{base}, pb(`message Order { string id = 1; }`), nil, nil, true, "Confluent FIELD_REMOVED compatible"},
		{"remove+reserve field FULL", P, schema.Full, []string{base}, pb(`message Order { reserved 2; reserved "qty"; string id = 1; }`), nil, nil, true, "recommended practice"},
		{"int32->int64 FULL", P, schema.Full, []string{base}, pb(`message Order { string id = 1; int64 qty = 2; }`), nil, nil, true, "protobuf guide: compatible varint group"},
		{"int32->uint32 FULL", P, schema.Full, []string{base}, pb(`message Order { string id = 1; uint32 qty = 2; }`), nil, nil, true, "same group"},
		{"int32->string BACKWARD", P, schema.Backward, []string{base}, pb(`message Order { string id = 1; string qty = 2; }`), nil, nil, false, "wire type differs"},
		{"int32->sint32 BACKWARD", P, schema.Backward, []string{base}, pb(`message Order { string id = 1; sint32 qty = 2; }`), nil, nil, false, "zigzag vs varint"},
		{"int32->double BACKWARD", P, schema.Backward, []string{base}, pb(`message Order { string id = 1; double qty = 2; }`), nil, nil, false, "wire type"},
		{"string->bytes BACKWARD", P, schema.Backward, []string{base}, pb(`message Order { bytes id = 1; int32 qty = 2; }`), nil, nil, true, "guide: compatible if UTF-8"},
		{"rename field BACKWARD (documented)", P, schema.Backward, []string{base}, pb(`message Order { string order_id = 1; int32 qty = 2; }`), nil, nil, false, "documented FIELD_NAME_CHANGED (Confluent: compatible)"},
		{"move existing field into new oneof BACKWARD", P, schema.Backward, []string{base}, pb(`message Order { string id = 1; oneof q { int32 qty = 2; } }`), nil, nil, true, "guide: safe to move single field into new oneof"},
		{"move 2 fields into new oneof BACKWARD", P, schema.Backward, []string{base}, pb(`message Order { oneof q { string id = 1; int32 qty = 2; } }`), nil, nil, false, "guide: not safe"},
		{"add field to existing oneof FULL", P, schema.Full, []string{pb(`message Order { oneof q { string a = 1; int32 b = 2; } }`)}, pb(`message Order { oneof q { string a = 1; int32 b = 2; bool c = 3; } }`), nil, nil, false, "a case added to a oneof breaks FORWARD: old readers see the oneof unset (rules-protobuf.md)"},
		{"move field out of oneof BACKWARD", P, schema.Backward, []string{pb(`message Order { oneof q { string a = 1; } int32 b = 2; }`)}, pb(`message Order { string a = 1; int32 b = 2; }`), nil, nil, true, "documented"},
		{"add enum value proto3 FULL", P, schema.Full, []string{pb(`enum S { S_UNKNOWN = 0; S_A = 1; } message Order { S s = 1; }`)}, pb(`enum S { S_UNKNOWN = 0; S_A = 1; S_B = 2; } message Order { S s = 1; }`), nil, nil, true, "open enum; Confluent ENUM_CONST_ADDED"},
		{"remove enum value proto3 FULL", P, schema.Full, []string{pb(`enum S { S_UNKNOWN = 0; S_A = 1; S_B = 2; } message Order { S s = 1; }`)}, pb(`enum S { S_UNKNOWN = 0; S_A = 1; } message Order { S s = 1; }`), nil, nil, true, "open enum; Confluent ENUM_CONST_REMOVED compatible"},
		{"add enum value proto2 FORWARD (documented)", P, schema.Forward, []string{"syntax = \"proto2\";\npackage acme;\nenum S { A = 0; B = 1; } message Order { optional S s = 1; }"}, "syntax = \"proto2\";\npackage acme;\nenum S { A = 0; B = 1; C = 2; } message Order { optional S s = 1; }", nil, nil, false, "closed enum: old reader moves to unknown fields"},
		{"change message type of field BACKWARD", P, schema.Backward, []string{pb(`message Money { int64 u = 1; } message Price { int64 u = 1; } message Order { Money total = 1; }`)}, pb(`message Money { int64 u = 1; } message Price { int64 u = 1; } message Order { Price total = 1; }`), nil, nil, false, "documented FIELD_NAMED_TYPE_CHANGED (Confluent: FIELD_NAMED_TYPE_CHANGED incompatible)"},
		{"add message FULL", P, schema.Full, []string{base}, pb(`message Order { string id = 1; int32 qty = 2; } message Refund { string id = 1; }`), nil, nil, false, "Confluent: MESSAGE_ADDED compat backward, MESSAGE_REMOVED in forward check (documented)"},
		{"add message BACKWARD", P, schema.Backward, []string{base}, pb(`message Order { string id = 1; int32 qty = 2; } message Refund { string id = 1; }`), nil, nil, true, "MESSAGE_ADDED"},
		{"remove message BACKWARD", P, schema.Backward, []string{pb(`message Order { string id = 1; } message Refund { string id = 1; }`)}, pb(`message Order { string id = 1; }`), nil, nil, false, "MESSAGE_REMOVED"},
		{"add nested message + field BACKWARD", P, schema.Backward, []string{base}, pb(`message Order { message Line { string sku = 1; } string id = 1; int32 qty = 2; repeated Line lines = 3; }`), nil, nil, true, "add field of new type"},
		{"reorder top-level messages FULL", P, schema.Full, []string{pb(`message Order { string id = 1; } message Refund { string id = 1; }`)}, pb(`message Refund { string id = 1; } message Order { string id = 1; }`), nil, nil, true, "Confluent MESSAGE_MOVED compatible"},
		{"change field number BACKWARD", P, schema.Backward, []string{base}, pb(`message Order { string id = 1; int32 qty = 3; }`), nil, nil, false, "number is identity"},
		{"repeated->singular BACKWARD", P, schema.Backward, []string{pb(`message Order { repeated int32 q = 1; }`)}, pb(`message Order { int32 q = 1; }`), nil, nil, false, "packed values lost"},
		{"singular->repeated BACKWARD", P, schema.Backward, []string{pb(`message Order { int32 q = 1; }`)}, pb(`message Order { repeated int32 q = 1; }`), nil, nil, true, "parsers accept both"},
		{"proto3 optional added FULL", P, schema.Full, []string{base}, pb(`message Order { optional string id = 1; int32 qty = 2; }`), nil, nil, true, "wire identical"},
		{"nested message field type change BACKWARD", P, schema.Backward, []string{pb(`message Order { message Line { int32 q = 1; } Line l = 1; }`)}, pb(`message Order { message Line { string q = 1; } Line l = 1; }`), nil, nil, false, "wire type"},
		{"import WKT timestamp add field FULL", P, schema.Full, []string{base}, "syntax = \"proto3\";\npackage acme;\nimport \"google/protobuf/timestamp.proto\";\nmessage Order { string id = 1; int32 qty = 2; google.protobuf.Timestamp at = 3; }\n", nil, nil, true, "add field"},
		{"imported message changes BACKWARD", P, schema.Backward,
			[]string{"syntax = \"proto3\";\npackage acme;\nimport \"money.proto\";\nmessage Order { acme.Money total = 1; }\n"},
			"syntax = \"proto3\";\npackage acme;\nimport \"money.proto\";\nmessage Order { acme.Money total = 1; }\n",
			map[string]string{"money.proto": pb(`message Money { int64 units = 1; }`)},
			map[string]string{"money.proto": pb(`message Money { string units = 1; }`)}, false, "wire type change through import"},
		{"imported message unchanged, import added unused FULL", P, schema.Full,
			[]string{"syntax = \"proto3\";\npackage acme;\nimport \"money.proto\";\nmessage Order { acme.Money total = 1; }\n"},
			"syntax = \"proto3\";\npackage acme;\nimport \"money.proto\";\nimport \"google/protobuf/timestamp.proto\";\nmessage Order { acme.Money total = 1; }\n",
			map[string]string{"money.proto": pb(`message Money { int64 units = 1; }`)},
			map[string]string{"money.proto": pb(`message Money { int64 units = 1; }`)}, true, "nothing changed on wire"},
		{"move message to imported file FULL", P, schema.Full,
			[]string{pb(`message Money { int64 units = 1; } message Order { Money total = 1; }`)},
			"syntax = \"proto3\";\npackage acme;\nimport \"money.proto\";\nmessage Order { Money total = 1; }\n", nil,
			map[string]string{"money.proto": pb(`message Money { int64 units = 1; }`)}, true, "same full name acme.Money still resolvable (lookup includes imports); Confluent would say MESSAGE_REMOVED"},
		{"reuse reserved number BACKWARD", P, schema.Backward, []string{pb(`message Order { reserved 2; string id = 1; }`)}, pb(`message Order { string id = 1; string qty = 2; }`), nil, nil, false, "reserved reuse"},
		{"int32->enum FULL", P, schema.Full, []string{pb(`enum S { S0 = 0; } message Order { int32 s = 1; }`)}, pb(`enum S { S0 = 0; } message Order { S s = 1; }`), nil, nil, true, "guide: enum compatible with int32"},
		{"map<string,int32>->map<string,int64> FULL", P, schema.Full, []string{pb(`message Order { map<string,int32> m = 1; }`)}, pb(`message Order { map<string,int64> m = 1; }`), nil, nil, true, "same group"},
		{"comment + option change FULL", P, schema.Full, []string{base}, pb(`// an order
message Order { option deprecated = true; string id = 1 [deprecated = true]; int32 qty = 2; }`), nil, nil, true, "no wire effect"},
		{"rename enum value FULL", P, schema.Full, []string{pb(`enum S { S0 = 0; A = 1; } message Order { S s = 1; }`)}, pb(`enum S { S0 = 0; AA = 1; } message Order { S s = 1; }`), nil, nil, true, "Confluent ENUM_CONST_CHANGED compat; wire same"},
		{"package change FULL (documented)", P, schema.Full, []string{base}, "syntax = \"proto3\";\npackage acme.v2;\nmessage Order { string id = 1; int32 qty = 2; }\n", nil, nil, false, "documented deviation: Confluent PACKAGE_CHANGED compatible"},
		{"proto2 required added BACKWARD", P, schema.Backward, []string{"syntax = \"proto2\";\npackage acme;\nmessage Order { optional string id = 1; }"}, "syntax = \"proto2\";\npackage acme;\nmessage Order { optional string id = 1; required int32 q = 2; }", nil, nil, false, "old data lacks q; parse fails"},
		{"BACKWARD_TRANSITIVE number reuse after delete", P, schema.BackwardTransitive,
			[]string{pb(`message Order { string id = 1; string note = 3; }`), pb(`message Order { string id = 1; }`)},
			pb(`message Order { string id = 1; int64 count = 3; }`), nil, nil, false, "v1 data has note(3) as string; read as int64"},
		{"BACKWARD number reuse after delete (non-transitive)", P, schema.Backward,
			[]string{pb(`message Order { string id = 1; string note = 3; }`), pb(`message Order { string id = 1; }`)},
			pb(`message Order { string id = 1; int64 count = 3; }`), nil, nil, true, "v2 -> v3 looks like an add (known Confluent limitation)"},
		{"message <-> bytes (documented)", P, schema.Backward, []string{pb(`message M { int32 a = 1; } message Order { M m = 1; }`)}, pb(`message M { int32 a = 1; } message Order { bytes m = 1; }`), nil, nil, false, "documented"},
		{"field moved to existing oneof BACKWARD", P, schema.Backward, []string{pb(`message Order { int32 a = 1; oneof o { string b = 2; } }`)}, pb(`message Order { oneof o { int32 a = 1; string b = 2; } }`), nil, nil, false, "a and b could both be set"},
	}
	run(t, cases)
}
