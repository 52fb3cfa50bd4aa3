package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/schema"
)

func jsonSchema(s string) map[string]any { return map[string]any{"schema": s, "schemaType": "JSON"} }

func protoSchema(s string) map[string]any {
	return map[string]any{"schema": s, "schemaType": "PROTOBUF"}
}

// messages returns the verbose messages of a compatibility check and its
// verdict.
func (a *api) check(subject string, body map[string]any) (bool, []string) {
	a.t.Helper()
	out := a.ok("POST", "/compatibility/subjects/"+subject+"/versions/latest?verbose=true", body).(map[string]any)
	var msgs []string
	for _, m := range anySlice(out["messages"]) {
		msgs = append(msgs, m.(string))
	}
	return out["is_compatible"].(bool), msgs
}

func anySlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func hasLine(lines []string, prefix, rule string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, rule) {
			return true
		}
	}
	return false
}

// A JSON Schema without $schema is draft-07, as Confluent's registry reads
// it: a tuple written as an items list registers and its positions are
// checked. Under a 2020-12 default the same text is no valid schema.
func TestServer_JSONWithoutSchemaIsDraft07(t *testing.T) {
	a := newAPI(t, sqliteStore(t))
	tuple := func(second string) string {
		return `{"type":"array","items":[{"type":"string"},{"type":"` + second + `"}],"additionalItems":false}`
	}
	a.ok("POST", "/subjects/pairs-value/versions", jsonSchema(tuple("number")))
	msg := a.fails("POST", "/subjects/pairs-value/versions", jsonSchema(tuple("integer")), 409, registry.CodeIncompatibleSchema)
	if !strings.Contains(msg, "TYPE_NARROWED at /items/1") {
		t.Errorf("narrowed tuple position: %s", msg)
	}
	// A third position added to the closed tuple: old data never has it.
	a.ok("POST", "/subjects/pairs-value/versions", jsonSchema(`{"type":"array","items":[{"type":"string"},{"type":"number"},{"type":"string"}],"additionalItems":false}`))
	// Stored schemas are read as draft-07 again when checked.
	if ok, msgs := a.check("pairs-value", jsonSchema(`{"type":"array","items":[{"type":"string"},{"type":"number"},{"type":"integer"}],"additionalItems":false}`)); ok || !hasLine(msgs, "TYPE_CHANGED", "/items/2") {
		t.Errorf("check against the stored draft-07 tuple: %v %v", ok, msgs)
	}

	b := newAPI(t, sqliteStore(t), registry.WithDefaultJSONDraft(schema.Draft2020))
	msg = b.fails("POST", "/subjects/pairs-value/versions", jsonSchema(tuple("number")), 422, registry.CodeInvalidSchema)
	if !strings.Contains(msg, "/items") {
		t.Errorf("2020-12 default, items as a list: %s", msg)
	}
	if _, err := registry.NewServer(sqliteStore(t), registry.WithDefaultJSONDraft("draft-5")); err == nil {
		t.Error("WithDefaultJSONDraft(draft-5): no error")
	}
}

// By default the registry gives Confluent's verdict and shows handoff's
// stricter findings as warnings; handoffCompatibilityRules STRICT, per
// subject or global, refuses them. Run on every store.
func TestServer_StrictRulesRefuseWhatDefaultWarns(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) { testStrictRules(t, open(t)) })
	}
}

func testStrictRules(t *testing.T, st registry.Store) {
	a := newAPI(t, st)
	const (
		v1 = `{"type":"object","properties":{"id":{"type":"string"}}}`
		// v2 requires a name no version declares: Confluent's registry
		// accepts it (it compares required only for declared properties);
		// data written with v1 lacks it.
		v2 = `{"type":"object","properties":{"id":{"type":"string"}},"required":["zip"]}`
		// v3 adds a typed property to the open model: both refuse.
		v3 = `{"type":"object","properties":{"id":{"type":"string"},"n":{"type":"integer"}}}`
	)
	a.ok("POST", "/subjects/a-value/versions", jsonSchema(v1))
	a.ok("POST", "/subjects/b-value/versions", jsonSchema(v1))

	// Default: compatible, the finding shown as a warning.
	ok, msgs := a.check("a-value", jsonSchema(v2))
	if !ok || !hasLine(msgs, "warning: REQUIRED_ATTRIBUTE_ADDED at /properties/zip", "STRICT refuses it") {
		t.Fatalf("default rules: compatible=%v %q", ok, msgs)
	}
	// A Confluent-level violation is no warning, and the warnings follow
	// the violations.
	ok, msgs = a.check("a-value", jsonSchema(v3))
	if ok || len(msgs) == 0 || !strings.HasPrefix(msgs[0], "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL") {
		t.Fatalf("a refusal: compatible=%v %q", ok, msgs)
	}

	// Strict for one subject: refused, without the warning prefix.
	got := a.ok("PUT", "/config/a-value", map[string]any{"handoffCompatibilityRules": "strict"}).(map[string]any)
	if got["handoffCompatibilityRules"] != "STRICT" || got["compatibility"] != nil {
		t.Fatalf("PUT rules = %v", got)
	}
	ok, msgs = a.check("a-value", jsonSchema(v2))
	if ok || !hasLine(msgs, "REQUIRED_ATTRIBUTE_ADDED at /properties/zip", "") || hasLine(msgs, "warning:", "") {
		t.Fatalf("strict rules: compatible=%v %q", ok, msgs)
	}
	msg := a.fails("POST", "/subjects/a-value/versions", jsonSchema(v2), 409, registry.CodeIncompatibleSchema)
	if !strings.Contains(msg, "BACKWARD, handoffCompatibilityRules STRICT") || !strings.Contains(msg, "REQUIRED_ATTRIBUTE_ADDED") {
		t.Fatalf("strict refusal: %s", msg)
	}
	// The subject's level was not set by setting its rules; its config
	// shows only the rules, and with defaultToGlobal both.
	if got := a.ok("GET", "/config/a-value", nil).(map[string]any); got["handoffCompatibilityRules"] != "STRICT" || got["compatibilityLevel"] != nil {
		t.Fatalf("GET subject config = %v", got)
	}
	if got := a.ok("GET", "/config/a-value?defaultToGlobal=true", nil).(map[string]any); got["handoffCompatibilityRules"] != "STRICT" || got["compatibilityLevel"] != "BACKWARD" {
		t.Fatalf("GET subject config with defaultToGlobal = %v", got)
	}
	// The other subject keeps the default and registers with a warning only.
	a.ok("POST", "/subjects/b-value/versions", jsonSchema(v2))

	// Global strict: every subject without its own rules follows; a
	// subject's own CONFLUENT wins over it.
	a.ok("PUT", "/config", map[string]any{"handoffCompatibilityRules": "STRICT", "compatibility": "BACKWARD"})
	a.ok("POST", "/subjects/c-value/versions", jsonSchema(v1))
	if ok, _ := a.check("c-value", jsonSchema(v2)); ok {
		t.Fatal("global STRICT: compatible")
	}
	a.ok("PUT", "/config/c-value", map[string]any{"handoffCompatibilityRules": "CONFLUENT"})
	if ok, _ := a.check("c-value", jsonSchema(v2)); !ok {
		t.Fatal("subject CONFLUENT under global STRICT: incompatible")
	}
	if got := a.ok("GET", "/config", nil).(map[string]any); got["handoffCompatibilityRules"] != "STRICT" || got["compatibilityLevel"] != "BACKWARD" {
		t.Fatalf("GET global config = %v", got)
	}

	// Deleting the subject's config removes its rules: the global ones hold.
	if got := a.ok("DELETE", "/config/a-value", nil).(map[string]any); got["handoffCompatibilityRules"] != "STRICT" {
		t.Fatalf("DELETE subject config = %v", got)
	}
	a.fails("GET", "/config/a-value", nil, 404, registry.CodeSubjectCompatibilityNotSet)
	a.ok("DELETE", "/config", nil)
	if ok, _ := a.check("a-value", jsonSchema(v2)); !ok {
		t.Fatal("after deleting the configs: incompatible")
	}
	if got := a.ok("GET", "/config", nil).(map[string]any); got["handoffCompatibilityRules"] != "CONFLUENT" {
		t.Fatalf("GET global config after delete = %v", got)
	}

	// Bad values name the field; an empty body changes nothing.
	msg = a.fails("PUT", "/config/a-value", map[string]any{"handoffCompatibilityRules": "LENIENT"}, 422, registry.CodeInvalidCompatibilityLevel)
	if !strings.Contains(msg, "handoffCompatibilityRules") || !strings.Contains(msg, "CONFLUENT and STRICT") {
		t.Errorf("bad rules: %s", msg)
	}
	a.fails("PUT", "/config/a-value", map[string]any{"handoffCompatibilityRules": ""}, 422, registry.CodeInvalidCompatibilityLevel)
	a.fails("PUT", "/config/a-value", map[string]any{}, 422, registry.CodeInvalidCompatibilityLevel)
	a.fails("GET", "/config/a-value", nil, 404, registry.CodeSubjectCompatibilityNotSet)
}

// The other formats: a renumbered Protobuf field and a changed Avro
// logical type register by default (Confluent's registry accepts both) and
// are refused under STRICT. A bytes field read as a proto3 string is
// refused by default too: its parser rejects the data.
func TestServer_StrictRulesProtobufAndAvro(t *testing.T) {
	a := newAPI(t, sqliteStore(t))
	a.ok("POST", "/subjects/p-value/versions", protoSchema("syntax = \"proto3\";\nmessage Order { string id = 1; }\n"))
	renumbered := protoSchema("syntax = \"proto3\";\nmessage Order { string id = 2; }\n")
	ok, msgs := a.check("p-value", renumbered)
	if !ok || !hasLine(msgs, "warning: FIELD_NUMBER_CHANGED", "") {
		t.Fatalf("renumbered field, default: %v %q", ok, msgs)
	}
	a.ok("POST", "/subjects/q-value/versions", protoSchema("syntax = \"proto3\";\nmessage Order { string id = 1; }\n"))
	a.ok("PUT", "/config/q-value", map[string]any{"handoffCompatibilityRules": "STRICT"})
	a.fails("POST", "/subjects/q-value/versions", renumbered, 409, registry.CodeIncompatibleSchema)
	a.ok("POST", "/subjects/p-value/versions", renumbered)

	a.ok("POST", "/subjects/u-value/versions", protoSchema("syntax = \"proto3\";\nmessage Order { bytes b = 1; }\n"))
	msg := a.fails("POST", "/subjects/u-value/versions", protoSchema("syntax = \"proto3\";\nmessage Order { string b = 1; }\n"), 409, registry.CodeIncompatibleSchema)
	if !strings.Contains(msg, "Confluent's registry accepts this change") {
		t.Errorf("bytes read as a proto3 string: %s", msg)
	}

	ts := func(logical string) map[string]any {
		return avro(`{"type":"record","name":"E","fields":[{"name":"at","type":{"type":"long","logicalType":"` + logical + `"}}]}`)
	}
	a.ok("POST", "/subjects/e-value/versions", ts("timestamp-millis"))
	if ok, msgs := a.check("e-value", ts("timestamp-micros")); !ok || !hasLine(msgs, "warning: LOGICAL_TYPE_MISMATCH", "") {
		t.Fatalf("logical type changed, default: %v %q", ok, msgs)
	}
	a.ok("PUT", "/config/e-value", map[string]any{"handoffCompatibilityRules": "STRICT"})
	a.fails("POST", "/subjects/e-value/versions", ts("timestamp-micros"), 409, registry.CodeIncompatibleSchema)
}

// The client reads and sets the rule set, and reads JSON Schemas without
// $schema in the draft it is given.
func TestClient_CompatibilityRulesAndDraft(t *testing.T) {
	a := newAPI(t, sqliteStore(t))
	ctx := context.Background()
	c, err := registry.NewClient(a.url)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := c.CompatibilityRules(ctx, "x-value"); err != nil || r != schema.ConfluentRules {
		t.Fatalf("default rules = %q, %v", r, err)
	}
	if err := c.SetCompatibilityRules(ctx, "", schema.StrictRules); err != nil {
		t.Fatal(err)
	}
	if err := c.SetCompatibilityRules(ctx, "x-value", schema.ConfluentRules); err != nil {
		t.Fatal(err)
	}
	for subject, want := range map[string]schema.Rules{"": schema.StrictRules, "x-value": schema.ConfluentRules, "y-value": schema.StrictRules} {
		if r, err := c.CompatibilityRules(ctx, subject); err != nil || r != want {
			t.Errorf("rules of %q = %q, %v; want %q", subject, r, err, want)
		}
	}
	// A subject with rules but no level of its own: Config says not set.
	if _, err := c.Config(ctx, "x-value"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Config of a subject with only rules: %v", err)
	}
	if err := c.SetCompatibilityRules(ctx, "x-value", "SOMETIMES"); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("SetCompatibilityRules(SOMETIMES): %v", err)
	}

	// Draft: the same stored text validates as a tuple (draft-07) or not.
	id, err := c.Register(ctx, "t-value", registry.SchemaSpec{Type: schema.JSON, Text: `{"type":"array","prefixItems":[{"type":"string"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		draft schema.Draft
		valid bool
	}{{"", true}, {schema.Draft7, true}, {schema.Draft2020, false}} {
		cl, err := registry.NewClient(a.url, registry.WithJSONDraft(tc.draft))
		if err != nil {
			t.Fatal(err)
		}
		p, err := cl.ParsedByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Validate([]byte(`[1]`)); (err == nil) != tc.valid {
			t.Errorf("draft %q: [1] valid = %v, want %v", tc.draft, err == nil, tc.valid)
		}
	}
	if _, err := registry.NewClient(a.url, registry.WithJSONDraft("draft-3")); err == nil {
		t.Error("WithJSONDraft(draft-3): no error")
	}
}
