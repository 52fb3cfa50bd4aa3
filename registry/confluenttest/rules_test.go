package confluenttest

import (
	"context"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry"

	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/schema"
)

// Confluent's client against handoff's registry: a JSON Schema without
// $schema is draft-07 (a tuple as items registers and is checked), the
// default rule set gives Confluent's verdict, and handoff's own
// handoffCompatibilityRules setting neither disturbs Confluent's config
// calls nor is reset by them.
func TestConfluentClient_DraftSevenAndCompatibilityRules(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		js := func(s string) schemaregistry.SchemaInfo {
			return schemaregistry.SchemaInfo{Schema: s, SchemaType: "JSON"}
		}
		const (
			pair    = `{"type":"array","items":[{"type":"string"},{"type":"number"}],"additionalItems":false}`
			pairInt = `{"type":"array","items":[{"type":"string"},{"type":"integer"}],"additionalItems":false}`
			open    = `{"type":"object","properties":{"id":{"type":"string"}}}`
			// Requires a name neither version declares: Confluent's
			// registry accepts it, handoff's strict rule set does not.
			undeclared = `{"type":"object","properties":{"id":{"type":"string"}},"required":["zip"]}`
		)
		_, err := e.sr.Register("pair-value", js(pair), false)
		check(t, err)
		ok, err := e.sr.TestCompatibility("pair-value", -1, js(pairInt))
		check(t, err)
		if ok {
			t.Error("a draft-07 tuple position narrowed: compatible")
		}

		_, err = e.sr.Register("rules-value", js(open), false)
		check(t, err)
		ok, err = e.sr.TestCompatibility("rules-value", -1, js(undeclared))
		check(t, err)
		if !ok {
			t.Error("default rules: a required undeclared name is incompatible")
		}

		ctx := context.Background()
		check(t, e.ours.SetCompatibilityRules(ctx, "", schema.StrictRules))
		// Confluent's config calls still read and write the level.
		cfg, err := e.sr.GetConfig("rules-value", true)
		check(t, err)
		if cfg.CompatibilityLevel != schemaregistry.Backward {
			t.Errorf("GetConfig(defaultToGlobal) = %v, want BACKWARD", cfg.CompatibilityLevel.String())
		}
		_, err = e.sr.UpdateConfig("rules-value", schemaregistry.ServerConfig{CompatibilityUpdate: schemaregistry.Backward})
		check(t, err)
		_, err = e.sr.UpdateDefaultCompatibility(schemaregistry.Backward)
		check(t, err)
		// ... and leave handoff's rule set as it was.
		if r, err := e.ours.CompatibilityRules(ctx, "rules-value"); err != nil || r != schema.StrictRules {
			t.Fatalf("rules after Confluent's config calls = %q, %v; want STRICT", r, err)
		}
		ok, err = e.sr.TestCompatibility("rules-value", -1, js(undeclared))
		check(t, err)
		if ok {
			t.Error("STRICT rules: a required undeclared name is compatible")
		}
		_, err = e.sr.Register("rules-value", js(undeclared), false)
		wantCode(t, err, registry.CodeIncompatibleSchema)
	})
}
