package schema

import "testing"

// FuzzParseJSON: parsing arbitrary text never panics; a schema that parses
// is compatible with itself (parsed twice, so the check runs on two distinct
// trees), has a stable canonical form, and validating its own text does not
// panic.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `true`, `false`, `{"type":"string","maxLength":3}`,
		`{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],"additionalProperties":false}`,
		`{"$defs":{"n":{"type":"object","properties":{"next":{"$ref":"#/$defs/n"}}}},"$ref":"#/$defs/n"}`,
		`{"$schema":"http://json-schema.org/draft-07/schema#","items":[{"type":"string"}],"additionalItems":false,"dependencies":{"a":["b"]}}`,
		`{"anyOf":[{"type":"null"},{"type":"object","patternProperties":{"^x":{"minimum":1}}}],"not":{"const":3}}`,
		`{"oneOf":[{"enum":[1,2]},{"type":"string","pattern":"^a"}],"if":{"type":"string"},"then":{"minLength":1}}`,
		`{"type":"array","prefixItems":[{}],"items":false,"contains":{"type":"integer"},"minContains":2,"uniqueItems":true}`,
		`{"unevaluatedProperties":false,"allOf":[{"properties":{"a":true}}],"propertyNames":{"maxLength":4}}`,
		`{"$ref":"#"}`, `{"type":`, `[]`, `{"minLength":-1}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		a, err := Parse(Schema{Type: JSON, Text: text})
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("error %T is not a *ParseError: %v", err, err)
			}
			return
		}
		b, err := Parse(Schema{Type: JSON, Text: a.Canonical()})
		if err != nil {
			t.Fatalf("canonical form does not parse: %v", err)
		}
		if b.Canonical() != a.Canonical() {
			t.Fatalf("canonical form not stable: %q vs %q", a.Canonical(), b.Canonical())
		}
		if vs := a.impl.compat(b.impl); len(vs) != 0 {
			t.Fatalf("schema incompatible with itself: %v", vs)
		}
		if vs := a.impl.compat(a.impl); len(vs) != 0 {
			t.Fatalf("schema incompatible with itself: %v", vs)
		}
		_ = a.Validate([]byte(text))
	})
}
