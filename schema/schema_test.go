package schema

import "testing"

// Canonical (no parsing) and Parsed.Canonical agree, so a registry may
// recognise a schema by the one and store the other.
func TestCanonicalAgreesWithParsed(t *testing.T) {
	for _, s := range []Schema{
		{Type: Avro, Text: ` { "type" : "record", "name":"R", "fields" : [ {"name":"a","type":"string"} ] } `},
		{Type: Avro, Text: `"string"`},
		{Type: JSON, Text: "{\n  \"type\": \"object\",\n  \"properties\": {\"a\": {\"type\": \"string\"}}\n}\n"},
		{Type: Protobuf, Text: "\r\nsyntax = \"proto3\";  \r\nmessage M { string a = 1; }\t\n\n"},
	} {
		p, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Canonical(s.Type, s.Text)
		if err != nil {
			t.Fatal(err)
		}
		if c != p.Canonical() {
			t.Errorf("%s: Canonical %q, Parsed.Canonical %q", s.Type, c, p.Canonical())
		}
	}
	if _, err := Canonical(JSON, `{"a":`); err == nil {
		t.Error("Canonical of broken JSON: no error")
	}
	if _, err := Canonical("XML", `<a/>`); err == nil {
		t.Error("Canonical of an unknown type: no error")
	}
}

// strictCheck is Check under StrictRules: every finding of the engine is
// a violation. The engine's own tests use it; the parity tests
// (parity_*_test.go) check the default, Confluent's rules.
func strictCheck(level Level, candidate *Parsed, earlier []Version) Result {
	return Check(level, candidate, earlier).Under(StrictRules)
}
