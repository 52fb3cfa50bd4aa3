package schema

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// mustJSON parses a JSON Schema; without $schema it is draft-07.
func mustJSON(tb testing.TB, text string, refs map[string]string) *Parsed {
	tb.Helper()
	return mustJSONIn(tb, "", text, refs)
}

// mustJSONIn parses a JSON Schema whose text, without $schema, is of draft.
func mustJSONIn(tb testing.TB, draft Draft, text string, refs map[string]string) *Parsed {
	tb.Helper()
	p, err := Parse(Schema{Type: JSON, Text: text, References: refs, DefaultDraft: draft})
	if err != nil {
		tb.Fatalf("Parse(%s) as %s: %v", text, draft, err)
	}
	return p
}

// jsonBackward checks next against prev at BACKWARD (next reads prev's
// data) under StrictRules, both read as draft-07.
func jsonBackward(tb testing.TB, prev, next string) []Violation {
	tb.Helper()
	return jsonBackwardIn(tb, "", prev, next)
}

// jsonBackwardIn is jsonBackward with both texts read as draft.
func jsonBackwardIn(tb testing.TB, draft Draft, prev, next string) []Violation {
	tb.Helper()
	res := strictCheck(Backward, mustJSONIn(tb, draft, next, nil), []Version{{Version: 1, Schema: mustJSONIn(tb, draft, prev, nil)}})
	return res.Violations
}

// draftsOf lists the drafts in which every keyword the texts use exists
// and means the same, so a table row runs in each: prefixItems (and items
// after it) only in 2020-12, items as a list up to 2019-09; unevaluated*,
// dependent*, min/maxContains from 2019-09; if/then/else from draft-07;
// const, contains, propertyNames, numeric exclusive bounds and boolean
// subschemas from draft-06; the rest in every draft.
func draftsOf(texts ...string) []Draft {
	all := strings.Join(texts, " ")
	has := func(kws ...string) bool {
		return slices.ContainsFunc(kws, func(k string) bool { return strings.Contains(all, `"`+k+`"`) })
	}
	lo, hi := 0, len(Drafts)-1 // indexes into Drafts
	switch {
	case has("prefixItems"):
		lo = 4
	case has("unevaluatedProperties", "unevaluatedItems", "dependentRequired", "dependentSchemas", "minContains", "maxContains"):
		lo = 3
	case has("if"):
		lo = 2
	case has("const", "contains", "propertyNames", "exclusiveMaximum", "exclusiveMinimum") || boolSubschema(all):
		lo = 1
	}
	if strings.Contains(all, `"items":[`) {
		hi = 3
	}
	return slices.Clone(Drafts[lo : hi+1])
}

var boolValue = regexp.MustCompile(`(?:"([^"]*)"\s*:|[\[,])\s*(?:true|false)\b`)

// boolSubschema reports whether a text uses true or false as a schema
// (draft-06 on), not as the value of a boolean keyword.
func boolSubschema(text string) bool {
	if text == "true" || text == "false" {
		return true
	}
	for _, m := range boolValue.FindAllStringSubmatch(text, -1) {
		switch m[1] {
		case "additionalProperties", "additionalItems", "uniqueItems", "readOnly", "writeOnly", "deprecated":
		default:
			return true
		}
	}
	return false
}

func rulesOf(vs []Violation) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.Rule)
	}
	return out
}

func hasRule(vs []Violation, rule string) bool {
	return slices.ContainsFunc(vs, func(v Violation) bool { return v.Rule == rule })
}

func describe(vs []Violation) string {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "\n\t%s", v)
	}
	return b.String()
}

// obj builds an object schema from its inner members.
func obj(members string) string { return `{"type":"object"` + members + `}` }

// TestJSONContentModel mirrors the content-model table in rules-json.md,
// row by row. Direction: BACKWARD, so the old schema writes and the new one
// reads.
func TestJSONContentModel(t *testing.T) {
	const (
		zipStr    = `"zip":{"type":"string"}`
		zipAny    = `"zip":{}`
		closed    = `,"additionalProperties":false`
		partStr   = `,"additionalProperties":{"type":"string"}`
		partWide  = `,"additionalProperties":{"type":["string","integer"]}`
		partInt   = `,"additionalProperties":{"type":"integer"}`
		patStr    = `,"patternProperties":{"^z":{"type":"string"}}`
		patWide   = `,"patternProperties":{"^z":{"type":["string","integer"]}}`
		uneval    = `,"unevaluatedProperties":false`
		propsA    = `,"properties":{"a":{"type":"string"}}`
		propsAZip = `,"properties":{"a":{"type":"string"},` + zipStr + `}`
	)
	tests := []struct {
		row        string
		old, new   string
		wantRules  []string // empty: compatible
		wantPathAt string   // path of the first violation, when set
	}{
		// Property added by the reader.
		{"A1 open + add typed property", obj(propsA), obj(propsAZip), []string{rulePropAddedOpen}, "/properties/zip"},
		{"A2 open + add property accepting anything", obj(propsA), obj(`,"properties":{"a":{"type":"string"},` + zipAny + `}`), nil, ""},
		{"A3 closed + add property", obj(propsA + closed), obj(propsAZip + closed), nil, ""},
		{"A4 partial (covered) + add property", obj(propsA + partStr), obj(propsAZip + partStr), nil, ""},
		{"A5 partial (not covered) + add property", obj(propsA + partWide), obj(propsAZip + partWide), []string{rulePropAddedPartial}, "/properties/zip"},
		{"A6 partial pattern (covered) + add property", obj(propsA + patStr), obj(propsAZip + patStr), nil, ""},
		{"A7 partial pattern (not covered) + add property", obj(propsA + patWide), obj(propsAZip + patWide), []string{rulePropAddedPartial}, "/properties/zip"},
		{"A8 unevaluatedProperties:false + add property", obj(propsA + uneval), obj(propsAZip + uneval), nil, ""},
		// Required property added by the reader.
		{"R1 open + add required property", obj(propsA), obj(propsAZip + `,"required":["zip"]`), []string{rulePropAddedOpen, ruleRequiredAttrAdded}, ""},
		{"R2 closed + add required property", obj(propsA + closed), obj(propsAZip + closed + `,"required":["zip"]`), []string{ruleRequiredPropAddedUnopen}, "/properties/zip"},
		{"R3 partial + add required property", obj(propsA + partStr), obj(propsAZip + partStr + `,"required":["zip"]`), []string{ruleRequiredPropAddedUnopen}, "/properties/zip"},
		{"R4 existing property made required", obj(propsAZip), obj(propsAZip + `,"required":["zip"]`), []string{ruleRequiredAttrAdded}, "/properties/zip"},
		{"R5 required dropped", obj(propsAZip + `,"required":["zip"]`), obj(propsAZip), nil, ""},
		{"R6 open + requires an undeclared name", obj(propsA), obj(propsA + `,"required":["zip"]`), []string{ruleRequiredAttrAdded}, "/properties/zip"},
		{"R7 closed + requires an undeclared name", obj(propsA + closed), obj(propsA + closed + `,"required":["zip"]`), []string{ruleRequiredPropAddedUnopen}, "/properties/zip"},
		// Property removed by the reader: the reader's model decides.
		{"D1 removed, reader open", obj(propsAZip), obj(propsA), nil, ""},
		{"D2 removed, reader closed", obj(propsAZip + closed), obj(propsA + closed), []string{rulePropRemovedClosed}, "/properties/zip"},
		{"D3 removed, reader partial (covers)", obj(propsAZip + partStr), obj(propsA + partStr), nil, ""},
		{"D4 removed, reader partial (does not cover)", obj(propsAZip + partInt), obj(propsA + partInt), []string{rulePropRemovedPartial}, "/properties/zip"},
		{"D5 removed, reader unevaluatedProperties:false", obj(propsAZip + uneval), obj(propsA + uneval), []string{rulePropRemovedClosed}, "/properties/zip"},
		// Property narrowed or widened (declared on both sides, any model).
		{"N1 property type changed", obj(propsAZip), obj(`,"properties":{"a":{"type":"string"},"zip":{"type":"integer"}}`), []string{ruleTypeChanged}, "/properties/zip"},
		{"N2 property narrowed", obj(`,"properties":{"zip":{"type":["string","null"]}}` + closed), obj(`,"properties":{"zip":{"type":"string"}}` + closed), []string{ruleTypeNarrowed}, "/properties/zip"},
		{"N3 property widened", obj(`,"properties":{"zip":{"type":"string"}}` + closed), obj(`,"properties":{"zip":{"type":["string","null"]}}` + closed), nil, ""},
		// Content model itself changed (properties neither side declares).
		{"M1 open -> closed", obj(propsA), obj(propsA + closed), []string{ruleAddlPropsRemoved}, "/additionalProperties"},
		{"M2 open -> partial", obj(propsA), obj(propsA + partStr), []string{ruleAddlPropsNarrowed}, "/additionalProperties"},
		{"M3 closed -> open", obj(propsA + closed), obj(propsA), nil, ""},
		{"M4 closed -> partial", obj(propsA + closed), obj(propsA + partStr), nil, ""},
		{"M5 partial -> wider partial", obj(propsA + partStr), obj(propsA + partWide), nil, ""},
		{"M6 partial -> narrower partial", obj(propsA + partWide), obj(propsA + partStr), []string{ruleAddlPropsNarrowed}, "/additionalProperties"},
		{"M7 partial -> closed", obj(propsA + partStr), obj(propsA + closed), []string{ruleAddlPropsRemoved}, "/additionalProperties"},
		{"M8 partial -> open", obj(propsA + partStr), obj(propsA), nil, ""},
		{"M9 open -> unevaluatedProperties:false", obj(propsA), obj(propsA + uneval), []string{ruleAddlPropsRemoved}, "/unevaluatedProperties"},
		{"M10 open -> pattern added", obj(propsA), obj(propsA + patStr), []string{rulePatternPropAdded}, "/patternProperties/^z"},
		{"M11 closed -> pattern added", obj(propsA + closed), obj(propsA + closed + patStr), nil, ""},
		{"M12 pattern narrowed", obj(propsA + patWide), obj(propsA + patStr), []string{rulePatternPropsNarrowed}, "/patternProperties/^z"},
		{"M13 pattern removed, reader closed", obj(propsA + patStr + closed), obj(propsA + closed), []string{rulePatternPropsNarrowed}, "/additionalProperties"},
	}
	// The table's Confluent, default and strict columns, row by row.
	doc := docTable(t, "rules-json.md", "| Row | Writer (old)")
	for _, tt := range tests {
		id, _, _ := strings.Cut(tt.row, " ")
		cells := doc[id]
		if len(cells) != 9 {
			t.Fatalf("row %s: rules-json.md has %q", id, cells)
		}
		for _, d := range draftsOf(tt.old, tt.new) {
			t.Run(tt.row+"/"+string(d), func(t *testing.T) {
				def := Check(Backward, mustJSONIn(t, d, tt.new, nil), []Version{{Version: 1, Schema: mustJSONIn(t, d, tt.old, nil)}})
				checkDocVerdict(t, id+" default", cells[6], def.Compatible())
				checkDocVerdict(t, id+" strict", cells[7], def.Under(StrictRules).Compatible())
				vs := jsonBackwardIn(t, d, tt.old, tt.new)
				got := rulesOf(vs)
				slices.Sort(got)
				want := slices.Clone(tt.wantRules)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("rules = %v, want %v%s", got, want, describe(vs))
				}
				if tt.wantPathAt != "" && vs[0].Path != tt.wantPathAt {
					t.Errorf("path = %q, want %q", vs[0].Path, tt.wantPathAt)
				}
				for _, v := range vs {
					if v.Direction != Reader || v.Version != 1 || v.Message == "" || v.Hint == "" {
						t.Errorf("incomplete violation %+v", v)
					}
				}
			})
		}
	}
}

// TestJSONRules triggers every rule and checks a compatible counterpart of
// the same change. Direction: BACKWARD (old writes, new reads).
func TestJSONRules(t *testing.T) {
	const (
		str = `{"type":"string"}`
		num = `{"type":"number"}`
		arr = `{"type":"array"}`
	)
	tests := []struct {
		rule     string
		old, bad string // bad breaks with rule
		good     string // a compatible change of the same kind
		path     string // path of the violation, when checked
	}{
		{ruleTypeChanged, str, `{"type":"integer"}`, `{"type":["string","integer"]}`, ""},
		{ruleTypeNarrowed, num, `{"type":"integer"}`, `{"type":["number","null"]}`, ""},
		{ruleTypeNarrowed, obj(`,"properties":{"a":{}}`), obj(`,"properties":{"a":false}`), obj(`,"properties":{"a":true}`), "/properties/a"},
		{ruleEnumNarrowed, `{"enum":["a","b"]}`, `{"enum":["a"]}`, `{"enum":["a","b","c"]}`, ""},
		{ruleEnumNarrowed, str, `{"type":"string","enum":["a"]}`, `{"type":"string","minLength":0}`, ""},
		{ruleEnumNarrowed, `{"const":"a"}`, `{"const":"b"}`, `{"type":"string","maxLength":1}`, ""},
		{ruleMaxLengthAdded, str, `{"type":"string","maxLength":5}`, `{"type":["string","null"]}`, ""},
		{ruleMaxLengthDecreased, `{"type":"string","maxLength":10}`, `{"type":"string","maxLength":5}`, `{"type":"string","maxLength":20}`, ""},
		{ruleMinLengthAdded, str, `{"type":"string","minLength":1}`, `{"type":"string","minLength":0}`, ""},
		{ruleMinLengthIncreased, `{"type":"string","minLength":1}`, `{"type":"string","minLength":2}`, str, ""},
		{rulePatternAdded, str, `{"type":"string","pattern":"^a"}`, str, ""},
		{rulePatternChanged, `{"type":"string","pattern":"^a"}`, `{"type":"string","pattern":"^b"}`, str, ""},
		{ruleFormatAdded, str, `{"type":"string","format":"email"}`, `{"type":"string","format":"no-such-format"}`, ""},
		{ruleFormatChanged, `{"type":"string","format":"email"}`, `{"type":"string","format":"uri"}`, str, ""},
		{ruleMaximumAdded, num, `{"type":"number","maximum":10}`, `{"type":"number","description":"no upper bound"}`, ""},
		{ruleMaximumDecreased, `{"type":"number","maximum":10}`, `{"type":"number","maximum":5}`, `{"type":"number","maximum":10.5}`, ""},
		{ruleMaximumDecreased, `{"type":"number","exclusiveMaximum":10}`, `{"type":"number","maximum":9}`, `{"type":"number","maximum":10}`, ""},
		{ruleMinimumAdded, num, `{"type":"number","minimum":0}`, num, ""},
		{ruleMinimumIncreased, `{"type":"number","minimum":0}`, `{"type":"number","minimum":1}`, `{"type":"number","minimum":-1}`, ""},
		{ruleExclMaxAdded, num, `{"type":"number","exclusiveMaximum":10}`, num, ""},
		{ruleExclMaxDecreased, `{"type":"number","maximum":10}`, `{"type":"number","exclusiveMaximum":10}`, `{"type":"number","exclusiveMaximum":10.001}`, ""},
		{ruleExclMaxDecreased, `{"type":"integer","exclusiveMaximum":10}`, `{"type":"integer","exclusiveMaximum":9}`, `{"type":"integer","maximum":9}`, ""},
		{ruleExclMinAdded, num, `{"type":"number","exclusiveMinimum":0}`, num, ""},
		{ruleExclMinIncreased, `{"type":"number","minimum":0}`, `{"type":"number","exclusiveMinimum":0}`, `{"type":"number","exclusiveMinimum":-1}`, ""},
		{ruleMultipleOfAdded, num, `{"type":"number","multipleOf":2}`, num, ""},
		{ruleMultipleOfAdded, `{"type":"integer"}`, `{"type":"integer","multipleOf":2}`, `{"type":"integer","multipleOf":1}`, ""},
		{ruleMultipleOfExpanded, `{"type":"number","multipleOf":2}`, `{"type":"number","multipleOf":4}`, `{"type":"number","multipleOf":1}`, ""},
		{ruleMultipleOfChanged, `{"type":"number","multipleOf":2}`, `{"type":"number","multipleOf":3}`, `{"type":"number","multipleOf":0.5}`, ""},

		{rulePropAddedOpen, obj(``), obj(`,"properties":{"zip":{"type":"string"}}`), obj(`,"properties":{"zip":{"description":"any"}}`), "/properties/zip"},
		{rulePropAddedPartial, obj(`,"additionalProperties":{"type":["string","null"]}`), obj(`,"properties":{"zip":{"type":"string"}},"additionalProperties":{"type":["string","null"]}`), obj(`,"properties":{"zip":{"type":["string","null","integer"]}},"additionalProperties":{"type":["string","null"]}`), "/properties/zip"},
		{rulePropRemovedClosed, obj(`,"properties":{"zip":{}},"additionalProperties":false`), obj(`,"additionalProperties":false`), obj(`,"properties":{"zip":{}},"additionalProperties":false`), "/properties/zip"},
		{rulePropRemovedPartial, obj(`,"properties":{"zip":{"type":"string"}},"additionalProperties":{"type":"integer"}`), obj(`,"additionalProperties":{"type":"integer"}`), obj(`,"additionalProperties":{"type":["integer","string"]}`), "/properties/zip"},
		{ruleRequiredAttrAdded, obj(`,"properties":{"a":{}}`), obj(`,"properties":{"a":{}},"required":["a"]`), obj(`,"properties":{"a":{}}`), "/properties/a"},
		{ruleRequiredPropAddedUnopen, obj(`,"additionalProperties":false`), obj(`,"properties":{"a":{}},"required":["a"],"additionalProperties":false`), obj(`,"properties":{"a":{}},"additionalProperties":false`), "/properties/a"},
		{ruleAddlPropsRemoved, obj(``), obj(`,"additionalProperties":false`), obj(`,"additionalProperties":true`), "/additionalProperties"},
		{ruleAddlPropsNarrowed, obj(`,"additionalProperties":{"type":["string","number"]}`), obj(`,"additionalProperties":{"type":"string"}`), obj(`,"additionalProperties":{"type":["string","number","null"]}`), "/additionalProperties"},
		{rulePatternPropAdded, obj(``), obj(`,"patternProperties":{"^x_":{"type":"string"}}`), obj(`,"patternProperties":{"^x_":true}`), "/patternProperties/^x_"},
		{rulePatternPropsNarrowed, obj(`,"patternProperties":{"^x_":{"type":["string","null"]}}`), obj(`,"patternProperties":{"^x_":{"type":"string"}}`), obj(`,"patternProperties":{"^x_":{"type":["string","null","integer"]},"^y_":{}}`), "/patternProperties/^x_"},
		{rulePropertyNamesNarrowed, obj(``), obj(`,"propertyNames":{"maxLength":3}`), obj(`,"propertyNames":{"type":"string"}`), "/propertyNames"},
		{rulePropertyNamesNarrowed, obj(`,"properties":{"long_name":{}},"additionalProperties":false`), obj(`,"properties":{"long_name":{}},"additionalProperties":false,"propertyNames":{"maxLength":3}`), obj(`,"properties":{"long_name":{}},"additionalProperties":false,"propertyNames":{"maxLength":9}`), "/propertyNames"},
		{ruleMaxPropsAdded, obj(``), obj(`,"maxProperties":3`), obj(`,"minProperties":0`), ""},
		{ruleMaxPropsDecreased, obj(`,"maxProperties":3`), obj(`,"maxProperties":2`), obj(`,"maxProperties":4`), ""},
		{ruleMinPropsAdded, obj(``), obj(`,"minProperties":1`), obj(`,"minProperties":0`), ""},
		{ruleMinPropsIncreased, obj(`,"properties":{"a":{}},"required":["a"]`), obj(`,"properties":{"a":{}},"required":["a"],"minProperties":2`), obj(`,"properties":{"a":{}},"required":["a"],"minProperties":1`), ""},
		{ruleDepArrayAdded, obj(``), obj(`,"dependentRequired":{"a":["b"]}`), obj(``), "/dependentRequired/a"},
		{ruleDepArrayExtended, obj(`,"dependentRequired":{"a":["b"]}`), obj(`,"dependentRequired":{"a":["b","c"]}`), obj(`,"dependentRequired":{"a":[]}`), "/dependentRequired/a"},
		{ruleDepSchemaAdded, obj(``), obj(`,"dependentSchemas":{"a":{"required":["b"]}}`), obj(`,"dependentSchemas":{"a":true}`), "/dependentSchemas/a"},
		{ruleDepSchemaNarrowed, obj(`,"dependentSchemas":{"a":{"properties":{"b":{"type":["string","null"]}}}}`), obj(`,"dependentSchemas":{"a":{"properties":{"b":{"type":"string"}}}}`), obj(`,"dependentSchemas":{"a":{"properties":{"b":{}}}}`), "/dependentSchemas/a"},

		{ruleItemAddedOpen, `{"type":"array","prefixItems":[{"type":"string"}]}`, `{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}]}`, `{"type":"array","prefixItems":[{"type":"string"},true]}`, "/prefixItems/1"},
		{ruleItemAddedPartial, `{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":["integer","null"]}}`, `{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":{"type":["integer","null"]}}`, `{"type":"array","prefixItems":[{"type":"string"},{"type":["integer","null"]}],"items":{"type":["integer","null"]}}`, "/prefixItems/1"},
		{ruleItemRemovedClosed, `{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}`, `{"type":"array","prefixItems":[{"type":"string"}],"items":false}`, `{"type":"array","prefixItems":[{"type":"string"}]}`, "/items"},
		{ruleItemRemovedPartial, `{"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false}`, `{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"string"}}`, `{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"integer"}}`, "/items"},
		{ruleAddlItemsRemoved, `{"type":"array","prefixItems":[{"type":"string"}]}`, `{"type":"array","prefixItems":[{"type":"string"}],"items":false}`, `{"type":"array","prefixItems":[{"type":"string"}],"items":true}`, "/items"},
		{ruleAddlItemsNarrowed, `{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":["integer","null"]}}`, `{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"integer"}}`, `{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":["integer","null","string"]}}`, "/items"},
		{ruleTypeChanged, `{"type":"array","items":{"type":"string"}}`, `{"type":"array","items":{"type":"integer"}}`, `{"type":"array","items":{"type":["string","integer"]}}`, "/items"},
		{ruleMaxItemsAdded, arr, `{"type":"array","maxItems":3}`, arr, ""},
		{ruleMaxItemsDecreased, `{"type":"array","maxItems":3}`, `{"type":"array","maxItems":2}`, `{"type":"array","maxItems":3,"minItems":0}`, ""},
		{ruleMinItemsAdded, arr, `{"type":"array","minItems":1}`, `{"type":"array","minItems":0}`, ""},
		{ruleMinItemsIncreased, `{"type":"array","minItems":1}`, `{"type":"array","minItems":2}`, arr, ""},
		{ruleUniqueItemsAdded, arr, `{"type":"array","uniqueItems":true}`, `{"type":"array","uniqueItems":false}`, ""},
		{ruleContainsAdded, arr, `{"type":"array","contains":{"type":"string"}}`, `{"type":"array","contains":{"type":"string"},"minContains":0}`, "/contains"},
		{ruleContainsNarrowed, `{"type":"array","contains":{"type":["string","integer"]}}`, `{"type":"array","contains":{"type":"string"}}`, `{"type":"array","contains":{"type":["string","integer","null"]}}`, "/contains"},

		{ruleProductExtended, `{"allOf":[{"type":"object"}]}`, `{"allOf":[{"type":"object"},{"required":["a"]}]}`, `{"allOf":[{"type":"object"},{"properties":{"a":true}}]}`, "/allOf/1"},
		{ruleSumNarrowed, `{"anyOf":[{"type":"string"},{"type":"integer"}]}`, `{"anyOf":[{"type":"string"}]}`, `{"anyOf":[{"type":"string"},{"type":"integer"},{"type":"null"}]}`, "/anyOf"},
		{ruleCombinedChanged, `{"type":"string"}`, `{"anyOf":[{"type":"integer"},{"type":"null"}]}`, `{"anyOf":[{"type":"string"},{"type":"null"}]}`, "/anyOf"},
		{ruleCombinedChanged, `{"anyOf":[{"type":"string"},{"type":"integer"}]}`, `{"oneOf":[{"type":"string"}]}`, `{"oneOf":[{"type":"string"},{"type":"integer"}]}`, "/oneOf"},
		{ruleOneOfOverlap, `{"oneOf":[{"type":"object","required":["a"]},{"type":"null"}]}`, `{"oneOf":[{"type":"object","required":["a"]},{"type":"null"},{"type":"object","required":["b"]}]}`, `{"oneOf":[{"type":"object","required":["a"]},{"type":"null"},{"type":"string"}]}`, "/oneOf/2"},
		{ruleNotAdded, `{"type":["string","integer"]}`, `{"type":["string","integer"],"not":{"type":"string"}}`, `{"type":["string","integer"],"not":{"type":"boolean"}}`, "/not"},
		{ruleNotExtended, `{"not":{"type":"string"}}`, `{"not":{"type":["string","integer"]}}`, `{"not":{"type":"string","maxLength":3}}`, "/not"},
		{ruleConditional, obj(``), obj(`,"if":{"required":["a"]},"then":{"required":["b"]}`), obj(`,"if":{"required":["a"]},"then":true`), "/if"},
	}
	// The tuple and dependency rules in the keywords of draft-07 (items
	// as a list, additionalItems, dependencies) and of 2019-09 (items as a
	// list closed by unevaluatedItems).
	tests = append(tests, []struct {
		rule     string
		old, bad string
		good     string
		path     string
	}{
		{ruleItemAddedOpen, `{"type":"array","items":[{"type":"string"}]}`, `{"type":"array","items":[{"type":"string"},{"type":"integer"}]}`, `{"type":"array","items":[{"type":"string"},{}]}`, "/items/1"},
		{ruleItemAddedPartial, `{"type":"array","items":[{"type":"string"}],"additionalItems":{"type":["integer","null"]}}`, `{"type":"array","items":[{"type":"string"},{"type":"integer"}],"additionalItems":{"type":["integer","null"]}}`, `{"type":"array","items":[{"type":"string"},{"type":["integer","null"]}],"additionalItems":{"type":["integer","null"]}}`, "/items/1"},
		{ruleItemRemovedClosed, `{"type":"array","items":[{"type":"string"},{"type":"integer"}],"additionalItems":false}`, `{"type":"array","items":[{"type":"string"}],"additionalItems":false}`, `{"type":"array","items":[{"type":"string"}]}`, "/additionalItems"},
		{ruleItemRemovedClosed, `{"type":"array","items":[{"type":"string"},{"type":"integer"}],"unevaluatedItems":false}`, `{"type":"array","items":[{"type":"string"}],"unevaluatedItems":false}`, `{"type":"array","items":[{"type":"string"}],"unevaluatedItems":{"type":"integer"}}`, "/unevaluatedItems"},
		{ruleItemRemovedPartial, `{"type":"array","items":[{"type":"string"},{"type":"integer"}],"additionalItems":false}`, `{"type":"array","items":[{"type":"string"}],"additionalItems":{"type":"string"}}`, `{"type":"array","items":[{"type":"string"}],"additionalItems":{"type":"integer"}}`, "/additionalItems"},
		{ruleAddlItemsRemoved, `{"type":"array","items":[{"type":"string"}]}`, `{"type":"array","items":[{"type":"string"}],"additionalItems":false}`, `{"type":"array","items":[{"type":"string"}],"additionalItems":{}}`, "/additionalItems"},
		{ruleAddlItemsNarrowed, `{"type":"array","items":[{"type":"string"}],"additionalItems":{"type":["integer","null"]}}`, `{"type":"array","items":[{"type":"string"}],"additionalItems":{"type":"integer"}}`, `{"type":"array","items":[{"type":"string"}],"additionalItems":{"type":["integer","null","string"]}}`, "/additionalItems"},
		{ruleAddlItemsNarrowed, `{"type":"array","items":[{"type":"string"}],"unevaluatedItems":{"type":["integer","null"]}}`, `{"type":"array","items":[{"type":"string"}],"unevaluatedItems":{"type":"integer"}}`, `{"type":"array","items":[{"type":"string"},{"type":["integer","null"]}],"unevaluatedItems":{"type":["integer","null"]}}`, "/unevaluatedItems"},
		{ruleDepArrayAdded, obj(``), obj(`,"dependencies":{"a":["b"]}`), obj(``), "/dependencies/a"},
		{ruleDepArrayExtended, obj(`,"dependencies":{"a":["b","c"]}`), obj(`,"dependencies":{"a":["b","c","d"]}`), obj(`,"dependencies":{"a":["b"]}`), "/dependencies/a"},
		{ruleDepSchemaAdded, obj(``), obj(`,"dependencies":{"a":{"required":["b"]}}`), obj(`,"dependencies":{"a":{}}`), "/dependencies/a"},
		{ruleDepSchemaNarrowed, obj(`,"dependencies":{"a":{"properties":{"b":{"type":["string","null"]}}}}`), obj(`,"dependencies":{"a":{"properties":{"b":{"type":"string"}}}}`), obj(`,"dependencies":{"a":{"properties":{"b":{}}}}`), "/dependencies/a"},
	}...)
	doc := docTable(t, "rules-json.md", "| Rule | Reported when the reader")
	docRow := func(rule string) []string {
		for k, cells := range doc {
			if strings.Contains(k, "`"+rule+"`") {
				return cells
			}
		}
		// The content-model rules have their own table (and test).
		return make([]string, 7)
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		cells := docRow(tt.rule)
		for _, d := range draftsOf(tt.old, tt.bad, tt.good) {
			t.Run(tt.rule+"/"+string(d), func(t *testing.T) {
				// The table's default and strict columns for the change.
				def := Check(Backward, mustJSONIn(t, d, tt.bad, nil), []Version{{Version: 1, Schema: mustJSONIn(t, d, tt.old, nil)}})
				checkDocVerdict(t, tt.rule+" default", cells[4], def.Compatible())
				checkDocVerdict(t, tt.rule+" strict", cells[5], def.Under(StrictRules).Compatible())
				jsonBackward := func(t *testing.T, old, next string) []Violation {
					t.Helper()
					return jsonBackwardIn(t, d, old, next)
				}
				vs := jsonBackward(t, tt.old, tt.bad)
				if !hasRule(vs, tt.rule) {
					t.Fatalf("%s -> %s: want %s, got%s", tt.old, tt.bad, tt.rule, describe(vs))
				}
				covered[tt.rule] = true
				// compat cannot tell which schema is newer: messages and hints
				// speak of reader and writer only.
				for _, v := range vs {
					for _, word := range []string{"added", "removed", "became", "old", "new", "no longer", "increased", "decreased", "expanded", "changed from"} {
						if strings.Contains(v.Message+" "+v.Hint, word) {
							t.Errorf("%s: %q in %q", v.Rule, word, v)
						}
					}
				}
				if tt.path != "" {
					i := slices.IndexFunc(vs, func(v Violation) bool { return v.Rule == tt.rule })
					if vs[i].Path != tt.path {
						t.Errorf("path = %q, want %q", vs[i].Path, tt.path)
					}
				}
				if vs := jsonBackward(t, tt.old, tt.good); len(vs) != 0 {
					t.Errorf("compatible counterpart %s -> %s reported%s", tt.old, tt.good, describe(vs))
				}
				// Identical schemas are always compatible.
				if vs := jsonBackward(t, tt.bad, tt.bad); len(vs) != 0 {
					t.Errorf("identical schemas reported%s", describe(vs))
				}
			})
		}
	}
	// Every rule in the rule table is exercised (the remaining ones have
	// their own tests).
	covered[ruleUnverifiable] = true // TestJSONDeepNesting
	for rule := range jsonHints {
		if !covered[rule] {
			t.Errorf("rule %s is not exercised", rule)
		}
	}
}

func TestJSONLevels(t *testing.T) {
	v1 := mustJSON(t, `{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`, nil)
	// v2 adds an optional property to a closed model: BACKWARD yes, FORWARD no.
	v2 := mustJSON(t, `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}},"additionalProperties":false}`, nil)
	earlier := []Version{{Version: 1, Schema: v1}}
	tests := []struct {
		level Level
		want  []Direction
	}{
		{None, nil},
		{Backward, nil},
		{BackwardTransitive, nil},
		{Forward, []Direction{Writer}},
		{ForwardTransitive, []Direction{Writer}},
		{Full, []Direction{Writer}},
		{FullTransitive, []Direction{Writer}},
	}
	for _, tt := range tests {
		t.Run(string(tt.level), func(t *testing.T) {
			res := strictCheck(tt.level, v2, earlier)
			var got []Direction
			for _, v := range res.Violations {
				got = append(got, v.Direction)
				if v.Rule != rulePropRemovedClosed || v.Path != "/properties/b" || v.Version != 1 {
					t.Errorf("unexpected violation %s", v)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("directions = %v, want %v%s", got, tt.want, describe(res.Violations))
			}
		})
	}
}

// Only an older version breaks: the change from v1 to v2 was registered
// under NONE, and v3 only repeats v2.
func TestJSONTransitiveOnlyOlderBreaks(t *testing.T) {
	v1 := mustJSON(t, `{"type":"object","properties":{"name":{"type":"string","maxLength":20}}}`, nil)
	v2 := mustJSON(t, `{"type":"object","properties":{"name":{"type":"string","maxLength":10}}}`, nil)
	v3 := mustJSON(t, `{"type":"object","properties":{"name":{"type":"string","maxLength":10}},"description":"v3"}`, nil)
	earlier := []Version{{Version: 1, Schema: v1}, {Version: 2, Schema: v2}}
	if res := strictCheck(Backward, v3, earlier); !res.Compatible() {
		t.Fatalf("BACKWARD against v2 only: %s", describe(res.Violations))
	}
	for _, level := range []Level{BackwardTransitive, FullTransitive} {
		res := strictCheck(level, v3, earlier)
		if len(res.Violations) != 1 {
			t.Fatalf("%s: want one violation, got%s", level, describe(res.Violations))
		}
		v := res.Violations[0]
		if v.Rule != ruleMaxLengthDecreased || v.Version != 1 || v.Direction != Reader || v.Path != "/properties/name" {
			t.Errorf("%s: got %s", level, v)
		}
	}
	// FORWARD_TRANSITIVE: v3 writes, v1 reads; a shorter max is fine for it.
	if res := strictCheck(ForwardTransitive, v3, earlier); !res.Compatible() {
		t.Errorf("FORWARD_TRANSITIVE: %s", describe(res.Violations))
	}
}

func TestJSONMultipleViolations(t *testing.T) {
	old := `{"type":"object","properties":{
		"id":{"type":"integer"},
		"name":{"type":"string"},
		"tags":{"type":"array","items":{"type":"string"}},
		"address":{"type":"object","properties":{"zip":{"type":"string"}},"additionalProperties":false}
	}}`
	next := `{"type":"object","properties":{
		"id":{"type":"string"},
		"name":{"type":"string","maxLength":10},
		"tags":{"type":"array","items":{"type":"string"},"maxItems":3},
		"address":{"type":"object","properties":{"zip":{"type":"integer"}},"required":["zip"],"additionalProperties":false}
	},"required":["id"]}`
	vs := jsonBackward(t, old, next)
	want := map[string]string{
		"/properties/id":                     ruleTypeChanged,
		"/properties/name":                   ruleMaxLengthDecreased + "|" + ruleMaxLengthAdded,
		"/properties/tags":                   ruleMaxItemsAdded,
		"/properties/address/properties/zip": ruleTypeChanged,
	}
	for path, rules := range want {
		if !slices.ContainsFunc(vs, func(v Violation) bool {
			return v.Path == path && slices.Contains(strings.Split(rules, "|"), v.Rule)
		}) {
			t.Errorf("no %s at %s%s", rules, path, describe(vs))
		}
	}
	if !hasRule(vs, ruleRequiredAttrAdded) {
		t.Errorf("no %s%s", ruleRequiredAttrAdded, describe(vs))
	}
	if len(vs) < 6 {
		t.Errorf("want at least 6 violations, got %d%s", len(vs), describe(vs))
	}
}

// TestJSONDrafts checks rules in each draft's own keywords, and that a
// schema without $schema is read as draft-07.
func TestJSONDrafts(t *testing.T) {
	const (
		d7  = `"$schema":"http://json-schema.org/draft-07/schema#",`
		d19 = `"$schema":"https://json-schema.org/draft/2019-09/schema",`
		d20 = `"$schema":"https://json-schema.org/draft/2020-12/schema",`
	)
	tests := []struct {
		name      string
		old, next string
		rule      string // "" for compatible
		path      string
	}{
		{"tuple item removed from closed tuple",
			`{` + d7 + `"type":"array","items":[{"type":"string"},{"type":"integer"}],"additionalItems":false}`,
			`{` + d7 + `"type":"array","items":[{"type":"string"}],"additionalItems":false}`,
			ruleItemRemovedClosed, "/additionalItems"},
		{"additionalItems narrowed",
			`{` + d7 + `"type":"array","items":[{"type":"string"}],"additionalItems":{"type":["integer","null"]}}`,
			`{` + d7 + `"type":"array","items":[{"type":"string"}],"additionalItems":{"type":"integer"}}`,
			ruleAddlItemsNarrowed, "/additionalItems"},
		{"items schema widened",
			`{` + d7 + `"type":"array","items":{"type":"integer"}}`,
			`{` + d7 + `"type":"array","items":{"type":"number"}}`, "", ""},
		{"dependencies array added",
			`{` + d7 + `"type":"object"}`,
			`{` + d7 + `"type":"object","dependencies":{"a":["b"]}}`,
			ruleDepArrayAdded, "/dependencies/a"},
		{"dependencies schema added",
			`{` + d7 + `"type":"object"}`,
			`{` + d7 + `"type":"object","dependencies":{"a":{"required":["b"]}}}`,
			ruleDepSchemaAdded, "/dependencies/a"},
		{"exclusiveMaximum (numeric, draft-06+ style) decreased",
			`{` + d7 + `"type":"number","exclusiveMaximum":10}`,
			`{` + d7 + `"type":"number","exclusiveMaximum":5}`,
			ruleExclMaxDecreased, ""},
		{"draft-04 boolean exclusiveMaximum",
			`{"$schema":"http://json-schema.org/draft-04/schema#","type":"number","maximum":10,"exclusiveMaximum":true}`,
			`{"$schema":"http://json-schema.org/draft-04/schema#","type":"number","maximum":10}`, "", ""},
		{"definitions via $ref narrowed",
			`{` + d7 + `"type":"object","properties":{"a":{"$ref":"#/definitions/A"}},"definitions":{"A":{"type":["string","null"]}}}`,
			`{` + d7 + `"type":"object","properties":{"a":{"$ref":"#/definitions/A"}},"definitions":{"A":{"type":"string"}}}`,
			ruleTypeNarrowed, "/definitions/A"},
		{"$ref siblings are ignored in draft-07",
			`{` + d7 + `"type":"object","properties":{"a":{"$ref":"#/definitions/A"}},"definitions":{"A":{"type":"string"}}}`,
			`{` + d7 + `"type":"object","properties":{"a":{"$ref":"#/definitions/A","maxLength":1}},"definitions":{"A":{"type":"string"}}}`,
			"", ""},
		{"draft-07 to 2020-12, same meaning",
			`{` + d7 + `"type":"array","items":[{"type":"string"}],"additionalItems":false}`,
			`{` + d20 + `"type":"array","prefixItems":[{"type":"string"}],"items":false}`, "", ""},
		{"2020-12 $ref siblings apply",
			`{` + d20 + `"type":"object","properties":{"a":{"$ref":"#/$defs/A"}},"$defs":{"A":{"type":"string"}}}`,
			`{` + d20 + `"type":"object","properties":{"a":{"$ref":"#/$defs/A","maxLength":1}},"$defs":{"A":{"type":"string"}}}`,
			ruleMaxLengthAdded, "/properties/a"},
		{"no $schema is draft-07: a tuple as items registers and is checked",
			`{"type":"array","items":[{"type":"string"},{"type":"number"}],"additionalItems":false}`,
			`{"type":"array","items":[{"type":"string"},{"type":"integer"}],"additionalItems":false}`,
			ruleTypeNarrowed, "/items/1"},
		{"no $schema is draft-07: $ref siblings are ignored",
			`{"type":"object","properties":{"a":{"$ref":"#/definitions/A"}},"definitions":{"A":{"type":"string"}}}`,
			`{"type":"object","properties":{"a":{"$ref":"#/definitions/A","maxLength":1}},"definitions":{"A":{"type":"string"}}}`,
			"", ""},
		{"no $schema is draft-07: additionalItems without a tuple is no keyword",
			`{"type":"array","items":{"type":"string"}}`,
			`{"type":"array","items":{"type":"string"},"additionalItems":false}`,
			"", ""},
		{"2019-09: a tuple closed by unevaluatedItems loses a position",
			`{` + d19 + `"type":"array","items":[{"type":"string"},{"type":"integer"}],"unevaluatedItems":false}`,
			`{` + d19 + `"type":"array","items":[{"type":"string"}],"unevaluatedItems":false}`,
			ruleItemRemovedClosed, "/unevaluatedItems"},
		{"2020-12: a tuple typed by unevaluatedItems gains a position it covers",
			`{` + d20 + `"type":"array","prefixItems":[{"type":"string"}],"unevaluatedItems":{"type":"integer"}}`,
			`{` + d20 + `"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"unevaluatedItems":{"type":"integer"}}`,
			"", ""},
		{"2020-12: a tuple typed by unevaluatedItems gains a position it does not cover",
			`{` + d20 + `"type":"array","prefixItems":[{"type":"string"}],"unevaluatedItems":{"type":["integer","null"]}}`,
			`{` + d20 + `"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"unevaluatedItems":{"type":["integer","null"]}}`,
			ruleItemAddedPartial, "/prefixItems/1"},
		{"2020-12: contains makes items evaluated, unevaluatedItems does not bound them",
			`{` + d20 + `"type":"array","prefixItems":[{"type":"string"}],"contains":{"type":"boolean"},"unevaluatedItems":{"type":"integer"}}`,
			`{` + d20 + `"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"contains":{"type":"boolean"},"unevaluatedItems":{"type":"integer"}}`,
			ruleItemAddedOpen, "/prefixItems/1"},
		{"draft-06: const and numeric exclusiveMinimum",
			`{"$schema":"http://json-schema.org/draft-06/schema#","type":"object","properties":{"k":{"const":"a"},"n":{"type":"number","exclusiveMinimum":0}}}`,
			`{"$schema":"http://json-schema.org/draft-06/schema#","type":"object","properties":{"k":{"const":"a"},"n":{"type":"number","exclusiveMinimum":1}}}`,
			ruleExclMinIncreased, "/properties/n"},
		{"draft-04: boolean exclusiveMinimum added",
			`{"$schema":"http://json-schema.org/draft-04/schema#","type":"number","minimum":0}`,
			`{"$schema":"http://json-schema.org/draft-04/schema#","type":"number","minimum":0,"exclusiveMinimum":true}`,
			ruleExclMinIncreased, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := jsonBackward(t, tt.old, tt.next)
			if tt.rule == "" {
				if len(vs) != 0 {
					t.Fatalf("want compatible, got%s", describe(vs))
				}
				return
			}
			i := slices.IndexFunc(vs, func(v Violation) bool { return v.Rule == tt.rule })
			if i < 0 {
				t.Fatalf("want %s, got%s", tt.rule, describe(vs))
			}
			if tt.path != "" && vs[i].Path != tt.path {
				t.Errorf("path = %q, want %q", vs[i].Path, tt.path)
			}
		})
	}
}

func TestJSONReferences(t *testing.T) {
	const order = `{"type":"object","properties":{"ship_to":{"$ref":"address.json"},"bill_to":{"$ref":"https://example.com/schemas/address.json"}}}`
	addrV1 := `{"type":"object","properties":{"zip":{"type":"string"},"country":{"$ref":"country.json"}}}`
	addrV2 := `{"type":"object","properties":{"zip":{"type":"integer"},"country":{"$ref":"country.json"}}}`
	country := `{"type":"string","enum":["DE","FR"]}`
	refs := func(addr string) map[string]string {
		return map[string]string{
			"address.json": addr, "https://example.com/schemas/address.json": addr, "country.json": country,
		}
	}
	v1 := mustJSON(t, order, refs(addrV1))
	v2 := mustJSON(t, order, refs(addrV2))
	res := strictCheck(Backward, v2, []Version{{Version: 1, Schema: v1}})
	var paths []string
	for _, v := range res.Violations {
		if v.Rule != ruleTypeChanged {
			t.Errorf("unexpected %s", v)
		}
		paths = append(paths, v.Path)
	}
	slices.Sort(paths)
	want := []string{
		"address.json#/properties/zip", // as the $ref wrote it, not under handoff's invented base URL
		"https://example.com/schemas/address.json#/properties/zip",
	}
	if !slices.Equal(paths, want) {
		t.Errorf("paths = %q, want %q", paths, want)
	}
	if err := v1.Validate([]byte(`{"ship_to":{"zip":"10115","country":"DE"}}`)); err != nil {
		t.Errorf("valid payload: %v", err)
	}
	err := v1.Validate([]byte(`{"bill_to":{"country":"XX"}}`))
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Path != "/bill_to/country" || ve.Rule != "enum" {
		t.Errorf("invalid payload: %v", err)
	}

	// A document with its own $id resolves relative references by name.
	withID := `{"$id":"https://acme.test/schemas/order.json","properties":{"a":{"$ref":"address.json"}}}`
	if _, err := Parse(Schema{Type: JSON, Text: withID, References: refs(addrV1)}); err != nil {
		t.Errorf("relative reference under $id: %v", err)
	}
	// Nothing is fetched: a reference that is not supplied does not parse.
	_, err = Parse(Schema{Type: JSON, Text: `{"$ref":"https://json.schemastore.org/package.json"}`})
	var pe *ParseError
	if !errors.As(err, &pe) || !strings.Contains(pe.Reason, "not among the schema's references") {
		t.Errorf("missing reference: %v", err)
	}
}

func TestJSONRecursive(t *testing.T) {
	tree := func(value string) string {
		return `{"$defs":{"node":{"type":"object","properties":{"value":` + value + `,"children":{"type":"array","items":{"$ref":"#/$defs/node"}},"parent":{"$ref":"#/$defs/node"}}}},"$ref":"#/$defs/node"}`
	}
	self := `{"type":"object","properties":{"value":{"type":"integer"},"next":{"$ref":"#"}}}`
	tests := []struct {
		name      string
		old, next string
		rule      string
		path      string
	}{
		{"widened", tree(`{"type":"integer"}`), tree(`{"type":"number"}`), "", ""},
		{"changed", tree(`{"type":"integer"}`), tree(`{"type":"string"}`), ruleTypeChanged, "/$defs/node/properties/value"},
		{"self reference identical", self, self, "", ""},
		{"self reference changed", self, strings.Replace(self, "integer", "string", 1), ruleTypeChanged, "/properties/value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, level := range []Level{Backward, Full} {
				vs := strictCheck(level, mustJSON(t, tt.next, nil), []Version{{Version: 1, Schema: mustJSON(t, tt.old, nil)}}).Violations
				if level == Full {
					continue // terminates; the verdict is checked for BACKWARD
				}
				if tt.rule == "" {
					if len(vs) != 0 {
						t.Fatalf("want compatible, got%s", describe(vs))
					}
					continue
				}
				if len(vs) != 1 || vs[0].Rule != tt.rule || vs[0].Path != tt.path {
					t.Fatalf("want one %s at %s, got%s", tt.rule, tt.path, describe(vs))
				}
			}
		})
	}
}

func TestJSONDeepNesting(t *testing.T) {
	nest := func(leaf string, depth int) string {
		return strings.Repeat(`{"type":"object","properties":{"a":`, depth) + leaf + strings.Repeat(`}}`, depth)
	}
	old := mustJSON(t, nest(`{"type":"string"}`, jsonMaxDepth+10), nil)
	next := mustJSON(t, nest(`{"type":"integer"}`, jsonMaxDepth+10), nil)
	vs := strictCheck(Backward, next, []Version{{Version: 1, Schema: old}}).Violations
	if len(vs) != 1 || vs[0].Rule != ruleUnverifiable {
		t.Fatalf("want %s, got%s", ruleUnverifiable, describe(vs))
	}
	// Below the limit the real rule is found.
	old = mustJSON(t, nest(`{"type":"string"}`, 20), nil)
	next = mustJSON(t, nest(`{"type":"integer"}`, 20), nil)
	vs = strictCheck(Backward, next, []Version{{Version: 1, Schema: old}}).Violations
	if len(vs) != 1 || vs[0].Rule != ruleTypeChanged {
		t.Fatalf("want %s, got%s", ruleTypeChanged, describe(vs))
	}
}

func TestJSONValidate(t *testing.T) {
	const schema = `{"type":"object","properties":{
		"id":{"type":"integer","minimum":1},
		"email":{"type":"string","format":"email"},
		"tags":{"type":"array","items":{"type":"string","maxLength":3}},
		"address":{"type":"object","properties":{"zip":{"type":"string","pattern":"^[0-9]{5}$"}},"required":["zip"],"additionalProperties":false}
	},"required":["id"]}`
	p := mustJSON(t, schema, nil)
	tests := []struct {
		payload    string
		path, rule string // rule "" means valid
	}{
		{`{"id":1}`, "", ""},
		{`{"id":1,"email":"a@b.example","tags":["x"],"address":{"zip":"10115"}}`, "", ""},
		{`{}`, "", "required"},
		{`{"id":0}`, "/id", "minimum"},
		{`{"id":"1"}`, "/id", "type"},
		{`{"id":1,"email":"nope"}`, "/email", "format"},
		{`{"id":1,"tags":["ok","toolong"]}`, "/tags/1", "maxLength"},
		{`{"id":1,"address":{"zip":"1"}}`, "/address/zip", "pattern"},
		{`{"id":1,"address":{}}`, "/address", "required"},
		{`{"id":1,"address":{"zip":"10115","x":1}}`, "/address", "additionalProperties"},
		{`{"id":1`, "", "json"},
		{`{"id":1} {}`, "", "json"},
		{`[]`, "", "type"},
	}
	for _, tt := range tests {
		t.Run(tt.payload, func(t *testing.T) {
			err := p.Validate([]byte(tt.payload))
			if tt.rule == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalidPayload) {
				t.Fatalf("want *ValidationError, got %v", err)
			}
			if ve.Path != tt.path || ve.Rule != tt.rule || ve.Reason == "" {
				t.Errorf("got path %q rule %q (%s), want path %q rule %q", ve.Path, ve.Rule, ve.Reason, tt.path, tt.rule)
			}
		})
	}
}

func TestJSONParseErrors(t *testing.T) {
	tests := []struct {
		name, text     string
		refs           map[string]string
		location, want string // want: part of the reason
	}{
		{"not JSON", `{"type":`, nil, "", "not a JSON document"},
		{"trailing data", `{} {}`, nil, "", "not a JSON document"},
		{"bad type name", `{"properties":{"a":{"type":"strin"}}}`, nil, "/properties/a/type", "meta-schema"},
		{"minLength negative", `{"minLength":-1}`, nil, "/minLength", "meta-schema"},
		{"bad pattern", `{"properties":{"a":{"pattern":"("}}}`, nil, "/properties/a/pattern", "regex"},
		{"missing $defs target", `{"$ref":"#/$defs/nope"}`, nil, "", "not found"},
		{"missing reference", `{"$ref":"other.json"}`, nil, "", "not among the schema's references"},
		{"reference not JSON", `{"$ref":"other.json"}`, map[string]string{"other.json": `{`}, "", "not a JSON document"},
		{"unknown draft", `{"$schema":"https://example.com/my-draft"}`, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(Schema{Type: JSON, Text: tt.text, References: tt.refs})
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalidSchema) {
				t.Fatalf("want *ParseError, got %v", err)
			}
			if pe.Location != tt.location || !strings.Contains(pe.Reason, tt.want) {
				t.Errorf("got location %q reason %q, want location %q reason containing %q", pe.Location, pe.Reason, tt.location, tt.want)
			}
		})
	}
}

func TestJSONCanonical(t *testing.T) {
	a := mustJSON(t, "{\n  \"type\": \"object\",\n  \"properties\": { \"b\": {}, \"a\": {} }\n}", nil)
	b := mustJSON(t, `{"type":"object","properties":{"b":{},"a":{}}}`, nil)
	if a.Canonical() != b.Canonical() || a.Canonical() != `{"type":"object","properties":{"b":{},"a":{}}}` {
		t.Errorf("canonical forms differ: %s vs %s", a.Canonical(), b.Canonical())
	}
}

// Boolean schemas and the default draft.
func TestJSONBooleanSchemas(t *testing.T) {
	tests := []struct {
		old, next string
		ok        bool
	}{
		{`true`, `{}`, true},
		{`false`, `{"type":"string"}`, true},
		{`{"type":"string"}`, `true`, true},
		{`{"type":"string"}`, `false`, false},
		{`{"type":"boolean"}`, `{"enum":[true,false]}`, true},
		{`{"type":["boolean","null"]}`, `{"enum":[true,false]}`, false},
	}
	for _, tt := range tests {
		vs := jsonBackward(t, tt.old, tt.next)
		if (len(vs) == 0) != tt.ok {
			t.Errorf("%s -> %s: compatible=%v, want %v%s", tt.old, tt.next, len(vs) == 0, tt.ok, describe(vs))
		}
	}
}

// A schema without $schema is read as Schema.DefaultDraft: draft-07 when
// unset, as Confluent's registry reads it.
func TestJSONDefaultDraft(t *testing.T) {
	tuple := `{"items":[{"type":"string"},{"type":"number"}],"additionalItems":false}`
	p := mustJSON(t, tuple, nil)
	if err := p.Validate([]byte(`["a",1]`)); err != nil {
		t.Errorf("draft-07 tuple rejects a valid instance: %v", err)
	}
	if err := p.Validate([]byte(`["a","b"]`)); err == nil {
		t.Error("draft-07 tuple accepts a string at position 1")
	}
	if err := p.Validate([]byte(`["a",1,2]`)); err == nil {
		t.Error("draft-07 additionalItems:false accepts a third item")
	}
	// The same text is no valid 2020-12 schema (items must be a schema).
	if _, err := Parse(Schema{Type: JSON, Text: tuple, DefaultDraft: Draft2020}); err == nil {
		t.Error("a tuple as items parses as 2020-12")
	}
	// prefixItems is no keyword in draft-07, a keyword in 2020-12, and a
	// $schema in the text wins over the default.
	pfx := `{"prefixItems":[{"type":"string"}]}`
	if err := mustJSON(t, pfx, nil).Validate([]byte(`[1]`)); err != nil {
		t.Errorf("draft-07 applies prefixItems: %v", err)
	}
	if err := mustJSONIn(t, Draft2020, pfx, nil).Validate([]byte(`[1]`)); err == nil {
		t.Error("DefaultDraft 2020-12 ignores prefixItems")
	}
	named := `{"$schema":"https://json-schema.org/draft/2020-12/schema","prefixItems":[{"type":"string"}]}`
	if err := mustJSONIn(t, Draft7, named, nil).Validate([]byte(`[1]`)); err == nil {
		t.Error("$schema 2020-12 lost to DefaultDraft draft-07")
	}
	// References without $schema are read in the default draft too.
	refs := map[string]string{"t.json": tuple}
	ref := mustJSON(t, `{"$ref":"t.json"}`, refs)
	if err := ref.Validate([]byte(`["a","b"]`)); err == nil {
		t.Error("a referenced draft-07 tuple accepts a string at position 1")
	}
	if _, err := Parse(Schema{Type: JSON, Text: `{}`, DefaultDraft: "draft-99"}); err == nil {
		t.Error("an unknown DefaultDraft parses")
	}
}

func TestParseDraft(t *testing.T) {
	for in, want := range map[string]Draft{
		"": Draft7, "draft-07": Draft7, "draft7": Draft7, "draft_7": Draft7, "7": Draft7, "DRAFT_7": Draft7,
		"http://json-schema.org/draft-07/schema#": Draft7, "draft-04": Draft4, "draft_4": Draft4, "draft-06": Draft6,
		"2019-09": Draft2019, "draft_2019_09": Draft2019, "https://json-schema.org/draft/2019-09/schema": Draft2019,
		"2020-12": Draft2020, "draft_2020_12": Draft2020, "https://json-schema.org/draft/2020-12/schema": Draft2020,
	} {
		if got, err := ParseDraft(in); err != nil || got != want {
			t.Errorf("ParseDraft(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"draft-05", "2021-01", "latest", "draft"} {
		if _, err := ParseDraft(in); err == nil {
			t.Errorf("ParseDraft(%q): no error", in)
		}
	}
}

func TestJSONCombinatorsAndRefs(t *testing.T) {
	const (
		nullableAddr = `{"$defs":{"addr":{"type":"object","properties":{"zip":{"type":"string"}}}},"type":"object","properties":{"a":{"oneOf":[{"type":"null"},{"$ref":"#/$defs/addr"}]}}}`
	)
	tests := []struct {
		name      string
		old, next string
		level     Level
		ok        bool
	}{
		{"type array <-> anyOf", `{"type":["string","null"]}`, `{"anyOf":[{"type":"string"},{"type":"null"}]}`, Full, true},
		{"anyOf -> oneOf with disjoint branches", `{"anyOf":[{"type":"string"},{"type":"null"}]}`, `{"oneOf":[{"type":"null"},{"type":"string"}]}`, Full, true},
		{"nullable $ref, branch evolves compatibly", nullableAddr, strings.Replace(nullableAddr, `{"type":"string"}`, `{"type":["string","integer"]}`, 1), Backward, true},
		{"nullable $ref, branch narrows", strings.Replace(nullableAddr, `{"type":"string"}`, `{"type":["string","integer"]}`, 1), nullableAddr, Backward, false},
		{"$ref inlined", `{"$defs":{"s":{"type":"string"}},"$ref":"#/$defs/s"}`, `{"type":"string"}`, Full, true},
		{"allOf composition (writer conjuncts merged)",
			`{"allOf":[{"type":"object","properties":{"a":{"type":"string"}}},{"required":["a"]}]}`,
			`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}`, Full, true},
		{"unevaluatedProperties with allOf-declared property",
			`{"allOf":[{"properties":{"a":{"type":"string"}}}],"unevaluatedProperties":false}`,
			`{"allOf":[{"properties":{"a":{"type":"string"}}}],"unevaluatedProperties":false}`, Full, true},
		{"writer closed by unevaluatedProperties, reader adds typed property",
			`{"type":"object","properties":{"a":{}},"unevaluatedProperties":false}`,
			`{"type":"object","properties":{"a":{},"b":{"type":"string"}},"unevaluatedProperties":false}`, Backward, true},
		{"integer bounds: exclusive 10 equals maximum 9", `{"type":"integer","exclusiveMaximum":10}`, `{"type":"integer","maximum":9}`, Full, true},
		{"if/then unchanged, then widened", `{"if":{"type":"string"},"then":{"maxLength":3}}`, `{"if":{"type":"string"},"then":{"maxLength":5}}`, Backward, true},
		{"contains guaranteed by items", `{"type":"array","items":{"type":"integer"},"minItems":1}`, `{"type":"array","items":{"type":"integer"},"minItems":1,"contains":{"type":"integer"}}`, Backward, true},
	}
	for _, tt := range tests {
		for _, d := range draftsOf(tt.old, tt.next) {
			t.Run(tt.name+"/"+string(d), func(t *testing.T) {
				res := strictCheck(tt.level, mustJSONIn(t, d, tt.next, nil), []Version{{Version: 3, Schema: mustJSONIn(t, d, tt.old, nil)}})
				if res.Compatible() != tt.ok {
					t.Fatalf("compatible = %v, want %v%s", res.Compatible(), tt.ok, describe(res.Violations))
				}
			})
		}
	}
}

// TestJSONOneOfBranches: tagged unions gain variants; new branches that
// overlap an existing one are caught.
func TestJSONOneOfBranches(t *testing.T) {
	branch := func(tag string) string {
		return `{"type":"object","properties":{"k":{"const":"` + tag + `"},"x":{"type":"string"}},"required":["k"]}`
	}
	union := func(tags ...string) string {
		var bs []string
		for _, tag := range tags {
			bs = append(bs, branch(tag))
		}
		return obj(`,"properties":{"v":{"oneOf":[` + strings.Join(bs, ",") + `]}}`)
	}
	refUnion := `{"$defs":{"a":{"const":"a"},"b":{"enum":["b","bb"]},"c":{"const":"c"}},"oneOf":[` +
		`{"type":"object","properties":{"k":{"$ref":"#/$defs/a"}},"required":["k"]},` +
		`{"type":"object","properties":{"k":{"$ref":"#/$defs/b"}},"required":["k"]}`
	tests := []struct {
		name      string
		old, next string
		level     Level
		want      []string // empty: compatible
	}{
		{"tagged union gains a variant", union("a", "b"), union("a", "b", "c"), Backward, nil},
		{"tagged union gains a variant, FORWARD", union("a", "b"), union("a", "b", "c"), Forward, []string{ruleSumNarrowed}},
		{"tagged union via $ref and enum gains a variant", refUnion + `]}`, refUnion + `,{"type":"object","properties":{"k":{"$ref":"#/$defs/c"}},"required":["k"]}]}`, Backward, nil},
		{"new variant reuses a tag", union("a", "b"), union("a", "b", "b"), Backward, []string{ruleOneOfOverlap}},
		{"new variant's tag is not required", union("a", "b"), obj(`,"properties":{"v":{"oneOf":[` + branch("a") + `,` + branch("b") + `,{"type":"object","properties":{"k":{"const":"c"}}}]}}`), Backward, []string{ruleOneOfOverlap}},
		{"tagged union reordered", union("a", "b", "c"), union("c", "a", "b"), Full, nil},
		{"disjoint top-level consts", `{"oneOf":[{"const":1},{"const":2}]}`, `{"oneOf":[{"const":1},{"const":2},{"const":3}]}`, Backward, nil},
		{"disjoint enums of one type", `{"oneOf":[{"enum":["a","b"]}]}`, `{"oneOf":[{"enum":["a","b"]},{"enum":["c","d"]}]}`, Backward, nil},
		{"overlapping enum added", `{"oneOf":[{"enum":["a","b"]}]}`, `{"oneOf":[{"enum":["a","b"]},{"enum":["b","c"]}]}`, Backward, []string{ruleOneOfOverlap}},
		{"string gains an email branch", `{"type":"string"}`, `{"oneOf":[{"type":"string"},{"type":"string","format":"email"}]}`, Backward, []string{ruleOneOfOverlap}},
		{"oneOf string|integer gains an email branch", `{"oneOf":[{"type":"string"},{"type":"integer"}]}`, `{"oneOf":[{"type":"string"},{"type":"integer"},{"type":"string","format":"email"}]}`, Backward, []string{ruleOneOfOverlap}},
		{"anyOf of overlapping branches becomes oneOf", `{"anyOf":[{"type":"string"},{"type":"string","maxLength":3}]}`, `{"oneOf":[{"type":"string"},{"type":"string","maxLength":3}]}`, Backward, []string{ruleOneOfOverlap}},
		{"oneOf of overlapping branches kept", `{"oneOf":[{"type":"string"},{"type":"string","maxLength":3}]}`, `{"oneOf":[{"type":"string","maxLength":3},{"type":"string"}]}`, Full, nil},
		{"new branch of another type", `{"oneOf":[{"type":"string"}]}`, `{"oneOf":[{"type":"string"},{"type":"null"}]}`, Backward, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := strictCheck(tt.level, mustJSON(t, tt.next, nil), []Version{{Version: 1, Schema: mustJSON(t, tt.old, nil)}})
			got := slices.Compact(slices.Sorted(slices.Values(rulesOf(res.Violations))))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("rules = %v, want %v%s", got, tt.want, describe(res.Violations))
			}
		})
	}
}

// TestJSONLargeCombinators: identical branches pair up without comparing
// every pair, so a 500-branch anyOf in another order checks quickly; too
// many pairs that must really be compared are reported as unverifiable.
func TestJSONLargeCombinators(t *testing.T) {
	branches := func(n int, f func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	tagged := branches(500, func(i int) string {
		return fmt.Sprintf(`{"type":"object","properties":{"kind":{"const":"k%d"},"f%d":{"type":"string","maxLength":%d}},"required":["kind"]}`, i, i, i+1)
	})
	reversed := slices.Clone(tagged)
	slices.Reverse(reversed)
	untagged := branches(100, func(i int) string { return fmt.Sprintf(`{"type":"string","maxLength":%d}`, i+1) })
	wider := branches(100, func(i int) string { return fmt.Sprintf(`{"type":"string","maxLength":%d}`, i+201) })
	anyOf := func(bs []string) string { return `{"anyOf":[` + strings.Join(bs, ",") + `]}` }
	tests := []struct {
		name      string
		old, next string
		want      []string
	}{
		{"500 tagged branches reordered", anyOf(tagged), anyOf(reversed), nil},
		{"500 tagged branches reordered, one narrowed", anyOf(tagged), anyOf(append([]string{strings.Replace(reversed[0], `"maxLength":500`, `"maxLength":5`, 1)}, reversed[1:]...)), []string{ruleSumNarrowed}},
		{"100×100 untagged branches to compare", anyOf(untagged), anyOf(wider), []string{ruleUnverifiable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := strictCheck(Full, mustJSON(t, tt.next, nil), []Version{{Version: 1, Schema: mustJSON(t, tt.old, nil)}})
			got := slices.Compact(slices.Sorted(slices.Values(rulesOf(res.Violations))))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("rules = %v, want %v%s", got, tt.want, describe(res.Violations))
			}
		})
	}
}

// TestJSONForwardMessage: a FORWARD break is described in reader/writer
// terms (the old schema reads), not as if the new schema were the reader.
func TestJSONForwardMessage(t *testing.T) {
	prev := obj(`,"properties":{"zip":{"type":"string"}},"required":["zip"]`)
	next := obj(`,"properties":{"zip":{"type":"string"}}`)
	res := strictCheck(Forward, mustJSON(t, next, nil), []Version{{Version: 1, Schema: mustJSON(t, prev, nil)}})
	want := `REQUIRED_ATTRIBUTE_ADDED at /properties/zip (writer, version 1): the reader requires property "zip", which the writer does not require: data written without it fails the reader; hint: require it in both, or in neither`
	if len(res.Violations) != 1 || res.Violations[0].String() != want {
		t.Fatalf("got%s\nwant\n\t%s", describe(res.Violations), want)
	}
}
