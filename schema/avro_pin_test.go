package schema

import (
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

// avroLocate tells hamba/avro's parse errors apart by their texts (there
// are no typed errors to match). Each text it looks for is pinned here to a
// schema that makes hamba say it: an upgrade of hamba/avro that rewords one
// fails this test, naming the text, before a parse error loses its rule
// and location (TestAvroParseErrors checks those through Parse).
func TestAvroLocate_HambaTextsPinned(t *testing.T) {
	rec := func(fields string) string { return `{"type":"record","name":"R","fields":[` + fields + `]}` }
	for _, c := range []struct{ text, schema string }{
		{"invalid default for field ", rec(`{"name":"a","type":"int","default":"x"}`)},
		{"unknown type", rec(`{"name":"a","type":"Foo"}`)},
		{"non-empty name key required", `{"type":"record","fields":[]}`},
		{"error decoding", `{"type":"record","name":5,"fields":[]}`},
		{"invalid name", `{"type":"record","name":"1R","fields":[]}`},
		{"invalid symbol", rec(`{"name":"a","type":{"type":"enum","name":"E","symbols":["A","b c"]}}`)},
		{"must have an array of fields", `{"type":"record","name":"R"}`},
		{"duplicate name", rec(`{"name":"a","type":` + `{"type":"record","name":"In","fields":[{"name":"x","type":"int"}]}` + `},{"name":"b","type":` + `{"type":"record","name":"In","fields":[{"name":"x","type":"int"}]}` + `}`)},
		{"duplicate field name", rec(`{"name":"a","type":"int"},{"name":"a","type":"long"}`)},
		{"field requires a type", rec(`{"name":"a"}`)},
		{"is invalid", rec(`{"name":"a","type":"int","order":"up"}`)},
		{"symbol", `{"type":"enum","name":"E","symbols":["A","A"]}`},
		{"must have an items key", rec(`{"name":"a","type":{"type":"array"}}`)},
		{"must have an values key", `{"type":"map"}`},
		{"union type", rec(`{"name":"a","type":["int","int"]}`)},
		{"name must be a non-empty", `{"type":"record","name":"a..R","fields":[]}`},
		{"fixed must have a size", `{"type":"fixed","name":"F"}`},
		{"fixed size", `{"type":"fixed","name":"F","size":-1}`},
	} {
		_, err := avro.Parse(c.schema)
		if err == nil {
			t.Errorf("hamba/avro accepts %s; avroLocate expects an error saying %q", c.schema, c.text)
			continue
		}
		if !strings.Contains(err.Error(), c.text) {
			t.Errorf("hamba/avro's error %q no longer says %q (avroLocate matches it): update avroLocate", err, c.text)
		}
		if c.text == "is invalid" && !strings.Contains(err.Error(), "order") {
			t.Errorf("hamba/avro's order error %q no longer names the order", err)
		}
	}
}
