// Everyday schema changes and the verdicts they must get, with the reason
// (the Avro specification, protobuf wire rules, Confluent's documented
// behaviour, or a choice documented in rules-*.md). Written by a reviewer
// checking the engine against those sources.
package schema_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/schema"
)

const (
	A = schema.Avro
	J = schema.JSON
	P = schema.Protobuf
)

type tc struct {
	name     string
	typ      schema.Type
	level    schema.Level
	versions []string // oldest first
	cand     string
	refsOld  map[string]string
	refsNew  map[string]string
	want     bool // compatible?
	why      string
}

func parse(t *testing.T, typ schema.Type, text string, refs map[string]string) *schema.Parsed {
	t.Helper()
	p, err := schema.Parse(schema.Schema{Type: typ, Text: text, References: refs})
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	return p
}

// run checks each case's verdict, and that every violation is well formed
// and reported once.
func run(t *testing.T, cases []tc) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var vs []schema.Version
			for i, v := range c.versions {
				vs = append(vs, schema.Version{Version: i + 1, Schema: parse(t, c.typ, v, c.refsOld)})
			}
			res := schema.Check(c.level, parse(t, c.typ, c.cand, c.refsNew), vs).Under(schema.StrictRules)
			seen := map[string]int{}
			for _, v := range res.Violations {
				if v.Rule == "" || v.Message == "" || v.Hint == "" || (v.Path != "" && !strings.HasPrefix(v.Path, "/") && !strings.Contains(v.Path, "#/")) || strings.Contains(v.Path, "handoff.invalid") {
					t.Errorf("malformed violation: %+v", v)
				}
				seen[fmt.Sprintf("%s|%s|%s|%d", v.Rule, v.Path, v.Direction, v.Version)]++
			}
			for k, n := range seen {
				if n > 1 {
					t.Errorf("violation reported %d times: %s", n, k)
				}
			}
			if res.Compatible() != c.want {
				t.Errorf("compatible = %v, want %v (%s); violations: %v", res.Compatible(), c.want, c.why, res.Violations)
			}
		})
	}
}
