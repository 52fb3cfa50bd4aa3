package registry_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/registry"
)

// Odd subjects on every route that takes one are a 422 (42208) on every
// store: never a 500, never a database's message, never stored.
func TestServer_ValidatesSubjectsOnEveryRoute(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			a := newAPI(t, open(t))
			subjects := map[string]string{
				"invalid UTF-8":     "probe\xffx",
				"NUL":               "probe\x00x",
				"control character": "probe\x1bx",
				"C1 control":        "probe\u0085x",
				"10,000 characters": strings.Repeat("s", 10_000),
				"reserved":          "__GLOBAL",
			}
			routes := []struct {
				method, path string
				body         any
			}{
				{"GET", "/subjects/{s}/versions", nil},
				{"GET", "/subjects/{s}/versions/latest", nil},
				{"GET", "/subjects/{s}/versions/1/schema", nil},
				{"GET", "/subjects/{s}/versions/1/referencedby", nil},
				{"GET", "/subjects/{s}/metadata", nil},
				{"POST", "/subjects/{s}/versions", avro(avroV1)},
				{"POST", "/subjects/{s}", avro(avroV1)},
				{"POST", "/compatibility/subjects/{s}/versions/latest", avro(avroV1)},
				{"POST", "/compatibility/subjects/{s}/versions", avro(avroV1)},
				{"DELETE", "/subjects/{s}", nil},
				{"DELETE", "/subjects/{s}/versions/1", nil},
				{"GET", "/config/{s}", nil},
				{"PUT", "/config/{s}", map[string]any{"compatibility": "FULL"}},
				{"DELETE", "/config/{s}", nil},
				{"GET", "/mode/{s}", nil},
				{"PUT", "/mode/{s}", map[string]any{"mode": "READONLY"}},
				{"DELETE", "/mode/{s}", nil},
			}
			for what, sub := range subjects {
				for _, r := range routes {
					path := strings.Replace(r.path, "{s}", url.PathEscape(sub), 1)
					msg := a.fails(r.method, path, r.body, 422, registry.CodeInvalidSubject)
					if !strings.Contains(msg, "Invalid subject") {
						t.Errorf("%s %s (%s): %q", r.method, r.path, what, msg)
					}
				}
			}
			if subs := a.ok("GET", "/subjects", nil).([]any); len(subs) != 0 {
				t.Fatalf("odd subjects stored: %v", subs)
			}
			// A reference to an odd subject, and odd text, are refused too.
			a.fails("POST", "/subjects/ok/versions", map[string]any{"schema": avroV1,
				"references": []map[string]any{{"name": "x", "subject": "a\x00b", "version": 1}}}, 422, registry.CodeInvalidSchema)
			a.fails("POST", "/subjects/ok/versions", map[string]any{"schema": "\"str\u0000ing\""}, 422, registry.CodeInvalidSchema)
			a.fails("POST", "/subjects/ok/versions", map[string]any{"schemaType": "PROTOBUF",
				"schema": "syntax = \"proto3\"; // \u0000\nmessage M { string a = 1; }"}, 422, registry.CodeInvalidSchema)
			a.fails("GET", "/schemas/guids/"+url.PathEscape("g\xff\x00"), nil, 404, registry.CodeSchemaNotFound)
			// Unicode that is not control is a subject like any other.
			a.ok("POST", "/subjects/"+url.PathEscape("commandes-été.value")+"/versions", avro(avroV1))
		})
	}
}

// metadata must be an object and ruleSet a rule set: anything else is a
// 422 naming the field, on every store.
func TestServer_ValidatesMetadataAndRuleSet(t *testing.T) {
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			a := newAPI(t, open(t))
			cases := []struct {
				field string
				value any
				names string
			}{
				{"metadata", "notanobject", `"metadata"`},
				{"metadata", []int{1, 2}, `"metadata"`},
				{"metadata", map[string]any{"properties": map[string]any{"a": 1}}, `"metadata.properties"`},
				{"metadata", map[string]any{"tags": []string{"x"}}, `"metadata.tags"`},
				{"metadata", map[string]any{"sensitive": "x"}, `"metadata.sensitive"`},
				{"ruleSet", []int{1, 2}, `"ruleSet"`},
				{"ruleSet", map[string]any{"domainRules": "x"}, `"ruleSet.domainRules"`},
				{"ruleSet", map[string]any{"migrationRules": []any{map[string]any{"kind": "TRANSFORM"}}}, `"ruleSet.migrationRules[0].name"`},
			}
			for _, c := range cases {
				for _, path := range []string{"/subjects/s/versions", "/compatibility/subjects/s/versions"} {
					msg := a.fails("POST", path, map[string]any{"schema": avroV1, c.field: c.value}, 422, registry.CodeInvalidSchema)
					if !strings.Contains(msg, c.names) {
						t.Errorf("%s %v: message %q does not name %s", c.field, c.value, msg, c.names)
					}
				}
			}
			a.ok("POST", "/subjects/s/versions", map[string]any{"schema": avroV1,
				"metadata": map[string]any{"properties": map[string]any{"owner": "team-a"}, "tags": map[string]any{"f": []string{"PII"}}},
				"ruleSet":  map[string]any{"domainRules": []any{map[string]any{"name": "r", "kind": "CONDITION", "expr": "true"}}}})
		})
	}
}
