package schema_test

import (
	"testing"

	"github.com/handoffhq/handoff/schema"
)

func TestEverydayProtobufMore(t *testing.T) {
	base := pb(`message Order { string id = 1; int32 qty = 2; }`)
	run(t, []tc{
		{"FULL add nested message + field", P, schema.Full, []string{base}, pb(`message Order { message Line { string sku = 1; } string id = 1; int32 qty = 2; repeated Line lines = 3; }`), nil, nil, false, "Confluent: nested MESSAGE_ADDED -> MESSAGE_REMOVED in forward (wire-safe though)"},
		{"FULL add top-level enum + field", P, schema.Full, []string{base}, pb(`enum K { K0 = 0; } message Order { string id = 1; int32 qty = 2; K k = 3; }`), nil, nil, true, "ENUM_ADDED/REMOVED compatible"},
		{"FULL drop proto3 optional", P, schema.Full, []string{pb(`message Order { optional string id = 1; }`)}, pb(`message Order { string id = 1; }`), nil, nil, true, "wire identical"},
		{"FULL add field in nested message", P, schema.Full, []string{pb(`message Order { message Line { string sku = 1; } repeated Line lines = 1; }`)}, pb(`message Order { message Line { string sku = 1; int32 n = 2; } repeated Line lines = 1; }`), nil, nil, true, "add field"},
		{"BACKWARD change field from int32 to message", P, schema.Backward, []string{base}, pb(`message Q { int32 v = 1; } message Order { string id = 1; Q qty = 2; }`), nil, nil, false, "wire type"},
		{"FULL_TRANSITIVE 3 versions adding fields", P, schema.FullTransitive, []string{base, pb(`message Order { string id = 1; int32 qty = 2; string a = 3; }`)}, pb(`message Order { string id = 1; int32 qty = 2; string a = 3; string b = 4; }`), nil, nil, true, "adds"},
		{"FORWARD remove field then another version re-add with other type TRANSITIVE", P, schema.ForwardTransitive, []string{base, pb(`message Order { string id = 1; reserved 2; }`)}, pb(`message Order { string id = 1; string qty2 = 2; }`), nil, nil, false, "reserved reuse + number reuse vs v1"},
	})
}
