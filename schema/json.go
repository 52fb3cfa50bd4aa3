package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// JSON Schema support.
//
// Parsing and validation use santhosh-tekuri/jsonschema. A schema without
// $schema is read as Schema.DefaultDraft (draft-07 unless set, as
// Confluent's registry reads it); $schema chooses draft-04, -06, -07,
// 2019-09 or 2020-12. $ref resolves only to
// the schema's own document and to Schema.References: nothing is ever loaded
// from the network or the file system. "format" is asserted in every draft
// (for the formats the library knows), so a payload that breaks a format
// fails validation and a reader that adds or changes a format breaks
// compatibility.
//
// The compatibility rules (compat) are handoff's own and are documented in
// rules-json.md.

// jsonBaseURL is the URL the schema document is compiled under; relative
// $ref URLs resolve against it (or against the document's $id).
const jsonBaseURL = "https://handoff.invalid/schema.json"

type jsonSchema struct {
	canon string
	root  *jsonschema.Schema
}

func parseJSON(s Schema) (parsed, error) {
	doc, err := decodeJSON([]byte(s.Text))
	if err != nil {
		return nil, &ParseError{Type: JSON, Reason: "not a JSON document: " + err.Error()}
	}
	var canon bytes.Buffer
	if err := json.Compact(&canon, []byte(s.Text)); err != nil {
		return nil, &ParseError{Type: JSON, Reason: "not a JSON document: " + err.Error()}
	}
	draft, err := ParseDraft(string(s.DefaultDraft))
	if err != nil {
		return nil, &ParseError{Type: JSON, Reason: "DefaultDraft: " + err.Error()}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonDrafts[draft])
	c.AssertFormat()
	c.UseLoader(&refLoader{refs: s.References})
	if err := c.AddResource(jsonBaseURL, doc); err != nil {
		return nil, &ParseError{Type: JSON, Reason: err.Error()}
	}
	root, err := c.Compile(jsonBaseURL)
	if err != nil {
		return nil, jsonParseError(err)
	}
	return &jsonSchema{canon: canon.String(), root: root}, nil
}

var jsonDrafts = map[Draft]*jsonschema.Draft{
	Draft4:    jsonschema.Draft4,
	Draft6:    jsonschema.Draft6,
	Draft7:    jsonschema.Draft7,
	Draft2019: jsonschema.Draft2019,
	Draft2020: jsonschema.Draft2020,
}

// decodeJSON reads exactly one JSON value, keeping numbers exact.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the top-level value")
	}
	return v, nil
}

// refLoader serves $ref URLs from the schema's references only.
type refLoader struct {
	refs map[string]string
}

func (l *refLoader) Load(u string) (any, error) {
	text, ok := l.lookup(u)
	if !ok {
		return nil, errors.New("not among the schema's references (nothing is loaded from the network or files)")
	}
	doc, err := decodeJSON([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("the reference is not a JSON document: %w", err)
	}
	return doc, nil
}

// lookup finds the reference named u: by exact name, by name resolved
// against the base URL, then by a relative name that ends u's path (so a
// reference named "address.json" serves $ref "address.json" from a document
// whose $id is https://example.com/schemas/order.json).
func (l *refLoader) lookup(u string) (string, bool) {
	if t, ok := l.refs[u]; ok {
		return t, true
	}
	base, _ := url.Parse(jsonBaseURL)
	names := make([]string, 0, len(l.refs))
	for k := range l.refs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		ku, err := url.Parse(k)
		if err != nil {
			continue
		}
		ku.Fragment = ""
		if base.ResolveReference(ku).String() == u {
			return l.refs[k], true
		}
	}
	for _, k := range names {
		ku, err := url.Parse(k)
		if err != nil || ku.IsAbs() {
			continue
		}
		rel := strings.TrimPrefix(ku.Path, "./")
		if rel != "" && (u == rel || strings.HasSuffix(u, "/"+rel)) {
			return l.refs[k], true
		}
	}
	return "", false
}

// jsonParseError turns a compiler error into a *ParseError with a JSON
// pointer into the schema document where the library says where.
func jsonParseError(err error) *ParseError {
	pe := &ParseError{Type: JSON, Reason: err.Error()}
	var (
		sve *jsonschema.SchemaValidationError
		rxe *jsonschema.InvalidRegexError
		jpe *jsonschema.JSONPointerNotFoundError
		ane *jsonschema.AnchorNotFoundError
		lue *jsonschema.LoadURLError
		ude *jsonschema.UnsupportedDraftError
		mse *jsonschema.InvalidMetaSchemaURLError
		ide *jsonschema.DuplicateIDError
		ade *jsonschema.DuplicateAnchorError
		pie *jsonschema.ParseIDError
		pae *jsonschema.ParseAnchorError
		jfe *jsonschema.InvalidJsonPointerError
	)
	switch {
	case errors.As(err, &sve):
		pe.Location = urlPointer(sve.URL)
		var ve *jsonschema.ValidationError
		if errors.As(sve.Err, &ve) {
			leaf := deepestLeaf(ve)
			loc := jsonPointer(leaf.InstanceLocation)
			if !strings.HasPrefix(sve.URL, jsonBaseURL) {
				loc = strings.TrimSuffix(sve.URL, "#") + "#" + loc
			}
			pe.Location = loc
			pe.Reason = fmt.Sprintf("breaks the meta-schema's %q rule: %s", errorKeyword(leaf.ErrorKind), leaf.ErrorKind.LocalizedString(printer))
		}
	case errors.As(err, &rxe):
		pe.Location = urlPointer(rxe.URL)
		pe.Reason = fmt.Sprintf("pattern %q is not a valid regular expression: %v", rxe.Regex, rxe.Err)
	case errors.As(err, &jpe):
		pe.Reason = fmt.Sprintf("$ref target %q not found", jpe.URL)
	case errors.As(err, &jfe):
		pe.Reason = fmt.Sprintf("$ref %q is not a valid JSON pointer", jfe.URL)
	case errors.As(err, &ane):
		pe.Reason = fmt.Sprintf("$ref %q: anchor not found", ane.Reference)
	case errors.As(err, &lue):
		pe.Reason = fmt.Sprintf("$ref %q cannot be resolved: %v", lue.URL, lue.Err)
	case errors.As(err, &ude):
		pe.Location = urlPointer(ude.URL)
		pe.Reason = "$schema names a draft that is not supported (use draft-04, draft-06, draft-07, 2019-09 or 2020-12)"
	case errors.As(err, &mse):
		pe.Location = urlPointer(mse.URL)
		pe.Reason = fmt.Sprintf("$schema is not a valid URL: %v", mse.Err)
	case errors.As(err, &ide):
		pe.Location = ide.Ptr2
		pe.Reason = fmt.Sprintf("$id %q is used twice (also at %s)", ide.ID, ide.Ptr1)
	case errors.As(err, &ade):
		pe.Location = ade.Ptr2
		pe.Reason = fmt.Sprintf("anchor %q is used twice (also at %s)", ade.Anchor, ade.Ptr1)
	case errors.As(err, &pie):
		pe.Location = urlPointer(pie.URL)
		pe.Reason = "$id is not a valid URI reference"
	case errors.As(err, &pae):
		pe.Location = urlPointer(pae.URL)
		pe.Reason = "anchor is not valid"
	}
	return pe
}

// urlPointer returns the JSON pointer of a location in the schema document,
// or the whole URL for a location in a referenced document.
func urlPointer(u string) string {
	doc, frag, _ := strings.Cut(u, "#")
	if f, err := url.PathUnescape(frag); err == nil {
		frag = f
	}
	if doc == jsonBaseURL {
		return frag
	}
	// A referenced document compiled under the invented base shows as
	// the relative name its $ref used (address.json), not the base's URL.
	doc = strings.TrimPrefix(doc, jsonBaseURL[:strings.LastIndex(jsonBaseURL, "/")+1])
	if frag == "" {
		return doc
	}
	return doc + "#" + frag
}

var printer = message.NewPrinter(language.English)

func (j *jsonSchema) canonical() string { return j.canon }

func (j *jsonSchema) validate(payload []byte) error {
	v, err := decodeJSON(payload)
	if err != nil {
		return &ValidationError{Rule: "json", Reason: "payload is not a JSON document: " + err.Error()}
	}
	err = j.root.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &ValidationError{Rule: "schema", Reason: err.Error()}
	}
	leaf := deepestLeaf(ve)
	return &ValidationError{
		Path:   jsonPointer(leaf.InstanceLocation),
		Rule:   errorKeyword(leaf.ErrorKind),
		Reason: leaf.ErrorKind.LocalizedString(printer),
	}
}

// deepestLeaf returns the failure with the longest instance location, the
// first such in the library's order.
func deepestLeaf(ve *jsonschema.ValidationError) *jsonschema.ValidationError {
	best := ve
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			if best == ve || len(e.InstanceLocation) > len(best.InstanceLocation) {
				best = e
			}
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return best
}

// errorKeyword names the keyword that failed.
func errorKeyword(k jsonschema.ErrorKind) string {
	switch k.(type) {
	case *kind.FalseSchema:
		return "false"
	case *kind.Dependency:
		return "dependencies"
	case *kind.Group, *kind.Schema:
		return "schema"
	case *kind.Not:
		return "not"
	}
	if p := k.KeywordPath(); len(p) > 0 {
		return p[0]
	}
	return "schema"
}

func jsonPointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escapePointer(t))
	}
	return b.String()
}

func escapePointer(t string) string {
	t = strings.ReplaceAll(t, "~", "~0")
	return strings.ReplaceAll(t, "/", "~1")
}

func (j *jsonSchema) compat(writer parsed) []Violation {
	w, ok := writer.(*jsonSchema)
	if !ok {
		return []Violation{{Rule: RuleSchemaTypeChanged, Message: "writer schema is not a JSON Schema"}}
	}
	c := newJSONCompat()
	return c.run(w.root, j.root)
}

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

// ---- objects

// writerName lists the writer schemas that apply to property n (one per
// conjunct that constrains it; jsonFalse when a conjunct forbids it) and
// whether a conjunct declares n in properties.
func (c *jsonCompat) writerName(conj []*jsch, n string) (list []*jsch, declared bool) {
	evaluated := false
	for _, s := range conj {
		matched := false
		if p, ok := s.Properties[n]; ok {
			list = append(list, p)
			matched, declared = true, true
		}
		for _, pp := range patterns(s) {
			if pp.re.MatchString(n) {
				list = append(list, pp.s)
				matched = true
			}
		}
		if matched {
			evaluated = true
			continue
		}
		if s.AdditionalProperties != nil {
			evaluated = true
			if a := boolOrSchema(s.AdditionalProperties); a != nil {
				list = append(list, a)
			}
		}
	}
	if !evaluated && !hasBranches(conj) {
		for _, s := range conj {
			if s.UnevaluatedProperties != nil && !isTrue(s.UnevaluatedProperties) {
				list = append(list, s.UnevaluatedProperties)
			}
		}
	}
	return list, declared
}

// writerAdditional lists the writer schemas for a property no conjunct
// declares or matches by pattern.
func (c *jsonCompat) writerAdditional(conj []*jsch) []*jsch {
	var list []*jsch
	any := false
	for _, s := range conj {
		if s.AdditionalProperties != nil {
			any = true
			if a := boolOrSchema(s.AdditionalProperties); a != nil {
				list = append(list, a)
			}
		}
	}
	if !any && !hasBranches(conj) {
		for _, s := range conj {
			if s.UnevaluatedProperties != nil && !isTrue(s.UnevaluatedProperties) {
				list = append(list, s.UnevaluatedProperties)
			}
		}
	}
	return list
}

// hasPatterns reports whether a conjunct has patternProperties.
func hasPatterns(conj []*jsch) bool {
	return slices.ContainsFunc(conj, func(s *jsch) bool { return len(s.PatternProperties) > 0 })
}

// hasBranches reports whether a conjunct has subschemas that apply only
// sometimes (and may evaluate properties or items).
func hasBranches(conj []*jsch) bool {
	for _, s := range conj {
		if len(s.AnyOf) > 0 || len(s.OneOf) > 0 || s.If != nil || len(s.DependentSchemas) > 0 || len(s.Dependencies) > 0 {
			return true
		}
	}
	return false
}

// readerAdditional is the reader's schema for properties it neither
// declares nor matches by pattern, and the keyword it comes from.
func (c *jsonCompat) readerAdditional(r *jsch) (*jsch, string) {
	if r.AdditionalProperties != nil {
		return boolOrSchema(r.AdditionalProperties), "additionalProperties"
	}
	if r.UnevaluatedProperties != nil {
		// Conservative: names evaluated only by r's conjuncts count as
		// unevaluated here, unless a conjunct declares them (readerName).
		if isTrue(r.UnevaluatedProperties) {
			return nil, "unevaluatedProperties"
		}
		return r.UnevaluatedProperties, "unevaluatedProperties"
	}
	return nil, "additionalProperties"
}

// readerName lists the reader schemas for property n.
func (c *jsonCompat) readerName(r *jsch, n string) (list []*jsch, declared bool) {
	if p, ok := r.Properties[n]; ok {
		list = append(list, p)
		declared = true
	}
	matched := declared
	for _, pp := range patterns(r) {
		if pp.re.MatchString(n) {
			list = append(list, pp.s)
			matched = true
		}
	}
	if matched {
		return list, declared
	}
	add, kw := c.readerAdditional(r)
	if add == nil {
		return list, declared
	}
	if kw == "unevaluatedProperties" {
		for _, s := range c.closure(r)[1:] {
			if _, ok := s.Properties[n]; ok || s.AdditionalProperties != nil {
				return list, declared
			}
			for _, pp := range patterns(s) {
				if pp.re.MatchString(n) {
					return list, declared
				}
			}
		}
	}
	return append(list, add), declared
}

type contentModel int

const (
	modelOpen contentModel = iota
	modelPartial
	modelClosed
)

func modelOf(list []*jsch) contentModel {
	if hasFalse(list) {
		return modelClosed
	}
	if !slices.ContainsFunc(list, func(s *jsch) bool { return !isTrue(s) }) {
		return modelOpen
	}
	return modelPartial
}

func first(vs []Violation) string {
	if len(vs) == 0 {
		return ""
	}
	return fmt.Sprintf("%s at %s: %s", vs[0].Rule, pathOrRoot(vs[0].Path), vs[0].Message)
}

func (c *jsonCompat) objects(w *jsch, conj []*jsch, r *jsch, path string) []Violation {
	var vs []Violation
	names := map[string]bool{}
	for _, s := range conj {
		for n := range s.Properties {
			names[n] = true
		}
	}
	for n := range r.Properties {
		names[n] = true
	}
	for _, n := range sortedKeys(names) {
		wl, wDecl := c.writerName(conj, n)
		rl, rDecl := c.readerName(r, n)
		propPath := path + "/properties/" + escapePointer(n)
		if rDecl {
			propPath = loc(r.Properties[n])
		}
		switch {
		case wDecl && rDecl:
			for _, rs := range rl {
				vs = append(vs, c.subsetAny(wl, rs, locOr(rs, propPath))...)
			}
		case rDecl: // added by the reader
			switch modelOf(wl) {
			case modelClosed:
			case modelOpen:
				if slices.ContainsFunc(rl, func(s *jsch) bool { return !isTrue(s) }) {
					// Confluent counts a writer with patternProperties (none
					// matching) and no additionalProperties as closed.
					vs = append(vs, strictIf(len(wl) == 0 && hasPatterns(conj), jsonViolation(rulePropAddedOpen, propPath, "the reader declares property %q, which the writer does not declare while its content model is open: the writer's data may carry %q with any value", n, n)))
				}
			case modelPartial:
				for _, rs := range rl {
					if sv := c.subsetAny(wl, rs, locOr(rs, propPath)); len(sv) > 0 {
						vs = append(vs, strictIf(allStrict(sv), jsonViolation(rulePropAddedPartial, propPath, "the reader declares property %q, which the writer does not declare; the writer's additionalProperties/patternProperties allow other values for it (%s)", n, first(sv))))
						break
					}
				}
			}
		case wDecl: // removed by the reader
			if hasFalse(wl) {
				continue
			}
			switch modelOf(rl) {
			case modelOpen:
			case modelClosed:
				vs = append(vs, jsonViolation(rulePropRemovedClosed, propPath, "the writer declares property %q, which the reader does not declare while its content model is closed: data carrying it fails the reader", n))
			case modelPartial:
				for _, rs := range rl {
					if sv := c.subsetAny(wl, rs, locOr(rs, propPath)); len(sv) > 0 {
						vs = append(vs, strictIf(allStrict(sv), jsonViolation(rulePropRemovedPartial, propPath, "the writer declares property %q, which the reader does not declare; the reader's additionalProperties/patternProperties do not accept the writer's values for it (%s)", n, first(sv))))
						break
					}
				}
			}
		}
	}
	vs = append(vs, c.freshNames(conj, r, path)...)
	vs = append(vs, c.required(conj, r, path)...)
	vs = append(vs, c.objectCounts(conj, r, path)...)
	vs = append(vs, c.propertyNames(conj, r, path)...)
	vs = append(vs, c.dependencies(w, conj, r, path)...)
	return vs
}

// patternsMayOverlap is false only when both patterns are anchored at the
// start with literal prefixes that no name can share.
func patternsMayOverlap(p, q string) bool {
	lp, okp := anchoredPrefix(p)
	lq, okq := anchoredPrefix(q)
	if !okp || !okq {
		return true
	}
	return strings.HasPrefix(lp, lq) || strings.HasPrefix(lq, lp)
}

func anchoredPrefix(p string) (string, bool) {
	if !strings.HasPrefix(p, "^") {
		return "", false
	}
	re, err := regexp.Compile(p[1:])
	if err != nil {
		return "", false
	}
	pre, _ := re.LiteralPrefix()
	return pre, pre != ""
}

// freshNames compares what the two schemas say about properties neither
// declares: additionalProperties, unevaluatedProperties, patternProperties.
func (c *jsonCompat) freshNames(conj []*jsch, r *jsch, path string) []Violation {
	var vs []Violation
	wAdd := c.writerAdditional(conj)
	rAdd, rKw := c.readerAdditional(r)
	addPath := path + "/" + rKw
	if rAdd != nil && !hasFalse(wAdd) {
		if isFalse(rAdd) {
			vs = append(vs, jsonViolation(ruleAddlPropsRemoved, addPath, "the reader rejects undeclared properties, which the writer allows"))
		} else if sv := c.subsetAny(wAdd, rAdd, locOr(rAdd, addPath)); len(sv) > 0 {
			vs = append(vs, strictIf(allStrict(sv), jsonViolation(ruleAddlPropsNarrowed, locOr(rAdd, addPath), "the reader's %s accepts less than the writer allows for undeclared properties (%s)", rKw, first(sv))))
		}
	}
	var wPats []patProp
	seen := map[string]bool{}
	for _, s := range conj {
		for _, pp := range patterns(s) {
			if !seen[pp.src] {
				seen[pp.src] = true
				wPats = append(wPats, pp)
			}
		}
	}
	rPats := patterns(r)
	rSrc := map[string]bool{}
	for _, q := range rPats {
		rSrc[q.src] = true
		for _, p := range wPats {
			if p.src == q.src || patternsMayOverlap(p.src, q.src) {
				if sv := c.subset(p.s, q.s, loc(q.s)); len(sv) > 0 {
					vs = append(vs, strictIf(true, jsonViolation(rulePatternPropsNarrowed, loc(q.s), "patternProperties %q accepts less than the writer's %q for names both match (%s)", q.src, p.src, first(sv))))
					break
				}
			}
		}
		if !seen[q.src] && !hasFalse(wAdd) {
			if sv := c.subsetAny(wAdd, q.s, loc(q.s)); len(sv) > 0 {
				vs = append(vs, strictIf(true, jsonViolation(rulePatternPropAdded, loc(q.s), "the reader has patternProperties %q, which the writer lacks; undeclared properties the writer allows may match it with other values (%s)", q.src, first(sv))))
			}
		}
	}
	for _, p := range wPats {
		if rSrc[p.src] || rAdd == nil {
			continue
		}
		if isFalse(rAdd) {
			vs = append(vs, strictIf(true, jsonViolation(rulePatternPropsNarrowed, addPath, "the writer allows properties matching %q, which the reader's closed content model rejects", p.src)))
		} else if sv := c.subset(p.s, rAdd, locOr(rAdd, addPath)); len(sv) > 0 {
			vs = append(vs, strictIf(true, jsonViolation(rulePatternPropsNarrowed, locOr(rAdd, addPath), "the writer allows properties matching %q with values the reader's %s rejects (%s)", p.src, rKw, first(sv))))
		}
	}
	return vs
}

func (c *jsonCompat) required(conj []*jsch, r *jsch, path string) []Violation {
	have := map[string]bool{}
	for _, s := range conj {
		for _, n := range s.Required {
			have[n] = true
		}
	}
	var vs []Violation
	done := map[string]bool{}
	for _, n := range r.Required {
		if have[n] || done[n] {
			continue
		}
		done[n] = true
		propPath := path + "/properties/" + escapePointer(n)
		rp, rDecl := r.Properties[n]
		if rDecl {
			propPath = loc(rp)
		}
		// Confluent compares required only for properties the reader's
		// object declares, and accepts a requirement whose property has
		// a default (except for a new property of an open writer).
		withDefault := rDecl && rp.Default != nil
		wl, wDecl := c.writerName(conj, n)
		switch {
		case wDecl && !hasFalse(wl):
			vs = append(vs, strictIf(!rDecl || withDefault, jsonViolation(ruleRequiredAttrAdded, propPath, "the reader requires property %q, which the writer does not require: data written without it fails the reader", n)))
		case modelOf(wl) == modelOpen:
			vs = append(vs, strictIf(!rDecl || isTrue(rp), jsonViolation(ruleRequiredAttrAdded, propPath, "the reader requires property %q, which the writer neither declares nor requires while its content model is open: data written without it fails the reader", n)))
		default:
			vs = append(vs, strictIf(!rDecl || withDefault, jsonViolation(ruleRequiredPropAddedUnopen, propPath, "the reader requires property %q, which the writer's content model (not open) does not declare: the writer's data lacks it", n)))
		}
	}
	return vs
}

func (c *jsonCompat) objectCounts(conj []*jsch, r *jsch, path string) []Violation {
	var vs []Violation
	if r.MaxProperties != nil {
		switch m := minInt(conj, func(s *jsch) *int { return s.MaxProperties }); {
		case m == nil:
			vs = append(vs, jsonViolation(ruleMaxPropsAdded, path, "the reader has maxProperties %d, the writer none", *r.MaxProperties))
		case *m > *r.MaxProperties:
			vs = append(vs, jsonViolation(ruleMaxPropsDecreased, path, "the reader's maxProperties %d is below the writer's %d", *r.MaxProperties, *m))
		}
	}
	if r.MinProperties != nil && *r.MinProperties > 0 {
		m := maxInt(conj, func(s *jsch) *int { return s.MinProperties })
		req := map[string]bool{}
		for _, s := range conj {
			for _, n := range s.Required {
				req[n] = true
			}
		}
		if m == nil || *m < len(req) {
			n := len(req)
			m = &n
		}
		switch {
		case *m >= *r.MinProperties:
		case *m == 0:
			vs = append(vs, jsonViolation(ruleMinPropsAdded, path, "the reader has minProperties %d, the writer none", *r.MinProperties))
		default:
			vs = append(vs, jsonViolation(ruleMinPropsIncreased, path, "the reader's minProperties %d is above the writer's %d", *r.MinProperties, *m))
		}
	}
	return vs
}

func (c *jsonCompat) propertyNames(conj []*jsch, r *jsch, path string) []Violation {
	pn := r.PropertyNames
	if isTrue(pn) {
		return nil
	}
	pnPath := loc(pn)
	// A closed writer without patterns can only send its declared names.
	if hasFalse(c.writerAdditional(conj)) && !slices.ContainsFunc(conj, func(s *jsch) bool { return len(s.PatternProperties) > 0 }) {
		var bad []string
		for _, s := range conj {
			for _, n := range sortedKeys(s.Properties) {
				if wl, _ := c.writerName(conj, n); !hasFalse(wl) && pn.Validate(n) != nil {
					bad = append(bad, strconvQuote(n))
				}
			}
		}
		if len(bad) == 0 {
			return nil
		}
		return []Violation{strictIf(true, jsonViolation(rulePropertyNamesNarrowed, pnPath, "the reader's propertyNames rejects %s, which the writer allows", strings.Join(bad, ", ")))}
	}
	if len(c.subset(jsonNameSchema, pn, pnPath)) == 0 {
		return nil
	}
	for _, s := range conj {
		if s.PropertyNames != nil && len(c.subset(s.PropertyNames, pn, pnPath)) == 0 {
			return nil
		}
	}
	return []Violation{strictIf(true, jsonViolation(rulePropertyNamesNarrowed, pnPath, "the reader's propertyNames may reject property names the writer allows"))}
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func depArrays(s *jsch) map[string][]string {
	m := map[string][]string{}
	for k, v := range s.DependentRequired {
		m[k] = append(m[k], v...)
	}
	for k, v := range s.Dependencies {
		if a, ok := v.([]string); ok {
			m[k] = append(m[k], a...)
		}
	}
	return m
}

func depSchemas(s *jsch) map[string]*jsch {
	m := map[string]*jsch{}
	for k, v := range s.DependentSchemas {
		m[k] = v
	}
	for k, v := range s.Dependencies {
		if d, ok := v.(*jsch); ok {
			m[k] = d
		}
	}
	return m
}

func (c *jsonCompat) dependencies(w *jsch, conj []*jsch, r *jsch, path string) []Violation {
	var vs []Violation
	kw := "dependentRequired"
	if len(r.Dependencies) > 0 {
		kw = "dependencies"
	}
	rd := depArrays(r)
	if len(rd) > 0 {
		wd := map[string]map[string]bool{}
		req := map[string]bool{}
		for _, s := range conj {
			for _, n := range s.Required {
				req[n] = true
			}
			for k, v := range depArrays(s) {
				if wd[k] == nil {
					wd[k] = map[string]bool{}
				}
				for _, n := range v {
					wd[k][n] = true
				}
			}
		}
		for _, k := range sortedKeys(rd) {
			if wl, _ := c.writerName(conj, k); hasFalse(wl) {
				continue // the writer never sends k
			}
			var missing []string
			for _, n := range rd[k] {
				if !req[n] && !wd[k][n] {
					missing = append(missing, strconvQuote(n))
				}
			}
			if len(missing) == 0 {
				continue
			}
			p := path + "/" + kw + "/" + escapePointer(k)
			if wd[k] == nil {
				vs = append(vs, jsonViolation(ruleDepArrayAdded, p, "the reader requires %s whenever %q is present; the writer has no such dependency", strings.Join(missing, ", "), k))
			} else {
				vs = append(vs, jsonViolation(ruleDepArrayExtended, p, "the reader requires %s whenever %q is present; the writer's dependency does not", strings.Join(missing, ", "), k))
			}
		}
	}
	rs := depSchemas(r)
	for _, k := range sortedKeys(rs) {
		ds := rs[k]
		if wl, _ := c.writerName(conj, k); hasFalse(wl) {
			continue
		}
		if len(c.subset(w, ds, loc(ds))) == 0 {
			continue
		}
		had, ok := false, false
		for _, s := range conj {
			if wds, found := depSchemas(s)[k]; found {
				had = true
				if len(c.subset(wds, ds, loc(ds))) == 0 {
					ok = true
				}
			}
		}
		switch {
		case ok:
		case had:
			vs = append(vs, jsonViolation(ruleDepSchemaNarrowed, loc(ds), "the reader's dependent schema for %q accepts less than the writer's", k))
		default:
			vs = append(vs, jsonViolation(ruleDepSchemaAdded, loc(ds), "the reader has a dependent schema for %q, the writer none", k))
		}
	}
	return vs
}

// ---- arrays

// arrView is what one schema says about array items, in any draft: a
// tuple (prefixItems; before 2020-12, items as a list) and the schema of
// the items beyond it (items; before 2020-12, additionalItems after a
// tuple or items as a schema), or unevaluatedItems where nothing else
// evaluates them.
type arrView struct {
	prefix  []*jsch
	rest    *jsch  // nil: any further item; jsonFalse: none
	restKw  string // the keyword rest comes from
	restSet bool   // a keyword evaluates every item beyond the tuple
	has     bool   // the schema says anything about items
	uneval  bool   // rest comes from unevaluatedItems
}

func arrayView(s *jsch) arrView {
	v := arrView{restKw: "items"}
	if s.PrefixItems != nil || s.Items2020 != nil {
		v.prefix, v.has = s.PrefixItems, true
		if s.Items2020 != nil {
			v.rest, v.restSet = boolOrSchema(s.Items2020), true
		}
		return v
	}
	switch it := s.Items.(type) {
	case []*jsch:
		v.prefix, v.has, v.restKw = it, true, "additionalItems"
		v.rest, v.restSet = boolOrSchema(s.AdditionalItems), s.AdditionalItems != nil
	case *jsch:
		v.has, v.restSet = true, true
		v.rest = boolOrSchema(it)
	}
	return v
}

func (c *jsonCompat) arrays(conj []*jsch, r *jsch, path string) []Violation {
	var vs []Violation
	rv := arrayView(r)
	if !rv.restSet && r.UnevaluatedItems != nil {
		// Conservative for a reader: items its contains or its
		// conjuncts evaluate count as unevaluated here.
		rv.rest, rv.restKw = boolOrSchema(r.UnevaluatedItems), "unevaluatedItems"
	}
	restPath := path + "/" + rv.restKw

	wvs := make([]arrView, 0, len(conj))
	restSet, wPrefix := false, 0
	for _, s := range conj {
		v := arrayView(s)
		restSet = restSet || v.restSet || s.Contains != nil
		wPrefix = max(wPrefix, len(v.prefix))
		wvs = append(wvs, v)
	}
	// The writer's unevaluatedItems holds for the items no conjunct's
	// tuple, items or contains evaluates: those beyond the longest tuple
	// (2019-09 and 2020-12; prefixItems with unevaluatedItems is the
	// usual way to close or type a 2020-12 tuple).
	if !restSet && !hasBranches(conj) {
		for i, s := range conj {
			if s.UnevaluatedItems != nil {
				wvs[i].rest, wvs[i].uneval = boolOrSchema(s.UnevaluatedItems), true
			}
		}
	}
	wMax := minInt(conj, func(s *jsch) *int { return s.MaxItems })
	wMin := maxInt(conj, func(s *jsch) *int { return s.MinItems })
	n := len(rv.prefix)
	for _, v := range wvs {
		l := len(v.prefix)
		if v.uneval {
			l = wPrefix
		}
		if isFalse(v.rest) && (wMax == nil || l < *wMax) {
			wMax = &l
		}
		n = max(n, len(v.prefix))
	}
	for i := 0; i < n; i++ {
		if wMax != nil && i >= *wMax {
			break
		}
		var wl []*jsch
		wDecl := false
		for _, v := range wvs {
			if i < len(v.prefix) {
				wl = append(wl, v.prefix[i])
				wDecl = true
			} else if v.rest != nil && (!v.uneval || i >= wPrefix) {
				wl = append(wl, v.rest)
			}
		}
		rDecl := i < len(rv.prefix)
		rs := rv.rest
		if rDecl {
			rs = rv.prefix[i]
		}
		if isTrue(rs) {
			continue
		}
		switch {
		case wDecl && rDecl:
			vs = append(vs, c.subsetAny(wl, rs, loc(rs))...)
		case rDecl:
			switch modelOf(wl) {
			case modelClosed:
			case modelOpen:
				vs = append(vs, jsonViolation(ruleItemAddedOpen, loc(rs), "the reader declares tuple position %d, where the writer allows any item", i))
			case modelPartial:
				if sv := c.subsetAny(wl, rs, loc(rs)); len(sv) > 0 {
					vs = append(vs, strictIf(allStrict(sv), jsonViolation(ruleItemAddedPartial, loc(rs), "the reader declares tuple position %d, where the writer's items schema allows other values (%s)", i, first(sv))))
				}
			}
		case wDecl:
			if hasFalse(wl) {
				continue
			}
			if isFalse(rs) {
				vs = append(vs, jsonViolation(ruleItemRemovedClosed, restPath, "the writer declares tuple position %d; the reader's tuple is shorter and accepts no further items", i))
			} else if sv := c.subsetAny(wl, rs, locOr(rs, restPath)); len(sv) > 0 {
				vs = append(vs, strictIf(allStrict(sv), jsonViolation(ruleItemRemovedPartial, locOr(rs, restPath), "the writer declares tuple position %d; the reader's tuple is shorter and its %s does not accept the writer's values there (%s)", i, rv.restKw, first(sv))))
			}
		}
	}
	if rs := rv.rest; !isTrue(rs) && (wMax == nil || *wMax > n) {
		var wl []*jsch
		noPrefix := len(rv.prefix) == 0
		for _, v := range wvs {
			if v.rest != nil {
				wl = append(wl, v.rest)
			}
			noPrefix = noPrefix && len(v.prefix) == 0
		}
		switch {
		case hasFalse(wl):
		case noPrefix && !isFalse(rs):
			vs = append(vs, c.subsetAny(wl, rs, locOr(rs, restPath))...)
		case isFalse(rs):
			vs = append(vs, jsonViolation(ruleAddlItemsRemoved, restPath, "the reader accepts no items beyond position %d; the writer allows more", n))
		default:
			if sv := c.subsetAny(wl, rs, locOr(rs, restPath)); len(sv) > 0 {
				vs = append(vs, strictIf(allStrict(sv), jsonViolation(ruleAddlItemsNarrowed, locOr(rs, restPath), "the reader's %s accepts less than the writer allows beyond the tuple (%s)", rv.restKw, first(sv))))
			}
		}
	}
	if r.MaxItems != nil {
		switch {
		case wMax == nil:
			vs = append(vs, jsonViolation(ruleMaxItemsAdded, path, "the reader has maxItems %d, the writer none", *r.MaxItems))
		case *wMax > *r.MaxItems:
			vs = append(vs, jsonViolation(ruleMaxItemsDecreased, path, "the reader's maxItems %d is below the writer's %d", *r.MaxItems, *wMax))
		}
	}
	if r.MinItems != nil && *r.MinItems > 0 {
		switch {
		case wMin == nil:
			vs = append(vs, jsonViolation(ruleMinItemsAdded, path, "the reader has minItems %d, the writer none", *r.MinItems))
		case *wMin < *r.MinItems:
			vs = append(vs, jsonViolation(ruleMinItemsIncreased, path, "the reader's minItems %d is above the writer's %d", *r.MinItems, *wMin))
		}
	}
	if r.UniqueItems && !slices.ContainsFunc(conj, func(s *jsch) bool { return s.UniqueItems }) && (wMax == nil || *wMax > 1) {
		vs = append(vs, jsonViolation(ruleUniqueItemsAdded, path, "the reader has uniqueItems, the writer does not"))
	}
	vs = append(vs, c.contains(conj, wvs, wMin, r, path)...)
	return vs
}

func (c *jsonCompat) contains(conj []*jsch, wvs []arrView, wMin *int, r *jsch, path string) []Violation {
	rc := r.Contains
	if rc == nil {
		return nil
	}
	minC := 1
	if r.MinContains != nil {
		minC = *r.MinContains
	}
	if minC == 0 && r.MaxContains == nil {
		return nil
	}
	had := false
	for _, s := range conj {
		if s.Contains == nil {
			continue
		}
		had = true
		wMinC := 1
		if s.MinContains != nil {
			wMinC = *s.MinContains
		}
		if wMinC < minC {
			continue
		}
		if r.MaxContains == nil {
			if len(c.subset(s.Contains, rc, loc(rc))) == 0 {
				return nil
			}
		} else if c.same(s.Contains, rc) && s.MaxContains != nil && *s.MaxContains <= *r.MaxContains {
			return nil
		}
	}
	// Every item the writer allows matches contains, and there are enough.
	if r.MaxContains == nil && wMin != nil && *wMin >= minC {
		all := true
		for _, v := range wvs {
			for _, p := range v.prefix {
				all = all && len(c.subset(p, rc, loc(rc))) == 0
			}
			all = all && v.rest != nil && len(c.subset(v.rest, rc, loc(rc))) == 0
		}
		if all && len(wvs) > 0 {
			return nil
		}
	}
	if had {
		// Confluent compares minContains and maxContains, not the
		// contains schema itself.
		return []Violation{strictIf(!c.containsCountsTightened(conj, r), jsonViolation(ruleContainsNarrowed, loc(rc), "the reader's contains/minContains/maxContains accepts fewer arrays than the writer's"))}
	}
	// A draft-07 contains has no minContains, and Confluent's diff does
	// not see it added; from 2019-09 on, it reads as minContains 1 added.
	return []Violation{strictIf(r.DraftVersion < 2019, jsonViolation(ruleContainsAdded, loc(rc), "the reader has contains, the writer none: the writer's arrays need not contain such an item"))}
}

// containsCountsTightened reports whether the reader raises minContains or
// adds or lowers maxContains against every writer conjunct with contains.
func (c *jsonCompat) containsCountsTightened(conj []*jsch, r *jsch) bool {
	count := func(p *int, def int) int {
		if p == nil {
			return def
		}
		return *p
	}
	for _, s := range conj {
		if s.Contains == nil {
			continue
		}
		if count(r.MinContains, 1) <= count(s.MinContains, 1) &&
			(r.MaxContains == nil || s.MaxContains != nil && *r.MaxContains >= *s.MaxContains) {
			return false
		}
	}
	return true
}

// ---- structural identity (the fast path)

// same reports whether a and b are the same schema: every assertion equal,
// subschemas compared recursively (pairs under comparison count as equal,
// so recursive schemas terminate).
func (c *jsonCompat) same(a, b *jsch) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return isTrue(a) && isTrue(b)
	}
	pair := [2]*jsch{a, b}
	if v, ok := c.same_[pair]; ok {
		return v
	}
	c.same_[pair] = true // assumed while comparing
	v := c.sameFields(a, b)
	c.same_[pair] = v
	return v
}

func (c *jsonCompat) sameList(a, b []*jsch) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !c.same(a[i], b[i]) {
			return false
		}
	}
	return true
}

func (c *jsonCompat) sameMap(a, b map[string]*jsch) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || !c.same(x, y) {
			return false
		}
	}
	return true
}

// sameAny compares the any-typed fields: nil, bool, *Schema, []*Schema,
// []string.
func (c *jsonCompat) sameAny(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case *jsch:
		y, ok := b.(*jsch)
		return ok && c.same(x, y)
	case []*jsch:
		y, ok := b.([]*jsch)
		return ok && c.sameList(x, y)
	case []string:
		y, ok := b.([]string)
		return ok && slices.Equal(x, y)
	}
	return false
}

func sameInt(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func sameRat(a, b *big.Rat) bool { return (a == nil) == (b == nil) && (a == nil || a.Cmp(b) == 0) }

func sameStrings(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

func (c *jsonCompat) sameFields(a, b *jsch) bool {
	if (a.Bool == nil) != (b.Bool == nil) || a.Bool != nil && *a.Bool != *b.Bool {
		return isTrue(a) && isTrue(b)
	}
	if len(a.Extensions) > 0 || len(b.Extensions) > 0 {
		return false
	}
	ta, tb := declaredTypes(a), declaredTypes(b)
	if ta != tb {
		return false
	}
	if (a.Enum == nil) != (b.Enum == nil) || a.Enum != nil && !reflect.DeepEqual(a.Enum.Values, b.Enum.Values) {
		return false
	}
	if (a.Const == nil) != (b.Const == nil) || a.Const != nil && !reflect.DeepEqual(*a.Const, *b.Const) {
		return false
	}
	if (a.Format == nil) != (b.Format == nil) || a.Format != nil && a.Format.Name != b.Format.Name {
		return false
	}
	if (a.Pattern == nil) != (b.Pattern == nil) || a.Pattern != nil && a.Pattern.String() != b.Pattern.String() {
		return false
	}
	if (a.DynamicRef == nil) != (b.DynamicRef == nil) || a.DynamicRef != nil && (a.DynamicRef.Anchor != b.DynamicRef.Anchor || !c.same(a.DynamicRef.Ref, b.DynamicRef.Ref)) {
		return false
	}
	if !sameInt(a.MaxProperties, b.MaxProperties) || !sameInt(a.MinProperties, b.MinProperties) ||
		!sameInt(a.MinItems, b.MinItems) || !sameInt(a.MaxItems, b.MaxItems) ||
		!sameInt(a.MinContains, b.MinContains) || !sameInt(a.MaxContains, b.MaxContains) ||
		!sameInt(a.MinLength, b.MinLength) || !sameInt(a.MaxLength, b.MaxLength) ||
		a.UniqueItems != b.UniqueItems || !sameStrings(a.Required, b.Required) {
		return false
	}
	if !sameRat(a.Maximum, b.Maximum) || !sameRat(a.Minimum, b.Minimum) || !sameRat(a.ExclusiveMaximum, b.ExclusiveMaximum) ||
		!sameRat(a.ExclusiveMinimum, b.ExclusiveMinimum) || !sameRat(a.MultipleOf, b.MultipleOf) {
		return false
	}
	if len(a.DependentRequired) != len(b.DependentRequired) {
		return false
	}
	for k, v := range a.DependentRequired {
		if w, ok := b.DependentRequired[k]; !ok || !sameStrings(v, w) {
			return false
		}
	}
	if len(a.Dependencies) != len(b.Dependencies) {
		return false
	}
	for k, v := range a.Dependencies {
		if w, ok := b.Dependencies[k]; !ok || !c.sameAny(v, w) {
			return false
		}
	}
	pa, pb := patterns(a), patterns(b)
	if len(pa) != len(pb) {
		return false
	}
	for i := range pa {
		if pa[i].src != pb[i].src || !c.same(pa[i].s, pb[i].s) {
			return false
		}
	}
	for _, p := range [][2]*jsch{
		{a.Ref, b.Ref}, {a.RecursiveRef, b.RecursiveRef}, {a.Not, b.Not}, {a.If, b.If}, {a.Then, b.Then},
		{a.Else, b.Else}, {a.PropertyNames, b.PropertyNames}, {a.UnevaluatedProperties, b.UnevaluatedProperties},
		{a.Contains, b.Contains}, {a.Items2020, b.Items2020}, {a.UnevaluatedItems, b.UnevaluatedItems},
	} {
		if (p[0] == nil) != (p[1] == nil) || !c.same(p[0], p[1]) {
			return false
		}
	}
	return c.sameList(a.AllOf, b.AllOf) && c.sameList(a.AnyOf, b.AnyOf) && c.sameList(a.OneOf, b.OneOf) &&
		c.sameList(a.PrefixItems, b.PrefixItems) && c.sameMap(a.Properties, b.Properties) &&
		c.sameMap(a.DependentSchemas, b.DependentSchemas) && c.sameAny(a.AdditionalProperties, b.AdditionalProperties) &&
		c.sameAny(a.Items, b.Items) && c.sameAny(a.AdditionalItems, b.AdditionalItems)
}

// ---- anyOf/oneOf branch matching (fast paths and a cap on the work)

// jsonMaxPairs bounds the branch comparisons of one combinator: more than
// jsonMaxPairs² plausible (writer branch, reader branch) pairs that are not
// identical is reported as SUBSCHEMA_UNVERIFIABLE.
const jsonMaxPairs = 64

type sliceKey struct {
	first **jsch
	n     int
}

func keyOf(rs []*jsch) sliceKey {
	if len(rs) == 0 {
		return sliceKey{}
	}
	return sliceKey{&rs[0], len(rs)}
}

type coverKey struct {
	b  *jsch
	rs sliceKey
}

type coverResult struct {
	i    int
	same bool
}

// byFingerprint indexes branches by fingerprint.
func (c *jsonCompat) byFingerprint(rs []*jsch) map[string][]int {
	k := keyOf(rs)
	if m, ok := c.fpIndex[k]; ok {
		return m
	}
	m := map[string][]int{}
	for i, r := range rs {
		f := c.fingerprint(r)
		m[f] = append(m[f], i)
	}
	c.fpIndex[k] = m
	return m
}

// sameBranch returns the index of a branch of rs structurally identical to
// b, or -1.
func (c *jsonCompat) sameBranch(b *jsch, rs []*jsch) int {
	for _, i := range c.byFingerprint(rs)[c.fingerprint(b)] {
		if c.same(b, rs[i]) {
			return i
		}
	}
	return -1
}

// plausible reports whether b may be a subset of r: false when their
// types or their discriminators (required properties with const/enum
// values) are disjoint.
func (c *jsonCompat) plausible(b, r *jsch) bool {
	bt := c.types(b)
	if bt == 0 {
		return true
	}
	if bt&c.types(r) == 0 {
		return false
	}
	return !c.tagsDisjoint(b, r)
}

// coverIndex returns the index of a reader branch that accepts everything b
// accepts, or -1; same tells whether it is structurally identical to b.
// Identical branches match first, then only plausible pairs are checked.
func (c *jsonCompat) coverIndex(b *jsch, rs []*jsch) (int, bool) {
	key := coverKey{b, keyOf(rs)}
	if res, ok := c.covers[key]; ok {
		return res.i, res.same
	}
	res := coverResult{i: -1}
	if i := c.sameBranch(b, rs); i >= 0 {
		res = coverResult{i, true}
	} else {
		for i, r := range rs {
			if c.plausible(b, r) && len(c.subset(b, r, loc(r))) == 0 {
				res.i = i
				break
			}
		}
	}
	c.covers[key] = res
	return res.i, res.same
}

// tooManyBranches reports whether matching the writer branches wb to the
// reader branches rs would take more than jsonMaxPairs² subset checks.
func (c *jsonCompat) tooManyBranches(wb, rs []*jsch) bool {
	if len(wb)*len(rs) <= jsonMaxPairs*jsonMaxPairs {
		return false
	}
	n := 0
	for _, b := range wb {
		if c.sameBranch(b, rs) >= 0 {
			continue
		}
		for _, r := range rs {
			if c.plausible(b, r) {
				n++
			}
		}
		if n > jsonMaxPairs*jsonMaxPairs {
			return true
		}
	}
	return false
}

// disjoint reports whether no instance can be valid under both a and b (a
// false answer means they may overlap): disjoint types, a finite schema
// none of whose values the other accepts, or objects with a property both
// require whose const/enum values do not intersect.
func (c *jsonCompat) disjoint(a, b *jsch) bool {
	ta, tb := c.types(a), c.types(b)
	if ta&tb == 0 {
		return true
	}
	for _, p := range [][2]*jsch{{a, b}, {b, a}} {
		if vals, ok := c.finiteValues(p[0]); ok {
			return !slices.ContainsFunc(vals, func(v any) bool { return p[1].Validate(v) == nil })
		}
	}
	return ta&tb&^tObj == 0 && c.tagsDisjoint(a, b)
}

// tagsDisjoint reports whether a and b both require a property whose
// const/enum value sets do not intersect.
func (c *jsonCompat) tagsDisjoint(a, b *jsch) bool {
	ta, tb := c.tags(a), c.tags(b)
	if len(ta) == 0 || len(tb) == 0 {
		return false
	}
	for n, va := range ta {
		vb, ok := tb[n]
		if !ok {
			continue
		}
		common := false
		for v := range va {
			if vb[v] {
				common = true
				break
			}
		}
		if !common {
			return true
		}
	}
	return false
}

// tags maps each property s requires (in s or its conjuncts) whose schema
// (after $ref and allOf) has a const or enum to the canonical keys of those
// values: an object valid under s carries one of them under that name.
func (c *jsonCompat) tags(s *jsch) map[string]map[string]bool {
	if s == nil {
		return nil
	}
	if t, ok := c.tags_[s]; ok {
		return t
	}
	c.tags_[s] = nil
	conj := c.closure(s)
	var out map[string]map[string]bool
	for _, x := range conj {
		for _, n := range x.Required {
			if out[n] != nil {
				continue
			}
			for _, y := range conj {
				p, ok := y.Properties[n]
				if !ok {
					continue
				}
				if keys := c.valueKeys(p); keys != nil {
					if out == nil {
						out = map[string]map[string]bool{}
					}
					out[n] = keys
					break
				}
			}
		}
	}
	c.tags_[s] = out
	return out
}

// valueKeys returns the canonical keys of the const/enum values that bound
// s, or nil when there are none (or one is an object or array).
func (c *jsonCompat) valueKeys(s *jsch) map[string]bool {
	for _, x := range c.closure(s) {
		var vals []any
		switch {
		case x.Const != nil:
			vals = []any{*x.Const}
		case x.Enum != nil:
			vals = x.Enum.Values
		default:
			continue
		}
		keys := map[string]bool{}
		for _, v := range vals {
			k, ok := scalarKey(v)
			if !ok {
				return nil
			}
			keys[k] = true
		}
		return keys
	}
	return nil
}

// scalarKey is a canonical text for a scalar JSON value (1 and 1.0 alike).
func scalarKey(v any) (string, bool) {
	switch v := v.(type) {
	case nil:
		return "null", true
	case bool:
		return fmt.Sprint(v), true
	case string:
		return strconvQuote(v), true
	case json.Number:
		r, ok := new(big.Rat).SetString(string(v))
		if !ok {
			return "", false
		}
		return "#" + r.RatString(), true
	case float64:
		r := new(big.Rat)
		if r.SetFloat64(v) == nil {
			return "", false
		}
		return "#" + r.RatString(), true
	}
	return "", false
}

// fingerprint is a canonical text of the schema's main keywords, followed
// a few levels deep: structurally identical schemas have equal
// fingerprints (then confirmed with same), so identical branches pair up
// by a map lookup.
func (c *jsonCompat) fingerprint(s *jsch) string {
	if f, ok := c.fps[s]; ok {
		return f
	}
	var b strings.Builder
	fingerprintTo(&b, s, 3)
	f := b.String()
	c.fps[s] = f
	return f
}

func fingerprintTo(b *strings.Builder, s *jsch, depth int) {
	if s == nil || isTrue(s) {
		b.WriteString("T")
		return
	}
	if s.Bool != nil {
		b.WriteString("F")
		return
	}
	if depth == 0 {
		b.WriteString("…")
		return
	}
	fmt.Fprintf(b, "{t%d", declaredTypes(s))
	if s.Const != nil {
		j, _ := json.Marshal(*s.Const)
		fmt.Fprintf(b, "c%s", j)
	}
	if s.Enum != nil {
		j, _ := json.Marshal(s.Enum.Values)
		fmt.Fprintf(b, "e%s", j)
	}
	if s.Format != nil {
		fmt.Fprintf(b, "f%q", s.Format.Name)
	}
	if s.Pattern != nil {
		fmt.Fprintf(b, "p%q", s.Pattern.String())
	}
	req := slices.Clone(s.Required)
	slices.Sort(req)
	fmt.Fprintf(b, "r%q", req)
	for _, n := range []*int{s.MinLength, s.MaxLength, s.MinItems, s.MaxItems, s.MinProperties, s.MaxProperties} {
		if n != nil {
			fmt.Fprintf(b, "n%d", *n)
		} else {
			b.WriteString("n")
		}
	}
	for _, r := range []*big.Rat{s.Minimum, s.Maximum, s.ExclusiveMinimum, s.ExclusiveMaximum, s.MultipleOf} {
		if r != nil {
			fmt.Fprintf(b, "q%s", r.RatString())
		} else {
			b.WriteString("q")
		}
	}
	for _, n := range sortedKeys(s.Properties) {
		fmt.Fprintf(b, "P%q:", n)
		fingerprintTo(b, s.Properties[n], depth-1)
	}
	for _, pp := range patterns(s) {
		fmt.Fprintf(b, "R%q:", pp.src)
		fingerprintTo(b, pp.s, depth-1)
	}
	if a, ok := s.AdditionalProperties.(bool); ok {
		fmt.Fprintf(b, "A%v", a)
	} else if a, ok := s.AdditionalProperties.(*jsch); ok {
		b.WriteString("A")
		fingerprintTo(b, a, depth-1)
	}
	for _, x := range []*jsch{s.Ref, s.RecursiveRef, s.Not, s.If, s.Then, s.Else, s.Items2020, s.Contains, s.UnevaluatedProperties, s.PropertyNames} {
		b.WriteString("S")
		if x != nil {
			fingerprintTo(b, x, depth-1)
		}
	}
	if it, ok := s.Items.(*jsch); ok {
		b.WriteString("I")
		fingerprintTo(b, it, depth-1)
	}
	for kw, l := range [][]*jsch{s.AllOf, s.AnyOf, s.OneOf, s.PrefixItems} {
		fmt.Fprintf(b, "L%d[", kw)
		for _, x := range l {
			fingerprintTo(b, x, depth-1)
		}
		b.WriteString("]")
	}
	b.WriteString("}")
}
