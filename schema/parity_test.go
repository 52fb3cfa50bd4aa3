package schema

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The parity set: handoff's own cases, each one change judged BACKWARD
// and FORWARD, with Confluent's verdict as its source and documentation
// give it (the case's why names the behaviour it pins) and handoff's
// verdict under StrictRules. By default (ConfluentRules) handoff must give
// Confluent's verdict; where it does not on purpose, the case says why in
// differs, and the rules-*.md table of the format lists that difference
// under the same key.
//
// Confluent's verdicts were read from its registry's source (the JSON
// Schema diff io.confluent.kafka.schemaregistry.json.diff, the Protobuf
// diff ...protobuf.diff, Avro's SchemaCompatibility for Avro) and its
// documentation; no case is copied from Confluent's tests.

const (
	ok = true  // compatible
	no = false // incompatible
)

// pv is the verdict of one direction: Confluent's, handoff's under
// StrictRules, and, when handoff's default differs from Confluent's on
// purpose, the key of that difference in the rules tables.
type pv struct {
	cf, strict bool
	differs    string
}

type parityCase struct {
	name     string
	old, new string
	back     pv // BACKWARD: new reads data written with old
	fwd      pv // FORWARD: old reads data written with new
	why      string
	// rule is a rule the change must trigger under StrictRules, in the
	// direction that breaks: the coverage check counts it.
	rule string
	// drafts, for JSON Schema, overrides the drafts the texts are read
	// in (draft-07 and 2020-12, where the keywords allow).
	drafts []Draft
}

// parityRun is one checked (case, direction, draft).
type parityRun struct {
	typ     Type
	name    string
	agrees  bool     // handoff's default verdict is Confluent's
	differs string   // the documented difference, when it is not
	rules   []string // the rules reported under StrictRules
}

// parityRules are the rules of each format: every one must be reported by
// some parity case, so each has Confluent's verdict pinned.
func parityRules(typ Type) []string {
	switch typ {
	case JSON:
		return sortedKeys(jsonHints)
	case Avro:
		return []string{avroRuleNameMismatch, avroRuleFixedSize, avroRuleMissingSymbols, avroRuleMissingDefault,
			avroRuleTypeMismatch, avroRuleMissingBranch, avroRuleLogicalMismatch, avroRuleDecimalScale, avroRuleDecimalPrecision}
	}
	return []string{pbSyntaxChanged, pbPackageChanged, pbMessageRemoved, pbFieldKindChanged,
		pbFieldScalarKindChanged, pbFieldNamedTypeChanged, pbFieldCardinality, pbFieldNameChanged,
		pbFieldNumberReused, pbFieldNumberChanged, pbRequiredFieldAdded, pbRequiredFieldRemoved,
		pbOneofFieldRemoved, pbMultipleFieldsToOneof, pbFieldToExistingOneof, pbEnumConstRemoved,
		pbReservedFieldReused}
}

func runParity(t *testing.T, typ Type, cases []parityCase, parse func(t *testing.T, d Draft, text string) *Parsed) []parityRun {
	t.Helper()
	var runs []parityRun
	triggered := map[string]bool{}
	for _, c := range cases {
		drafts := []Draft{""}
		if typ == JSON {
			drafts = c.drafts
			if drafts == nil {
				drafts = slices.DeleteFunc(slices.Clone(draftsOf(c.old, c.new)), func(d Draft) bool { return d != Draft7 && d != Draft2020 })
			}
			if len(drafts) == 0 {
				t.Fatalf("%s: runs in neither draft-07 nor 2020-12", c.name)
			}
		}
		for _, d := range drafts {
			for _, dir := range []struct {
				level Level
				want  pv
			}{{Backward, c.back}, {Forward, c.fwd}} {
				name := c.name + "/" + string(dir.level)
				if d != "" {
					name += "/" + string(d)
				}
				t.Run(name, func(t *testing.T) {
					old, next := parse(t, d, c.old), parse(t, d, c.new)
					def := Check(dir.level, next, []Version{{Version: 1, Schema: old}})
					strict := def.Under(StrictRules)
					for _, v := range strict.Violations {
						triggered[v.Rule] = true
					}
					want := dir.want.cf
					if dir.want.differs != "" {
						want = !want
					}
					if def.Compatible() != want {
						t.Errorf("default verdict compatible=%v, want %v (Confluent: %v; %s)%s%s", def.Compatible(), want, dir.want.cf, c.why, describe(def.Violations), warnings(def))
					}
					if strict.Compatible() != dir.want.strict {
						t.Errorf("strict verdict compatible=%v, want %v (%s)%s", strict.Compatible(), dir.want.strict, c.why, describe(strict.Violations))
					}
					// What the default accepts and strict refuses shows as
					// warnings, each marked strict.
					if def.Compatible() && !strict.Compatible() && (len(def.Warnings) == 0 || !allStrict(def.Warnings)) {
						t.Errorf("strict refuses, default accepts, but the warnings are %v", def.Warnings)
					}
					// A refusal of what Confluent accepts says so in its
					// message.
					if !def.Compatible() && dir.want.cf && !slices.ContainsFunc(def.Violations, func(v Violation) bool {
						return strings.Contains(v.Message, "Confluent") && !strings.Contains(v.Message, "\n")
					}) {
						t.Errorf("refuses what Confluent accepts without saying so:%s", describe(def.Violations))
					}
					runs = append(runs, parityRun{typ: typ, name: name, agrees: def.Compatible() == dir.want.cf, differs: dir.want.differs, rules: rulesOf(strict.Violations)})
				})
			}
		}
		if c.rule != "" && !triggered[c.rule] {
			t.Errorf("%s: rule %s never reported under StrictRules", c.name, c.rule)
		}
	}
	return runs
}

func warnings(r Result) string {
	if len(r.Warnings) == 0 {
		return ""
	}
	return "\n\twarnings:" + describe(r.Warnings)
}

// parityDocs are the rules tables: every documented difference key must be
// a difference some case pins, and every key a case uses must be there.
var parityDocs = map[Type]string{JSON: "rules-json.md", Avro: "rules-avro.md", Protobuf: "rules-protobuf.md"}

func checkParityDocs(t *testing.T, typ Type, runs []parityRun) {
	t.Helper()
	b, err := os.ReadFile(parityDocs[typ])
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	pinned := map[string]bool{}
	for _, r := range runs {
		pinned[r.differs] = true
		if r.differs != "" && !strings.Contains(doc, "`"+r.differs+"`") {
			t.Errorf("%s: difference %q is not in %s", r.name, r.differs, parityDocs[typ])
		}
	}
	for _, k := range diffKey.FindAllStringSubmatch(doc, -1) {
		if !pinned[k[1]] {
			t.Errorf("%s lists difference %q, which no parity case pins", parityDocs[typ], k[1])
		}
	}
}

var diffKey = regexp.MustCompile("`(diff-[a-z0-9-]+)`")

// TestParity runs the parity set of every format and reports the figure:
// how many checks give Confluent's verdict by default, and each
// deliberate difference.
func TestParity(t *testing.T) {
	var all []parityRun
	for _, f := range []struct {
		typ   Type
		cases []parityCase
		parse func(t *testing.T, d Draft, text string) *Parsed
	}{
		{JSON, parityJSON, func(t *testing.T, d Draft, text string) *Parsed { return mustJSONIn(t, d, text, nil) }},
		{Avro, parityAvro, func(t *testing.T, _ Draft, text string) *Parsed { return mustParse(t, Avro, text) }},
		{Protobuf, parityProtobuf, func(t *testing.T, _ Draft, text string) *Parsed { return mustParse(t, Protobuf, text) }},
	} {
		t.Run(string(f.typ), func(t *testing.T) {
			runs := runParity(t, f.typ, f.cases, f.parse)
			checkParityDocs(t, f.typ, runs)
			seen := map[string]bool{}
			for _, r := range runs {
				for _, rule := range r.rules {
					seen[rule] = true
				}
			}
			for _, rule := range parityRules(f.typ) {
				if !seen[rule] {
					t.Errorf("rule %s: no parity case reports it", rule)
				}
			}
			all = append(all, runs...)
		})
	}
	agree := 0
	diffs := map[string][]string{}
	for _, r := range all {
		if r.agrees {
			agree++
		} else {
			diffs[r.differs] = append(diffs[r.differs], r.name)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "parity: %d of %d checks give Confluent's verdict by default", agree, len(all))
	for _, typ := range []Type{JSON, Avro, Protobuf} {
		n, a := 0, 0
		for _, r := range all {
			if r.typ == typ {
				n++
				if r.agrees {
					a++
				}
			}
		}
		fmt.Fprintf(&b, "; %s %d/%d", typ, a, n)
	}
	keys := make([]string, 0, len(diffs))
	for k := range diffs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  differs on purpose (%s): %s", k, strings.Join(diffs[k], ", "))
	}
	t.Log(b.String())
}

func mustParse(t *testing.T, typ Type, text string) *Parsed {
	t.Helper()
	p, err := Parse(Schema{Type: typ, Text: text})
	if err != nil {
		t.Fatalf("Parse(%s): %v\n%s", typ, err, text)
	}
	return p
}

// docTable reads the rows of the markdown table in file whose header row
// starts with header: each row's cells, keyed by its first cell.
func docTable(t *testing.T, file, header string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	in := false
	for _, ln := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(ln, header):
			in = true
		case in && !strings.HasPrefix(ln, "|"):
			in = false
		case in && !strings.HasPrefix(ln, "|---"):
			cells := strings.Split(strings.Trim(strings.TrimSpace(ln), "|"), "|")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			rows[cells[0]] = cells
		}
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no table with header %q", file, header)
	}
	return rows
}

// checkDocVerdict compares a verdict with a ✓/✗ cell of a rules table;
// other cells (a sentence) are checked by the parity cases instead.
func checkDocVerdict(t *testing.T, what, cell string, compatible bool) {
	t.Helper()
	switch cell {
	case "✓":
		if !compatible {
			t.Errorf("%s: the rules table says ✓, the check refuses", what)
		}
	case "✗":
		if compatible {
			t.Errorf("%s: the rules table says ✗, the check accepts", what)
		}
	}
}
