package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ---- compatibility: is every instance valid under the writer also valid
// under the reader? A conservative subset check; see rules-json.md.

type jsch = jsonschema.Schema

// Rule ids of JSON Schema compatibility violations (rules-json.md).
const (
	ruleTypeChanged        = "TYPE_CHANGED"
	ruleTypeNarrowed       = "TYPE_NARROWED"
	ruleEnumNarrowed       = "ENUM_ARRAY_NARROWED"
	ruleMaxLengthAdded     = "MAX_LENGTH_ADDED"
	ruleMaxLengthDecreased = "MAX_LENGTH_DECREASED"
	ruleMinLengthAdded     = "MIN_LENGTH_ADDED"
	ruleMinLengthIncreased = "MIN_LENGTH_INCREASED"
	rulePatternAdded       = "PATTERN_ADDED"
	rulePatternChanged     = "PATTERN_CHANGED"
	ruleFormatAdded        = "FORMAT_ADDED"
	ruleFormatChanged      = "FORMAT_CHANGED"
	ruleMaximumAdded       = "MAXIMUM_ADDED"
	ruleMaximumDecreased   = "MAXIMUM_DECREASED"
	ruleMinimumAdded       = "MINIMUM_ADDED"
	ruleMinimumIncreased   = "MINIMUM_INCREASED"
	ruleExclMaxAdded       = "EXCLUSIVE_MAXIMUM_ADDED"
	ruleExclMaxDecreased   = "EXCLUSIVE_MAXIMUM_DECREASED"
	ruleExclMinAdded       = "EXCLUSIVE_MINIMUM_ADDED"
	ruleExclMinIncreased   = "EXCLUSIVE_MINIMUM_INCREASED"
	ruleMultipleOfAdded    = "MULTIPLE_OF_ADDED"
	ruleMultipleOfExpanded = "MULTIPLE_OF_EXPANDED"
	ruleMultipleOfChanged  = "MULTIPLE_OF_CHANGED"

	rulePropAddedOpen           = "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
	rulePropAddedPartial        = "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
	rulePropRemovedClosed       = "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"
	rulePropRemovedPartial      = "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
	ruleRequiredAttrAdded       = "REQUIRED_ATTRIBUTE_ADDED"
	ruleRequiredPropAddedUnopen = "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"
	ruleAddlPropsRemoved        = "ADDITIONAL_PROPERTIES_REMOVED"
	ruleAddlPropsNarrowed       = "ADDITIONAL_PROPERTIES_NARROWED"
	rulePatternPropAdded        = "PATTERN_PROPERTY_ADDED"
	rulePatternPropsNarrowed    = "PATTERN_PROPERTIES_NARROWED"
	rulePropertyNamesNarrowed   = "PROPERTY_NAMES_NARROWED"
	ruleMaxPropsAdded           = "MAX_PROPERTIES_ADDED"
	ruleMaxPropsDecreased       = "MAX_PROPERTIES_DECREASED"
	ruleMinPropsAdded           = "MIN_PROPERTIES_ADDED"
	ruleMinPropsIncreased       = "MIN_PROPERTIES_INCREASED"
	ruleDepArrayAdded           = "DEPENDENCY_ARRAY_ADDED"
	ruleDepArrayExtended        = "DEPENDENCY_ARRAY_EXTENDED"
	ruleDepSchemaAdded          = "DEPENDENCY_SCHEMA_ADDED"
	ruleDepSchemaNarrowed       = "DEPENDENCY_SCHEMA_NARROWED"

	ruleItemAddedOpen      = "ITEM_ADDED_TO_OPEN_CONTENT_MODEL"
	ruleItemAddedPartial   = "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
	ruleItemRemovedClosed  = "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL"
	ruleItemRemovedPartial = "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"
	ruleAddlItemsRemoved   = "ADDITIONAL_ITEMS_REMOVED"
	ruleAddlItemsNarrowed  = "ADDITIONAL_ITEMS_NARROWED"
	ruleMaxItemsAdded      = "MAX_ITEMS_ADDED"
	ruleMaxItemsDecreased  = "MAX_ITEMS_DECREASED"
	ruleMinItemsAdded      = "MIN_ITEMS_ADDED"
	ruleMinItemsIncreased  = "MIN_ITEMS_INCREASED"
	ruleUniqueItemsAdded   = "UNIQUE_ITEMS_ADDED"
	ruleContainsAdded      = "CONTAINS_ADDED"
	ruleContainsNarrowed   = "CONTAINS_NARROWED"

	ruleProductExtended = "PRODUCT_TYPE_EXTENDED"
	ruleSumNarrowed     = "SUM_TYPE_NARROWED"
	ruleCombinedChanged = "COMBINED_TYPE_CHANGED"
	ruleOneOfOverlap    = "ONE_OF_BRANCH_OVERLAPS"
	ruleNotAdded        = "NOT_TYPE_ADDED"
	ruleNotExtended     = "NOT_TYPE_EXTENDED"
	ruleConditional     = "CONDITIONAL_CHANGED"
	ruleUnverifiable    = "SUBSCHEMA_UNVERIFIABLE"
)

// jsonHints says, per rule, how to make the change compatible.
var jsonHints = map[string]string{
	ruleTypeChanged:        "make both accept the same types (a type array or anyOf on the reader), or use another property name",
	ruleTypeNarrowed:       "make the reader accept every type the writer accepts",
	ruleEnumNarrowed:       "make the reader's enum/const include every value the writer allows",
	ruleMaxLengthAdded:     "give both the same maxLength, or neither",
	ruleMaxLengthDecreased: "make the reader's maxLength at least the writer's",
	ruleMinLengthAdded:     "give both the same minLength, or neither",
	ruleMinLengthIncreased: "make the reader's minLength at most the writer's",
	rulePatternAdded:       "give both the same pattern, or neither",
	rulePatternChanged:     "give both the same pattern (patterns are compared as text)",
	ruleFormatAdded:        "give both the same format, or neither (formats are asserted)",
	ruleFormatChanged:      "give both the same format",
	ruleMaximumAdded:       "give both the same upper bound, or neither",
	ruleMaximumDecreased:   "make the reader's upper bound at least the writer's",
	ruleMinimumAdded:       "give both the same lower bound, or neither",
	ruleMinimumIncreased:   "make the reader's lower bound at most the writer's",
	ruleExclMaxAdded:       "give both the same upper bound, or neither",
	ruleExclMaxDecreased:   "make the reader's exclusiveMaximum exceed every value the writer allows",
	ruleExclMinAdded:       "give both the same lower bound, or neither",
	ruleExclMinIncreased:   "make the reader's exclusiveMinimum lie below every value the writer allows",
	ruleMultipleOfAdded:    "give both the same multipleOf, or neither",
	ruleMultipleOfExpanded: "make the reader's multipleOf a divisor of the writer's",
	ruleMultipleOfChanged:  "make the reader's multipleOf a divisor of the writer's",

	rulePropAddedOpen:           "declare the property in both, close the writer (additionalProperties: false), or let the reader's schema for it accept any value",
	rulePropAddedPartial:        "make the reader's schema for the property accept everything the writer's additionalProperties/patternProperties allow",
	rulePropRemovedClosed:       "declare the property in both (it may be deprecated), or open the reader's content model (additionalProperties)",
	rulePropRemovedPartial:      "declare the property in both, or make the reader's additionalProperties accept the writer's values for it",
	ruleRequiredAttrAdded:       "require it in both, or in neither",
	ruleRequiredPropAddedUnopen: "declare the property in both and require it in both, or in neither",
	ruleAddlPropsRemoved:        "give both the same additionalProperties, or keep the reader's open (true or a schema that accepts the writer's values)",
	ruleAddlPropsNarrowed:       "make the reader's additionalProperties accept everything the writer's accepts",
	rulePatternPropAdded:        "give both the same patternProperties, or make the reader's accept every value the writer allows for undeclared properties",
	rulePatternPropsNarrowed:    "give both the same patternProperties, or widen the reader's",
	rulePropertyNamesNarrowed:   "make the reader's propertyNames accept every name the writer allows",
	ruleMaxPropsAdded:           "give both the same maxProperties, or neither",
	ruleMaxPropsDecreased:       "make the reader's maxProperties at least the writer's",
	ruleMinPropsAdded:           "give both the same minProperties, or neither",
	ruleMinPropsIncreased:       "make the reader's minProperties at most the writer's",
	ruleDepArrayAdded:           "give both the same dependentRequired/dependencies, or neither",
	ruleDepArrayExtended:        "make the reader's dependency require no name the writer's does not",
	ruleDepSchemaAdded:          "give both the same dependent schema, or neither",
	ruleDepSchemaNarrowed:       "make the reader's dependent schema at least as permissive as the writer's",

	ruleItemAddedOpen:      "give both the same tuple, close the writer's tuple (items/additionalItems: false), or let the reader's position accept any value",
	ruleItemAddedPartial:   "make the reader's position accept everything the writer's items/additionalItems schema allows",
	ruleItemRemovedClosed:  "give both the same tuple, or let the reader accept further items",
	ruleItemRemovedPartial: "give both the same tuple, or make the reader's items schema accept the writer's values there",
	ruleAddlItemsRemoved:   "let the reader accept items beyond its tuple, as the writer does",
	ruleAddlItemsNarrowed:  "make the reader's items/additionalItems schema accept everything the writer's accepts",
	ruleMaxItemsAdded:      "give both the same maxItems, or neither",
	ruleMaxItemsDecreased:  "make the reader's maxItems at least the writer's",
	ruleMinItemsAdded:      "give both the same minItems, or neither",
	ruleMinItemsIncreased:  "make the reader's minItems at most the writer's",
	ruleUniqueItemsAdded:   "give both uniqueItems, or neither",
	ruleContainsAdded:      "give both the same contains, or neither",
	ruleContainsNarrowed:   "make the reader's contains (and minContains/maxContains) at least as permissive as the writer's",

	ruleProductExtended: "give both the same allOf members; widen a shared member instead",
	ruleSumNarrowed:     "give the reader a branch that accepts each of the writer's branches",
	ruleCombinedChanged: "give the reader a branch (or combinator) that accepts everything the writer accepts",
	ruleOneOfOverlap:    "make the reader's oneOf branches exclusive (distinct types, or a required property with distinct const values), or use anyOf",
	ruleNotAdded:        "give both the same not, or neither",
	ruleNotExtended:     "make the reader's not schema at most as permissive as the writer's",
	ruleConditional:     "give both the same if/then/else, or make the reader's then/else accept the writer's values",
	ruleUnverifiable:    "simplify the schemas (nesting depth, number of anyOf/oneOf branches); handoff could not prove the writer's data valid under the reader",
}

func jsonViolation(rule, path, format string, args ...any) Violation {
	return Violation{Rule: rule, Path: path, Message: fmt.Sprintf(format, args...), Hint: jsonHints[rule]}
}

// strictIf marks v as a finding only StrictRules refuse when cond holds:
// Confluent's registry accepts the change (rules-json.md says why, per
// rule).
func strictIf(cond bool, v Violation) Violation {
	v.Strict = cond
	return v
}

// allStrict reports whether vs holds findings and each is one only
// StrictRules refuse: a rule wrapping them is then one too.
func allStrict(vs []Violation) bool {
	return len(vs) > 0 && !slices.ContainsFunc(vs, func(v Violation) bool { return !v.Strict })
}

// Type bits. Integer and fractional numbers are separate so that integer ⊂
// number comes out of plain set arithmetic.
const (
	tNull uint8 = 1 << iota
	tBool
	tObj
	tArr
	tStr
	tInt
	tFrac
	tNum = tInt | tFrac
	tAll = tNull | tBool | tObj | tArr | tStr | tNum
)

func typeNames(t uint8) string {
	var n []string
	for _, e := range []struct {
		bit  uint8
		name string
	}{{tNull, "null"}, {tBool, "boolean"}, {tObj, "object"}, {tArr, "array"}, {tStr, "string"}} {
		if t&e.bit != 0 {
			n = append(n, e.name)
		}
	}
	switch t & tNum {
	case tNum:
		n = append(n, "number")
	case tInt:
		n = append(n, "integer")
	case tFrac:
		n = append(n, "non-integer number")
	}
	if len(n) == 0 {
		return "nothing"
	}
	return strings.Join(n, ", ")
}

func typeBit(name string) uint8 {
	switch name {
	case "null":
		return tNull
	case "boolean":
		return tBool
	case "object":
		return tObj
	case "array":
		return tArr
	case "string":
		return tStr
	case "integer":
		return tInt
	case "number":
		return tNum
	}
	return 0
}

func valueType(v any) uint8 {
	switch v := v.(type) {
	case nil:
		return tNull
	case bool:
		return tBool
	case string:
		return tStr
	case []any:
		return tArr
	case map[string]any:
		return tObj
	case json.Number:
		if r, ok := new(big.Rat).SetString(string(v)); ok && r.IsInt() {
			return tInt
		}
		return tFrac
	case float64:
		if v == float64(int64(v)) {
			return tInt
		}
		return tFrac
	}
	return tAll
}

// declaredTypes is what the type keyword alone allows.
func declaredTypes(s *jsch) uint8 {
	if s == nil || s.Types == nil || s.Types.IsEmpty() {
		return tAll
	}
	var t uint8
	for _, n := range s.Types.ToStrings() {
		t |= typeBit(n)
	}
	return t
}

// localTypes is what the schema's own type, const and enum allow.
func localTypes(s *jsch) uint8 {
	if s == nil {
		return tAll
	}
	if s.Bool != nil {
		if *s.Bool {
			return tAll
		}
		return 0
	}
	t := declaredTypes(s)
	if s.Const != nil {
		t &= valueType(*s.Const)
	}
	if s.Enum != nil {
		var u uint8
		for _, v := range s.Enum.Values {
			u |= valueType(v)
		}
		t &= u
	}
	return t
}

// jsonNameSchema is what any property name satisfies: a string.
var jsonNameSchema = func() *jsch {
	c := jsonschema.NewCompiler()
	c.UseLoader(&refLoader{})
	if err := c.AddResource("https://handoff.invalid/name.json", map[string]any{"type": "string"}); err != nil {
		panic(err)
	}
	return c.MustCompile("https://handoff.invalid/name.json")
}()

var (
	jsonFalse = func() *jsch { f := false; return &jsch{Bool: &f} }()
	jsonTrue  = &jsch{}
)

func isFalse(s *jsch) bool { return s != nil && s.Bool != nil && !*s.Bool }

// isTrue reports whether s accepts every instance: true, {} or annotations only.
func isTrue(s *jsch) bool {
	if s == nil {
		return true
	}
	if s.Bool != nil {
		return *s.Bool
	}
	return !hasAssertions(s)
}

func hasAssertions(s *jsch) bool {
	return s.Ref != nil || s.RecursiveRef != nil || s.DynamicRef != nil || s.Types != nil && !s.Types.IsEmpty() ||
		s.Enum != nil || s.Const != nil || s.Not != nil || len(s.AllOf)+len(s.AnyOf)+len(s.OneOf) > 0 ||
		s.If != nil || s.Format != nil ||
		s.MaxProperties != nil || s.MinProperties != nil || len(s.Required) > 0 || s.PropertyNames != nil ||
		len(s.Properties) > 0 || len(s.PatternProperties) > 0 || s.AdditionalProperties != nil ||
		len(s.Dependencies) > 0 || len(s.DependentRequired) > 0 || len(s.DependentSchemas) > 0 ||
		s.UnevaluatedProperties != nil || s.MinItems != nil || s.MaxItems != nil || s.UniqueItems ||
		s.Contains != nil || s.Items != nil || s.AdditionalItems != nil || len(s.PrefixItems) > 0 ||
		s.Items2020 != nil || s.UnevaluatedItems != nil || s.MinLength != nil || s.MaxLength != nil ||
		s.Pattern != nil || s.Maximum != nil || s.Minimum != nil || s.ExclusiveMaximum != nil ||
		s.ExclusiveMinimum != nil || s.MultipleOf != nil || len(s.Extensions) > 0
}

func hasFalse(list []*jsch) bool {
	return slices.ContainsFunc(list, isFalse)
}

func refTargets(s *jsch) []*jsch {
	var out []*jsch
	if s.Ref != nil {
		out = append(out, s.Ref)
	}
	if s.RecursiveRef != nil {
		out = append(out, s.RecursiveRef)
	}
	if s.DynamicRef != nil && s.DynamicRef.Ref != nil {
		out = append(out, s.DynamicRef.Ref)
	}
	return out
}

// boolOrSchema reads additionalProperties/additionalItems: nil when absent
// or true, jsonFalse when false.
func boolOrSchema(v any) *jsch {
	switch v := v.(type) {
	case bool:
		if v {
			return nil
		}
		return jsonFalse
	case *jsch:
		if isTrue(v) {
			return nil
		}
		return v
	}
	return nil
}

type patProp struct {
	src string
	re  jsonschema.Regexp
	s   *jsch
}

func patterns(s *jsch) []patProp {
	out := make([]patProp, 0, len(s.PatternProperties))
	for re, p := range s.PatternProperties {
		out = append(out, patProp{re.String(), re, p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].src < out[j].src })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

const jsonMaxDepth = 256

type jsonCompat struct {
	active   map[[2]*jsch]bool
	memo     map[compatKey][]Violation
	same_    map[[2]*jsch]bool
	closures map[*jsch][]*jsch
	types_   map[*jsch]uint8
	tags_    map[*jsch]map[string]map[string]bool
	fps      map[*jsch]string
	fpIndex  map[sliceKey]map[string][]int
	covers   map[coverKey]coverResult
	depth    int
}

type compatKey struct {
	w, r *jsch
	path string
}

func newJSONCompat() *jsonCompat {
	return &jsonCompat{
		active:   map[[2]*jsch]bool{},
		memo:     map[compatKey][]Violation{},
		same_:    map[[2]*jsch]bool{},
		closures: map[*jsch][]*jsch{},
		types_:   map[*jsch]uint8{},
		tags_:    map[*jsch]map[string]map[string]bool{},
		fps:      map[*jsch]string{},
		fpIndex:  map[sliceKey]map[string][]int{},
		covers:   map[coverKey]coverResult{},
	}
}

func (c *jsonCompat) run(w, r *jsch) []Violation {
	vs := c.subset(w, r, loc(r))
	seen := map[string]bool{}
	out := vs[:0:0]
	for _, v := range vs {
		k := v.Rule + "\x00" + v.Path + "\x00" + v.Message
		if !seen[k] {
			seen[k] = true
			out = append(out, v)
		}
	}
	return out
}

// loc is the JSON pointer of a compiled schema in its document; for a
// referenced document it is the document's URL, '#', and the pointer.
func loc(s *jsch) string {
	if s == nil {
		return ""
	}
	return urlPointer(s.Location)
}

func locOr(s *jsch, fallback string) string {
	if s == nil || s.Location == "" {
		return fallback
	}
	return loc(s)
}

// closure lists the schemas that always apply together with s: s, its $ref
// targets and allOf members, transitively.
func (c *jsonCompat) closure(s *jsch) []*jsch {
	if s == nil {
		return []*jsch{jsonTrue}
	}
	if cl, ok := c.closures[s]; ok {
		return cl
	}
	var out []*jsch
	seen := map[*jsch]bool{}
	var walk func(*jsch)
	walk = func(x *jsch) {
		if x == nil || seen[x] {
			return
		}
		seen[x] = true
		out = append(out, x)
		for _, t := range refTargets(x) {
			walk(t)
		}
		for _, a := range x.AllOf {
			walk(a)
		}
	}
	walk(s)
	c.closures[s] = out
	return out
}

// types is the set of JSON types s can accept, from type/const/enum of s,
// its conjuncts and its anyOf/oneOf branches.
func (c *jsonCompat) types(s *jsch) uint8 {
	if s == nil {
		return tAll
	}
	if t, ok := c.types_[s]; ok {
		return t
	}
	c.types_[s] = tAll // cycles: assume anything
	t := localTypes(s)
	for _, x := range refTargets(s) {
		t &= c.types(x)
	}
	for _, a := range s.AllOf {
		t &= c.types(a)
	}
	for _, br := range [][]*jsch{s.AnyOf, s.OneOf} {
		if len(br) == 0 {
			continue
		}
		var u uint8
		for _, b := range br {
			u |= c.types(b)
		}
		t &= u
	}
	c.types_[s] = t
	return t
}

// subset returns the ways an instance valid under w can be invalid under r.
func (c *jsonCompat) subset(w, r *jsch, path string) []Violation {
	if w == nil {
		w = jsonTrue
	}
	if isTrue(r) || isFalse(w) || w == r || c.same(w, r) {
		return nil
	}
	key := compatKey{w, r, path}
	if vs, ok := c.memo[key]; ok {
		return vs
	}
	pair := [2]*jsch{w, r}
	if c.active[pair] {
		return nil // recursive schemas: assume the pair holds (coinduction)
	}
	if c.depth >= jsonMaxDepth {
		return []Violation{jsonViolation(ruleUnverifiable, path, "the schemas nest deeper than %d levels: the writer's data could not be proven valid under the reader (Confluent's registry sets no such bound and may accept the change)", jsonMaxDepth)}
	}
	c.active[pair] = true
	c.depth++
	vs := c.step(w, r, path)
	c.depth--
	delete(c.active, pair)
	c.memo[key] = vs
	return vs
}

// subsetAny checks a conjunction of writer schemas against r: it holds when
// one of them is false or is a subset of r. With no writer schema the
// writer accepts anything.
func (c *jsonCompat) subsetAny(ws []*jsch, r *jsch, path string) []Violation {
	if len(ws) == 0 {
		return c.subset(jsonTrue, r, path)
	}
	if hasFalse(ws) {
		return nil
	}
	var best []Violation
	for i, w := range ws {
		vs := c.subset(w, r, path)
		if len(vs) == 0 {
			return nil
		}
		// Prefer the writer schema whose only findings are strict ones:
		// under Confluent's rules the conjunction then holds.
		if i == 0 || allStrict(vs) && !allStrict(best) || allStrict(vs) == allStrict(best) && len(vs) < len(best) {
			best = vs
		}
	}
	return best
}

func (c *jsonCompat) step(w, r *jsch, path string) []Violation {
	if isFalse(r) {
		return []Violation{jsonViolation(ruleTypeNarrowed, path, "the reader's schema is false: it rejects everything the writer allows")}
	}
	if vals, ok := c.finiteValues(w); ok {
		return c.valueCheck(vals, r, path)
	}
	var vs []Violation
	for _, t := range refTargets(r) {
		vs = append(vs, c.subset(w, t, loc(t))...)
	}
	vs = append(vs, c.allOf(w, r, path)...)
	if len(r.AnyOf) > 0 {
		vs = append(vs, c.sum(w, r.AnyOf, "anyOf", path)...)
	}
	if len(r.OneOf) > 0 {
		vs = append(vs, c.sum(w, r.OneOf, "oneOf", path)...)
		vs = append(vs, c.oneOfOverlap(w, r, path)...)
	}
	if r.Not != nil {
		vs = append(vs, c.not(w, r.Not, path)...)
	}
	if r.If != nil && (r.Then != nil || r.Else != nil) {
		vs = append(vs, c.cond(w, r, path)...)
	}
	vs = append(vs, c.local(w, r, path)...)
	if len(vs) > 0 && c.branchesFit(w, r, path) {
		return nil
	}
	return vs
}

// finiteValues lists the instances w accepts when they are few: a const, an
// enum, or only null and booleans.
func (c *jsonCompat) finiteValues(w *jsch) ([]any, bool) {
	if w == jsonTrue || w.Location == "" {
		return nil, false
	}
	var vals []any
	found := false
	for _, s := range c.closure(w) {
		if s.Const != nil {
			vals, found = []any{*s.Const}, true
			break
		}
		if s.Enum != nil {
			vals, found = s.Enum.Values, true
			break
		}
	}
	if !found {
		t := c.types(w)
		if t == 0 || t&^(tNull|tBool) != 0 {
			return nil, false
		}
		vals = []any{nil, true, false}
	}
	out := make([]any, 0, len(vals))
	for _, v := range vals {
		if w.Validate(v) == nil {
			out = append(out, v)
		}
	}
	return out, true
}

func (c *jsonCompat) valueCheck(vals []any, r *jsch, path string) []Violation {
	var bad []string
	var reason string
	for _, v := range vals {
		err := r.Validate(v)
		if err == nil {
			continue
		}
		b, _ := json.Marshal(v)
		bad = append(bad, string(b))
		if reason == "" {
			var ve *jsonschema.ValidationError
			if errors.As(err, &ve) {
				leaf := deepestLeaf(ve)
				reason = fmt.Sprintf("%s: %s", errorKeyword(leaf.ErrorKind), leaf.ErrorKind.LocalizedString(printer))
			}
		}
	}
	if len(bad) == 0 {
		return nil
	}
	shown := bad
	if len(shown) > 5 {
		shown = append(shown[:5:5], "…")
	}
	return []Violation{jsonViolation(ruleEnumNarrowed, path, "the writer allows %s, which the reader rejects (%s)", strings.Join(shown, ", "), reason)}
}

func (c *jsonCompat) allOf(w, r *jsch, path string) []Violation {
	var vs []Violation
	for i, m := range r.AllOf {
		mv := c.subset(w, m, loc(m))
		if len(mv) == 0 {
			continue
		}
		if len(w.AllOf) > 0 && i >= len(w.AllOf) && !slices.ContainsFunc(c.closure(w), func(x *jsch) bool { return c.same(x, m) }) {
			vs = append(vs, jsonViolation(ruleProductExtended, loc(m), "the reader's allOf member %d is not among the writer's and the writer's data need not satisfy it: %s", i, mv[0].Message))
			continue
		}
		vs = append(vs, mv...)
	}
	return vs
}

// writerBranches returns the anyOf/oneOf branches of w and which keyword.
func writerBranches(w *jsch) ([]*jsch, string) {
	if len(w.OneOf) > 0 {
		return w.OneOf, "oneOf"
	}
	if len(w.AnyOf) > 0 {
		return w.AnyOf, "anyOf"
	}
	return nil, ""
}

// splitByType returns shallow copies of w, one per JSON type it accepts,
// when it accepts more than one.
func (c *jsonCompat) splitByType(w *jsch) []*jsch {
	t := c.types(w)
	var names []string
	for _, n := range []string{"null", "boolean", "object", "array", "string"} {
		if t&typeBit(n) != 0 {
			names = append(names, n)
		}
	}
	switch t & tNum {
	case tNum:
		names = append(names, "number")
	case tInt:
		names = append(names, "integer")
	}
	if len(names) < 2 || w == jsonTrue || w.Location == "" {
		return nil
	}
	out := make([]*jsch, 0, len(names))
	for _, n := range names {
		cp := *w
		var ts jsonschema.Types
		ts.Add(n)
		cp.Types = &ts
		out = append(out, &cp)
	}
	return out
}

func (c *jsonCompat) coveredBy(b *jsch, rs []*jsch) bool {
	i, _ := c.coverIndex(b, rs)
	return i >= 0
}

func (c *jsonCompat) sum(w *jsch, rs []*jsch, kw, path string) []Violation {
	wb, wkw := writerBranches(w)
	if c.tooManyBranches(orSelf(wb, w), rs) {
		return []Violation{c.unverifiable(path + "/" + kw)}
	}
	if wb == nil {
		if c.coveredBy(w, rs) {
			return nil
		}
		parts := c.splitByType(w)
		if parts != nil && !slices.ContainsFunc(parts, func(p *jsch) bool { return !c.coveredBy(p, rs) }) {
			return nil
		}
		if len(rs) == 1 {
			return c.subset(w, rs[0], loc(rs[0]))
		}
		loose := c.looselyCovered(w, rs) || parts != nil && !slices.ContainsFunc(parts, func(p *jsch) bool { return !c.looselyCovered(p, rs) })
		return []Violation{strictIf(loose, jsonViolation(ruleCombinedChanged, path+"/"+kw, "no %s branch of the reader accepts everything the writer allows", kw))}
	}
	// Confluent pairs the branches one to one: fewer reader branches, or
	// anyOf read as oneOf, is refused there whatever the branches say.
	confluentPairs := len(wb) <= len(rs) && (wkw == kw || kw == "anyOf")
	var vs []Violation
	for j, b := range wb {
		if c.coveredBy(b, rs) {
			continue
		}
		rule := ruleSumNarrowed
		if wkw != kw {
			rule = ruleCombinedChanged
		}
		vs = append(vs, strictIf(confluentPairs && c.looselyCovered(b, rs), jsonViolation(rule, path+"/"+kw, "the writer's %s branch %d is accepted by no %s branch of the reader", wkw, j, kw)))
	}
	return vs
}

// looselyCovered reports whether a reader branch accepts b but for
// findings only StrictRules refuse (Confluent's registry matches such a
// branch).
func (c *jsonCompat) looselyCovered(b *jsch, rs []*jsch) bool {
	return slices.ContainsFunc(rs, func(r *jsch) bool { return c.plausible(b, r) && allStrict(c.subset(b, r, loc(r))) })
}

// oneOfOverlap flags reader oneOf branches that may match the same writer
// instance as another branch: such an instance fails oneOf. Each writer
// branch (or the writer itself) is matched to the reader branch that covers
// it; a reader branch that covers no writer branch must be disjoint from the
// matched ones, or from the writer's data.
func (c *jsonCompat) oneOfOverlap(w, r *jsch, path string) []Violation {
	wb, wkw := writerBranches(w)
	if wb == nil {
		wb = []*jsch{w}
	}
	if c.tooManyBranches(wb, r.OneOf) {
		return nil // sum reported SUBSCHEMA_UNVERIFIABLE
	}
	wt := c.types(w)
	matched := make([]bool, len(r.OneOf))
	exact := make([]bool, len(r.OneOf)) // identical to a writer oneOf branch
	for _, b := range wb {
		i, same := c.coverIndex(b, r.OneOf)
		if i < 0 {
			continue // sum reports it
		}
		matched[i] = true
		exact[i] = exact[i] || same && wkw == "oneOf"
	}
	idx := func(k int) []int {
		var out []int
		for i := range r.OneOf {
			if i != k && matched[i] {
				out = append(out, i)
			}
		}
		return out
	}
	// Matched branches may overlap each other, unless the writer's own
	// oneOf already excluded the instances they share.
	for k, rk := range r.OneOf {
		if !matched[k] {
			continue
		}
		for _, i := range idx(k) {
			if i < k || exact[k] && exact[i] {
				continue
			}
			if c.types(rk)&c.types(r.OneOf[i])&wt != 0 && !c.disjoint(rk, r.OneOf[i]) {
				return []Violation{c.overlap(k, i, rk)}
			}
		}
	}
	for k, rk := range r.OneOf {
		if matched[k] || c.types(rk)&wt == 0 {
			continue
		}
		if !slices.ContainsFunc(wb, func(b *jsch) bool { return !c.disjoint(rk, b) }) {
			continue // no writer instance matches it
		}
		for _, i := range idx(k) {
			if c.types(rk)&c.types(r.OneOf[i])&wt != 0 && !c.disjoint(rk, r.OneOf[i]) {
				return []Violation{c.overlap(k, i, rk)}
			}
		}
	}
	return nil
}

func orSelf(wb []*jsch, w *jsch) []*jsch {
	if wb == nil {
		return []*jsch{w}
	}
	return wb
}

func (c *jsonCompat) overlap(k, i int, rk *jsch) Violation {
	return strictIf(true, jsonViolation(ruleOneOfOverlap, loc(rk), "the reader's oneOf branches %d and %d may both match an instance the writer allows, which then fails oneOf", k, i))
}

func (c *jsonCompat) unverifiable(path string) Violation {
	return jsonViolation(ruleUnverifiable, path, "more than %d×%d anyOf/oneOf branch pairs would have to be compared; the writer's data could not be proven valid under the reader (Confluent's registry sets no such bound and may accept the change)", jsonMaxPairs, jsonMaxPairs)
}

func (c *jsonCompat) not(w, n *jsch, path string) []Violation {
	if c.types(w)&c.types(n) == 0 {
		return nil
	}
	had := false
	for _, s := range c.closure(w) {
		if s.Not != nil {
			had = true
			if len(c.subset(n, s.Not, "")) == 0 {
				return nil
			}
		}
	}
	if had {
		return []Violation{jsonViolation(ruleNotExtended, path+"/not", "the reader's not schema excludes instances the writer allows")}
	}
	return []Violation{jsonViolation(ruleNotAdded, path+"/not", "the reader has a not schema, the writer none: it may exclude instances the writer allows")}
}

func (c *jsonCompat) cond(w, r *jsch, path string) []Violation {
	fits := func(a, b *jsch) bool { return isTrue(b) || len(c.subset(a, b, "")) == 0 }
	for _, s := range c.closure(w) {
		if s.If != nil && c.same(s.If, r.If) && fits(orTrue(s.Then), r.Then) && fits(orTrue(s.Else), r.Else) {
			return nil
		}
	}
	if fits(w, r.Then) && fits(w, r.Else) {
		return nil
	}
	// Confluent's diff compares no if/then/else: a conditional the
	// writer has too is accepted whatever changed in it.
	hadIf := slices.ContainsFunc(c.closure(w), func(s *jsch) bool { return s.If != nil })
	return []Violation{strictIf(hadIf, jsonViolation(ruleConditional, path+"/if", "the reader's if/then/else may reject instances the writer allows"))}
}

func orTrue(s *jsch) *jsch {
	if s == nil {
		return jsonTrue
	}
	return s
}

// branchesFit reports whether every anyOf/oneOf branch of the writer is a
// subset of r, which makes the writer a subset whatever else it says.
func (c *jsonCompat) branchesFit(w, r *jsch, path string) bool {
	for _, s := range c.closure(w) {
		wb, _ := writerBranches(s)
		if wb == nil {
			continue
		}
		ok := true
		for _, b := range wb {
			if len(c.subset(b, r, path)) > 0 {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// local compares the reader's own keywords (not its $ref, allOf, anyOf,
// oneOf, not, if) with everything the writer says.
func (c *jsonCompat) local(w, r *jsch, path string) []Violation {
	wt := c.types(w)
	if wt == 0 {
		return nil
	}
	var vs []Violation
	rt := declaredTypes(r)
	if missing := wt &^ rt; missing != 0 {
		if wt&rt == 0 {
			vs = append(vs, jsonViolation(ruleTypeChanged, path, "the reader accepts %s, the writer allows %s: the writer's data fails the reader", typeNames(rt), typeNames(wt)))
		} else {
			vs = append(vs, jsonViolation(ruleTypeNarrowed, path, "the reader does not accept %s, which the writer allows", typeNames(missing)))
		}
	}
	if r.Enum != nil || r.Const != nil {
		vs = append(vs, jsonViolation(ruleEnumNarrowed, path, "the reader restricts values to a fixed set (enum/const) the writer does not have"))
	}
	common := wt & rt
	conj := c.closure(w)
	if common&tStr != 0 {
		vs = append(vs, c.strs(conj, r, path)...)
	}
	if common&tNum != 0 {
		vs = append(vs, c.nums(conj, r, path, common&tFrac == 0)...)
	}
	if common&tObj != 0 {
		vs = append(vs, c.objects(w, conj, r, path)...)
	}
	if common&tArr != 0 {
		vs = append(vs, c.arrays(conj, r, path)...)
	}
	return vs
}

func minInt(conj []*jsch, f func(*jsch) *int) *int {
	var m *int
	for _, s := range conj {
		if v := f(s); v != nil && (m == nil || *v < *m) {
			m = v
		}
	}
	return m
}

func maxInt(conj []*jsch, f func(*jsch) *int) *int {
	var m *int
	for _, s := range conj {
		if v := f(s); v != nil && (m == nil || *v > *m) {
			m = v
		}
	}
	return m
}

func (c *jsonCompat) strs(conj []*jsch, r *jsch, path string) []Violation {
	var vs []Violation
	if r.MaxLength != nil {
		switch m := minInt(conj, func(s *jsch) *int { return s.MaxLength }); {
		case m == nil:
			vs = append(vs, jsonViolation(ruleMaxLengthAdded, path, "the reader has maxLength %d, the writer none: longer strings the writer allows fail the reader", *r.MaxLength))
		case *m > *r.MaxLength:
			vs = append(vs, jsonViolation(ruleMaxLengthDecreased, path, "the reader's maxLength %d is below the writer's %d", *r.MaxLength, *m))
		}
	}
	if r.MinLength != nil && *r.MinLength > 0 {
		switch m := maxInt(conj, func(s *jsch) *int { return s.MinLength }); {
		case m == nil:
			vs = append(vs, jsonViolation(ruleMinLengthAdded, path, "the reader has minLength %d, the writer none: shorter strings the writer allows fail the reader", *r.MinLength))
		case *m < *r.MinLength:
			vs = append(vs, jsonViolation(ruleMinLengthIncreased, path, "the reader's minLength %d is above the writer's %d", *r.MinLength, *m))
		}
	}
	if r.Pattern != nil {
		var old string
		ok := false
		for _, s := range conj {
			if s.Pattern != nil {
				old = s.Pattern.String()
				if old == r.Pattern.String() {
					ok = true
				}
			}
		}
		switch {
		case ok:
		case old == "":
			vs = append(vs, jsonViolation(rulePatternAdded, path, "the reader has pattern %q, the writer none", r.Pattern.String()))
		default:
			vs = append(vs, jsonViolation(rulePatternChanged, path, "the reader's pattern %q differs from the writer's %q", r.Pattern.String(), old))
		}
	}
	if r.Format != nil {
		var old string
		ok := false
		for _, s := range conj {
			if s.Format != nil {
				old = s.Format.Name
				if old == r.Format.Name {
					ok = true
				}
			}
		}
		switch {
		case ok:
		case old == "":
			vs = append(vs, strictIf(true, jsonViolation(ruleFormatAdded, path, "the reader asserts format %q, the writer none", r.Format.Name)))
		default:
			vs = append(vs, strictIf(true, jsonViolation(ruleFormatChanged, path, "the reader's format %q differs from the writer's %q", r.Format.Name, old)))
		}
	}
	return vs
}

// bound is a numeric bound; excl marks a strict one.
type bound struct {
	v    *big.Rat
	excl bool
}

func ratStr(r *big.Rat) string { return r.RatString() }

func (c *jsonCompat) nums(conj []*jsch, r *jsch, path string, intOnly bool) []Violation {
	var hi, lo *bound
	tighter := func(cur *bound, v *big.Rat, excl bool, upper bool) *bound {
		if v == nil {
			return cur
		}
		if cur == nil {
			return &bound{v, excl}
		}
		cmp := v.Cmp(cur.v)
		if (upper && cmp < 0) || (!upper && cmp > 0) || (cmp == 0 && excl) {
			return &bound{v, excl}
		}
		return cur
	}
	for _, s := range conj {
		hi = tighter(hi, s.Maximum, false, true)
		hi = tighter(hi, s.ExclusiveMaximum, true, true)
		lo = tighter(lo, s.Minimum, false, false)
		lo = tighter(lo, s.ExclusiveMinimum, true, false)
	}
	if intOnly {
		// Integers only: x < 5.5 is x <= 5, x > 2 is x >= 3.
		if hi != nil && (hi.excl || !hi.v.IsInt()) {
			f := floorRat(hi.v)
			if hi.excl && hi.v.IsInt() {
				f.Sub(f, big.NewRat(1, 1))
			}
			hi = &bound{f, false}
		}
		if lo != nil && (lo.excl || !lo.v.IsInt()) {
			f := floorRat(lo.v)
			f.Add(f, big.NewRat(1, 1))
			lo = &bound{f, false}
		}
	}
	var vs []Violation
	if r.Maximum != nil && (hi == nil || hi.v.Cmp(r.Maximum) > 0) {
		if hi == nil {
			vs = append(vs, jsonViolation(ruleMaximumAdded, path, "the reader has maximum %s, the writer no upper bound", ratStr(r.Maximum)))
		} else {
			vs = append(vs, jsonViolation(ruleMaximumDecreased, path, "the reader's maximum %s is below the writer's upper bound %s", ratStr(r.Maximum), ratStr(hi.v)))
		}
	}
	if e := r.ExclusiveMaximum; e != nil && (hi == nil || hi.v.Cmp(e) > 0 || hi.v.Cmp(e) == 0 && !hi.excl) {
		if hi == nil {
			vs = append(vs, jsonViolation(ruleExclMaxAdded, path, "the reader has exclusiveMaximum %s, the writer no upper bound", ratStr(e)))
		} else {
			vs = append(vs, jsonViolation(ruleExclMaxDecreased, path, "the reader's exclusiveMaximum %s rejects values up to %s the writer allows", ratStr(e), ratStr(hi.v)))
		}
	}
	if r.Minimum != nil && (lo == nil || lo.v.Cmp(r.Minimum) < 0) {
		if lo == nil {
			vs = append(vs, jsonViolation(ruleMinimumAdded, path, "the reader has minimum %s, the writer no lower bound", ratStr(r.Minimum)))
		} else {
			vs = append(vs, jsonViolation(ruleMinimumIncreased, path, "the reader's minimum %s is above the writer's lower bound %s", ratStr(r.Minimum), ratStr(lo.v)))
		}
	}
	if e := r.ExclusiveMinimum; e != nil && (lo == nil || lo.v.Cmp(e) < 0 || lo.v.Cmp(e) == 0 && !lo.excl) {
		if lo == nil {
			vs = append(vs, jsonViolation(ruleExclMinAdded, path, "the reader has exclusiveMinimum %s, the writer no lower bound", ratStr(e)))
		} else {
			vs = append(vs, jsonViolation(ruleExclMinIncreased, path, "the reader's exclusiveMinimum %s rejects values down to %s the writer allows", ratStr(e), ratStr(lo.v)))
		}
	}
	if m := r.MultipleOf; m != nil {
		divides := func(k *big.Rat) bool { return new(big.Rat).Quo(k, m).IsInt() }
		ok := intOnly && divides(big.NewRat(1, 1))
		var old *big.Rat
		for _, s := range conj {
			if s.MultipleOf != nil {
				old = s.MultipleOf
				if divides(s.MultipleOf) {
					ok = true
				}
			}
		}
		switch {
		case ok:
		case old == nil:
			vs = append(vs, jsonViolation(ruleMultipleOfAdded, path, "the reader has multipleOf %s, the writer none", ratStr(m)))
		case new(big.Rat).Quo(m, old).IsInt():
			vs = append(vs, jsonViolation(ruleMultipleOfExpanded, path, "the reader's multipleOf %s is a multiple of the writer's %s", ratStr(m), ratStr(old)))
		default:
			vs = append(vs, jsonViolation(ruleMultipleOfChanged, path, "the reader's multipleOf %s does not divide the writer's %s", ratStr(m), ratStr(old)))
		}
	}
	return vs
}

func floorRat(r *big.Rat) *big.Rat {
	q := new(big.Int).Div(r.Num(), r.Denom()) // Euclidean: floor for a positive denominator
	return new(big.Rat).SetInt(q)
}
