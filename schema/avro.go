package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hamba/avro/v2"
)

// Avro compatibility rule ids (see rules-avro.md). The first six are Avro
// Java's (and so Confluent's) names; the logical-type rules are handoff's.
const (
	avroRuleNameMismatch      = "NAME_MISMATCH"
	avroRuleFixedSize         = "FIXED_SIZE_MISMATCH"
	avroRuleMissingSymbols    = "MISSING_ENUM_SYMBOLS"
	avroRuleMissingDefault    = "READER_FIELD_MISSING_DEFAULT_VALUE"
	avroRuleTypeMismatch      = "TYPE_MISMATCH"
	avroRuleMissingBranch     = "MISSING_UNION_BRANCH"
	avroRuleLogicalMismatch   = "LOGICAL_TYPE_MISMATCH"
	avroRuleDecimalScale      = "DECIMAL_SCALE_MISMATCH"
	avroRuleDecimalPrecision  = "DECIMAL_PRECISION_NARROWED"
	avroValidationRule        = "avro"
	avroMaxFixedSize          = 1 << 20
	avroMaxRecordDepth        = 10_000
	avroMinValueBudget        = 1 << 16
	avroParseRuleJSON         = "INVALID_JSON"
	avroParseRuleUnknownType  = "UNKNOWN_TYPE"
	avroParseRuleDefault      = "INVALID_DEFAULT"
	avroParseRuleMissingName  = "MISSING_NAME"
	avroParseRuleName         = "INVALID_NAME"
	avroParseRuleMalformed    = "MALFORMED_SCHEMA"
	avroParseRuleFields       = "MISSING_FIELDS"
	avroParseRuleDupName      = "DUPLICATE_NAME"
	avroParseRuleDupField     = "DUPLICATE_FIELD"
	avroParseRuleFieldType    = "MISSING_FIELD_TYPE"
	avroParseRuleOrder        = "INVALID_ORDER"
	avroParseRuleEnum         = "INVALID_ENUM"
	avroParseRuleItems        = "MISSING_ITEMS"
	avroParseRuleValues       = "MISSING_VALUES"
	avroParseRuleUnion        = "INVALID_UNION"
	avroParseRuleFixedSize    = "INVALID_FIXED_SIZE"
	avroParseRuleReference    = "INVALID_REFERENCE"
	avroParseRuleInvalid      = "INVALID_SCHEMA"
	avroParseRuleParserFailed = "PARSER_FAILURE"
)

// avroParsed is a parsed Avro schema.
type avroParsed struct {
	canon  string
	schema avro.Schema
}

func (p *avroParsed) canonical() string { return p.canon }

// parseAvro parses s.Text after the schemas of s.References, each into one
// cache of its own (never hamba's global cache), so that parses are isolated
// and safe to run concurrently.
func parseAvro(s Schema) (p parsed, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, &ParseError{Type: Avro, Reason: fmt.Sprintf("%s: the Avro parser failed: %v", avroParseRuleParserFailed, r)}
		}
	}()
	cache := &avro.SchemaCache{}
	if pe := avroParseReferences(s.References, cache); pe != nil {
		return nil, pe
	}
	sch, pe := avroParseText(s.Text, cache, "")
	if pe != nil {
		return nil, pe
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s.Text)); err != nil {
		return nil, avroParseError("", "", avroParseRuleJSON, err.Error())
	}
	return &avroParsed{canon: buf.String(), schema: sch}, nil
}

func avroParseError(ref, loc, rule, msg string) *ParseError {
	msg = strings.Join(strings.Fields(strings.TrimPrefix(msg, "avro: ")), " ")
	if ref != "" {
		msg = fmt.Sprintf("in reference %q: %s", ref, msg)
	}
	return &ParseError{Type: Avro, Location: loc, Reason: rule + ": " + msg}
}

// avroParseReferences parses every reference into cache. References may use
// each other, in any order: a reference that fails is retried after the
// others until a round makes no progress.
func avroParseReferences(refs map[string]string, cache *avro.SchemaCache) *ParseError {
	pending := make([]string, 0, len(refs))
	for name := range refs {
		pending = append(pending, name)
	}
	sort.Strings(pending)
	names := slices.Clone(pending)
	for len(pending) > 0 {
		var (
			next  []string
			first *ParseError
		)
		for _, name := range pending {
			if _, pe := avroParseText(refs[name], cache, name); pe != nil {
				next = append(next, name)
				if first == nil {
					first = pe
				}
			}
		}
		if len(next) == len(pending) {
			return first
		}
		pending = next
	}
	for _, name := range names {
		if cache.Get(name) == nil {
			return avroParseError(name, "", avroParseRuleReference,
				fmt.Sprintf("the referenced schema does not define a named type %q (an Avro reference's name is the full name of a type it defines)", name))
		}
	}
	return nil
}

// avroParseText parses one schema document into cache. ref names the
// reference being parsed ("" for the main text).
func avroParseText(text string, cache *avro.SchemaCache, ref string) (avro.Schema, *ParseError) {
	if !json.Valid([]byte(text)) {
		var v any
		err := json.Unmarshal([]byte(text), &v)
		msg := "not valid JSON"
		var se *json.SyntaxError
		if errors.As(err, &se) {
			msg = fmt.Sprintf("not valid JSON at byte %d: %v", se.Offset, se)
		}
		return nil, avroParseError(ref, "", avroParseRuleJSON, msg)
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, avroParseError(ref, "", avroParseRuleJSON, err.Error())
	}
	if loc, msg := avroPrecheck(doc); loc != "" {
		return nil, avroParseError(ref, loc, avroParseRuleFixedSize, msg)
	}
	sch, err := avro.ParseWithCache(text, "", cache)
	if err != nil {
		rule, loc := avroLocate(doc, err)
		msg := err.Error()
		if rule == avroParseRuleDefault && loc != "" {
			// hamba's message shows the default as <nil>: show the text's.
			field, _ := avroAt(doc, strings.TrimSuffix(loc, "/default")).(map[string]any)
			typ := "value of the field's type"
			if i := strings.LastIndex(msg, " not a "); i >= 0 {
				typ = msg[i+len(" not a "):]
			}
			msg = fmt.Sprintf("field %q: default %s is not a valid %s", field["name"], avroShort(field["default"]), typ)
		}
		return nil, avroParseError(ref, loc, rule, msg)
	}
	if loc, msg := avroCheckDefaults(doc, sch, nil); loc != "" {
		return nil, avroParseError(ref, loc, avroParseRuleDefault, msg)
	}
	return sch, nil
}

// --- walking the JSON document -------------------------------------------

// avroPtr is a JSON pointer as its segments, joined only when reported:
// joining at every level of a deep document would cost its depth squared.
// Walks append to it as they descend; an avroPtr must not be kept beyond
// the call it is passed to.
type avroPtr []string

// at joins the pointer, with extra segments.
func (p avroPtr) at(extra ...string) string {
	var b strings.Builder
	for _, seg := range p {
		b.WriteString(avroPathJoin("", seg))
	}
	for _, seg := range extra {
		b.WriteString(avroPathJoin("", seg))
	}
	return b.String()
}

// avroNode is one place of a schema document: a schema, or a record field.
type avroNode struct {
	ptr   avroPtr
	ns    string // the enclosing namespace
	v     any
	field bool // v is a record field object
}

// avroVisit calls fn on every schema and field of a document, depth first in
// the order the parser reads them, until fn returns true.
func avroVisit(v any, ptr avroPtr, ns string, fn func(avroNode) bool) bool {
	if fn(avroNode{ptr: ptr, ns: ns, v: v}) {
		return true
	}
	switch t := v.(type) {
	case []any:
		for i, b := range t {
			if avroVisit(b, append(ptr, strconv.Itoa(i)), ns, fn) {
				return true
			}
		}
	case map[string]any:
		if u, ok := t["type"].([]any); ok {
			return avroVisit(u, append(ptr, "type"), ns, fn)
		}
		typ, _ := t["type"].(string)
		switch typ {
		case "record", "error":
			inner := avroNamespace(t, ns)
			fields, _ := t["fields"].([]any)
			for i, f := range fields {
				fp := append(ptr, "fields", strconv.Itoa(i))
				if fn(avroNode{ptr: fp, ns: inner, v: f, field: true}) {
					return true
				}
				if fm, ok := f.(map[string]any); ok {
					if ft, ok := fm["type"]; ok && avroVisit(ft, append(fp, "type"), inner, fn) {
						return true
					}
				}
			}
		case "array":
			if items, ok := t["items"]; ok {
				return avroVisit(items, append(ptr, "items"), avroNamespace(t, ns), fn)
			}
		case "map":
			if values, ok := t["values"]; ok {
				return avroVisit(values, append(ptr, "values"), avroNamespace(t, ns), fn)
			}
		}
	}
	return false
}

func avroIsNamedKind(typ string) bool {
	return typ == "record" || typ == "error" || typ == "enum" || typ == "fixed"
}

func avroIsPrimitive(name string) bool {
	switch name {
	case "null", "boolean", "int", "long", "float", "double", "bytes", "string":
		return true
	}
	return false
}

func avroIsKeyword(name string) bool {
	return avroIsPrimitive(name) || avroIsNamedKind(name) || name == "array" || name == "map"
}

// avroNamespace is the namespace a named definition m sets for what it
// encloses, as hamba reads it.
func avroNamespace(m map[string]any, ns string) string {
	typ, _ := m["type"].(string)
	if !avroIsNamedKind(typ) {
		return ns
	}
	name, _ := m["name"].(string)
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[:i]
	}
	if n, _ := m["namespace"].(string); n != "" {
		return n
	}
	return ns
}

func avroDefinedName(m map[string]any, ns string) string {
	name, _ := m["name"].(string)
	if strings.Contains(name, ".") {
		return name
	}
	if n, _ := m["namespace"].(string); n != "" {
		ns = n
	}
	if ns == "" {
		return name
	}
	return ns + "." + name
}

func avroValidName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		letter := r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r == '_'
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}

func avroValidFullName(name string) bool {
	for part := range strings.SplitSeq(name, ".") {
		if !avroValidName(part) {
			return false
		}
	}
	return true
}

func avroStrings(v any) ([]string, bool) {
	a, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(a))
	for _, e := range a {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// avroPrecheck rejects what the parser would choke on rather than refuse:
// fixed sizes that are not small non-negative integers.
func avroPrecheck(doc any) (loc, msg string) {
	avroVisit(doc, nil, "", func(n avroNode) bool {
		m, ok := n.v.(map[string]any)
		if !ok || n.field || m["type"] != "fixed" {
			return false
		}
		num, ok := m["size"].(json.Number)
		if !ok {
			return false
		}
		size, err := num.Int64()
		if err != nil || size < 0 || size > avroMaxFixedSize {
			loc, msg = n.ptr.at("size"), fmt.Sprintf("fixed size %s must be an integer from 0 to %d", num, avroMaxFixedSize)
			return true
		}
		return false
	})
	return loc, msg
}

// avroLocate names the parse rule hamba's error breaks and, where it can,
// the JSON pointer of the offending place in doc.
//
// hamba/avro has no typed parse errors, so the rule is told by the error's
// text; TestAvroLocate_HambaTextsPinned pins every text matched below, and
// fails on a hamba/avro upgrade that rewords one.
func avroLocate(doc any, err error) (rule, loc string) {
	msg := err.Error()
	find := func(pred func(n avroNode, m map[string]any) string) string {
		var at string
		avroVisit(doc, nil, "", func(n avroNode) bool {
			m, _ := n.v.(map[string]any)
			if p := pred(n, m); p != "" {
				at = p
				return true
			}
			return false
		})
		if at == "*" {
			return ""
		}
		return at
	}
	kindOf := func(n avroNode, m map[string]any) string {
		if m == nil || n.field {
			return ""
		}
		s, _ := m["type"].(string)
		return s
	}
	root := func(p string) string {
		if p == "" {
			return "*" // found, at the root
		}
		return p
	}
	switch {
	case strings.Contains(msg, "invalid default for field "):
		name := msg[strings.Index(msg, "invalid default for field ")+len("invalid default for field "):]
		if i := strings.Index(name, ". "); i >= 0 {
			name = name[:i]
		}
		return avroParseRuleDefault, find(func(n avroNode, m map[string]any) string {
			if _, has := m["default"]; n.field && has && m["name"] == name {
				return n.ptr.at("default")
			}
			return ""
		})
	case strings.Contains(msg, "unknown type"):
		return avroParseRuleUnknownType, find(func(n avroNode, m map[string]any) string {
			if n.field {
				return ""
			}
			switch t := n.v.(type) {
			case string:
				if !avroIsPrimitive(t) {
					return root(n.ptr.at())
				}
			case map[string]any:
				switch typ := t["type"].(type) {
				case string:
					if !avroIsKeyword(typ) {
						return n.ptr.at("type")
					}
				case []any:
				default:
					return root(n.ptr.at())
				}
			case []any, nil:
			default:
				return root(n.ptr.at())
			}
			return ""
		})
	case strings.Contains(msg, "non-empty name key required"):
		return avroParseRuleMissingName, find(func(n avroNode, m map[string]any) string {
			if m == nil || (!n.field && !avroIsNamedKind(kindOf(n, m))) {
				return ""
			}
			if s, _ := m["name"].(string); s == "" {
				return root(n.ptr.at())
			}
			return ""
		})
	case strings.Contains(msg, "error decoding"):
		return avroParseRuleMalformed, find(func(n avroNode, m map[string]any) string {
			if m == nil {
				return ""
			}
			for _, k := range []string{"name", "namespace", "doc", "order"} {
				if v, ok := m[k]; ok {
					if _, isStr := v.(string); !isStr {
						return n.ptr.at(k)
					}
				}
			}
			if v, ok := m["aliases"]; ok {
				if _, ok := avroStrings(v); !ok {
					return n.ptr.at("aliases")
				}
			}
			switch kindOf(n, m) {
			case "record", "error":
				if f, ok := m["fields"].([]any); !ok && m["fields"] != nil {
					return n.ptr.at("fields")
				} else {
					for i, e := range f {
						if _, ok := e.(map[string]any); !ok {
							return n.ptr.at("fields", strconv.Itoa(i))
						}
					}
				}
			case "enum":
				if v, ok := m["symbols"]; ok {
					if _, ok := avroStrings(v); !ok {
						return n.ptr.at("symbols")
					}
				}
				if v, ok := m["default"]; ok {
					if _, ok := v.(string); !ok {
						return n.ptr.at("default")
					}
				}
			case "fixed":
				if v, ok := m["size"]; ok {
					if _, ok := v.(json.Number); !ok {
						return n.ptr.at("size")
					}
				}
			}
			return ""
		})
	case strings.Contains(msg, "invalid name"), strings.Contains(msg, "name must be a non-empty"), strings.Contains(msg, "invalid symbol"):
		return avroParseRuleName, find(func(n avroNode, m map[string]any) string {
			if m == nil {
				return ""
			}
			kind := kindOf(n, m)
			if !n.field && !avroIsNamedKind(kind) {
				return ""
			}
			name, _ := m["name"].(string)
			if n.field && !avroValidName(name) || !n.field && !avroValidFullName(name) {
				return n.ptr.at("name")
			}
			if ns, _ := m["namespace"].(string); !n.field && ns != "" && !strings.Contains(name, ".") && !avroValidFullName(ns) {
				return n.ptr.at("namespace")
			}
			aliases, _ := avroStrings(m["aliases"])
			for i, a := range aliases {
				if n.field && !avroValidName(a) || !n.field && !avroValidFullName(a) {
					return n.ptr.at("aliases", strconv.Itoa(i))
				}
			}
			if kind == "enum" {
				symbols, _ := avroStrings(m["symbols"])
				for i, s := range symbols {
					if !avroValidName(s) {
						return n.ptr.at("symbols", strconv.Itoa(i))
					}
				}
			}
			return ""
		})
	case strings.Contains(msg, "must have an array of fields"):
		return avroParseRuleFields, find(func(n avroNode, m map[string]any) string {
			if k := kindOf(n, m); (k == "record" || k == "error") && m["fields"] == nil {
				return root(n.ptr.at())
			}
			return ""
		})
	case strings.Contains(msg, "duplicate name"):
		seen := map[string]bool{}
		return avroParseRuleDupName, find(func(n avroNode, m map[string]any) string {
			if !avroIsNamedKind(kindOf(n, m)) {
				return ""
			}
			full := avroDefinedName(m, n.ns)
			if seen[full] {
				return root(n.ptr.at())
			}
			seen[full] = true
			return ""
		})
	case strings.Contains(msg, "duplicate field name"):
		return avroParseRuleDupField, find(func(n avroNode, m map[string]any) string {
			if k := kindOf(n, m); k != "record" && k != "error" {
				return ""
			}
			fields, _ := m["fields"].([]any)
			seen := map[string]bool{}
			for i, f := range fields {
				fm, _ := f.(map[string]any)
				name, _ := fm["name"].(string)
				if seen[name] {
					return n.ptr.at("fields", strconv.Itoa(i))
				}
				seen[name] = true
			}
			return ""
		})
	case strings.Contains(msg, "field requires a type"):
		return avroParseRuleFieldType, find(func(n avroNode, m map[string]any) string {
			if _, has := m["type"]; n.field && m != nil && !has {
				return n.ptr.at()
			}
			return ""
		})
	case strings.Contains(msg, "order") && strings.Contains(msg, "is invalid"):
		return avroParseRuleOrder, find(func(n avroNode, m map[string]any) string {
			if o, has := m["order"]; n.field && has && o != "ascending" && o != "descending" && o != "ignore" {
				return n.ptr.at("order")
			}
			return ""
		})
	case strings.Contains(msg, "symbol"):
		return avroParseRuleEnum, find(func(n avroNode, m map[string]any) string {
			if kindOf(n, m) != "enum" {
				return ""
			}
			symbols, _ := avroStrings(m["symbols"])
			if len(symbols) == 0 {
				return n.ptr.at("symbols")
			}
			seen := map[string]bool{}
			for i, s := range symbols {
				if seen[s] {
					return n.ptr.at("symbols", strconv.Itoa(i))
				}
				seen[s] = true
			}
			if d, ok := m["default"].(string); ok && d != "" && !seen[d] {
				return n.ptr.at("default")
			}
			return ""
		})
	case strings.Contains(msg, "must have an items key"):
		return avroParseRuleItems, find(func(n avroNode, m map[string]any) string {
			if _, has := m["items"]; kindOf(n, m) == "array" && !has {
				return root(n.ptr.at())
			}
			return ""
		})
	case strings.Contains(msg, "must have an values key"):
		return avroParseRuleValues, find(func(n avroNode, m map[string]any) string {
			if _, has := m["values"]; kindOf(n, m) == "map" && !has {
				return root(n.ptr.at())
			}
			return ""
		})
	case strings.Contains(msg, "union type"):
		return avroParseRuleUnion, find(func(n avroNode, _ map[string]any) string {
			u, ok := n.v.([]any)
			if !ok || n.field {
				return ""
			}
			seen := map[string]bool{}
			for i, b := range u {
				key := avroBranchKey(b, n.ns)
				if key == "union" || seen[key] {
					return n.ptr.at(strconv.Itoa(i))
				}
				seen[key] = true
			}
			return ""
		})
	case strings.Contains(msg, "fixed must have a size"), strings.Contains(msg, "fixed size"):
		return avroParseRuleFixedSize, find(func(n avroNode, m map[string]any) string {
			if kindOf(n, m) != "fixed" {
				return ""
			}
			if num, ok := m["size"].(json.Number); !ok {
				return root(n.ptr.at())
			} else if i, err := num.Int64(); err != nil || i < 0 {
				return n.ptr.at("size")
			}
			return ""
		})
	}
	return avroParseRuleInvalid, ""
}

// avroBranchKey approximates the name hamba gives a union branch, to find
// duplicate branches.
func avroBranchKey(b any, ns string) string {
	switch t := b.(type) {
	case nil:
		return "null"
	case string:
		if avroIsPrimitive(t) || strings.Contains(t, ".") || ns == "" {
			return t
		}
		return ns + "." + t
	case []any:
		return "union"
	case map[string]any:
		if _, ok := t["type"].([]any); ok {
			return "union"
		}
		typ, _ := t["type"].(string)
		if avroIsNamedKind(typ) {
			return avroDefinedName(t, ns)
		}
		if lt, ok := t["logicalType"].(string); ok && avroIsPrimitive(typ) {
			return typ + "." + lt
		}
		return avroBranchKey(typ, ns)
	}
	return ""
}

// avroCheckDefaults walks the document along the parsed schema and checks
// every field default against the specification, more strictly than hamba
// does (an int default must be an integer in range, a fixed default must
// have the fixed size).
func avroCheckDefaults(v any, s avro.Schema, ptr avroPtr) (loc, msg string) {
	switch t := v.(type) {
	case []any:
		u, ok := avroDeref(s).(*avro.UnionSchema)
		if !ok {
			return "", ""
		}
		types := u.Types()
		for i := range min(len(t), len(types)) {
			if loc, msg := avroCheckDefaults(t[i], types[i], append(ptr, strconv.Itoa(i))); loc != "" {
				return loc, msg
			}
		}
	case map[string]any:
		if u, ok := t["type"].([]any); ok {
			return avroCheckDefaults(u, s, append(ptr, "type"))
		}
		switch x := avroDeref(s).(type) {
		case *avro.RecordSchema:
			fields, _ := t["fields"].([]any)
			for i, f := range x.Fields() {
				if i >= len(fields) {
					break
				}
				fm, ok := fields[i].(map[string]any)
				if !ok {
					continue
				}
				fp := append(ptr, "fields", strconv.Itoa(i))
				if loc, msg := avroCheckDefaults(fm["type"], f.Type(), append(fp, "type")); loc != "" {
					return loc, msg
				}
				if d, ok := fm["default"]; ok {
					if why := avroDefaultError(f.Type(), d); why != "" {
						return fp.at("default"), fmt.Sprintf("field %q: default %s: %s", f.Name(), avroShort(d), why)
					}
				}
			}
		case *avro.ArraySchema:
			return avroCheckDefaults(t["items"], x.Items(), append(ptr, "items"))
		case *avro.MapSchema:
			return avroCheckDefaults(t["values"], x.Values(), append(ptr, "values"))
		}
	}
	return "", ""
}

// avroAt returns the value at a JSON pointer built by avroVisit (no escapes).
func avroAt(doc any, ptr string) any {
	if ptr == "" {
		return doc
	}
	for seg := range strings.SplitSeq(ptr[1:], "/") {
		switch t := doc.(type) {
		case map[string]any:
			doc = t[seg]
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(t) {
				return nil
			}
			doc = t[i]
		default:
			return nil
		}
	}
	return doc
}

func avroShort(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 40 {
		return string(b[:37]) + "..."
	}
	return string(b)
}

// avroDefaultError says why d is not a valid default for s ("" if it is).
func avroDefaultError(s avro.Schema, d any) string {
	s = avroDeref(s)
	switch x := s.(type) {
	case *avro.UnionSchema:
		// A union's default is a value of its first branch.
		if len(x.Types()) == 0 {
			return "an empty union has no values"
		}
		if why := avroDefaultError(x.Types()[0], d); why != "" {
			return why + " (a union's default must match its first branch)"
		}
		return ""
	case *avro.RecordSchema:
		m, ok := d.(map[string]any)
		if !ok {
			return "not a JSON object for record " + x.FullName()
		}
		for _, f := range x.Fields() {
			fv, ok := m[f.Name()]
			if !ok {
				if !f.HasDefault() {
					return fmt.Sprintf("lacks field %q, which has no default", f.Name())
				}
				continue
			}
			if why := avroDefaultError(f.Type(), fv); why != "" {
				return fmt.Sprintf("field %q: %s", f.Name(), why)
			}
		}
		return ""
	case *avro.EnumSchema:
		if sym, ok := d.(string); !ok || !slices.Contains(x.Symbols(), sym) {
			return "not a symbol of enum " + x.FullName()
		}
		return ""
	case *avro.FixedSchema:
		str, ok := d.(string)
		if !ok || !avroByteString(str) {
			return "not a string of code points 0-255"
		}
		if n := utf8.RuneCountInString(str); n != x.Size() {
			return fmt.Sprintf("has %d bytes, fixed %s has %d", n, x.FullName(), x.Size())
		}
		return ""
	case *avro.ArraySchema:
		a, ok := d.([]any)
		if !ok {
			return "not a JSON array"
		}
		for i, e := range a {
			if why := avroDefaultError(x.Items(), e); why != "" {
				return fmt.Sprintf("item %d: %s", i, why)
			}
		}
		return ""
	case *avro.MapSchema:
		m, ok := d.(map[string]any)
		if !ok {
			return "not a JSON object"
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if why := avroDefaultError(x.Values(), m[k]); why != "" {
				return fmt.Sprintf("value %q: %s", k, why)
			}
		}
		return ""
	}
	switch s.Type() {
	case avro.Null:
		if d != nil {
			return "not null"
		}
	case avro.Boolean:
		if _, ok := d.(bool); !ok {
			return "not a boolean"
		}
	case avro.Int:
		n, ok := d.(json.Number)
		if !ok {
			return "not an int"
		}
		if i, err := n.Int64(); err != nil || i < math.MinInt32 || i > math.MaxInt32 {
			return "not an integer in the int range"
		}
	case avro.Long:
		n, ok := d.(json.Number)
		if !ok {
			return "not a long"
		}
		if _, err := n.Int64(); err != nil {
			return "not an integer in the long range"
		}
	case avro.Float, avro.Double:
		n, ok := d.(json.Number)
		if !ok {
			return "not a number"
		}
		if _, err := n.Float64(); err != nil {
			return "out of range"
		}
	case avro.String:
		if _, ok := d.(string); !ok {
			return "not a string"
		}
	case avro.Bytes:
		if str, ok := d.(string); !ok || !avroByteString(str) {
			return "not a string of code points 0-255"
		}
	}
	return ""
}

func avroByteString(s string) bool {
	for _, r := range s {
		if r > 255 {
			return false
		}
	}
	return true
}

func avroDeref(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return s
}

// --- compatibility ---------------------------------------------------------

// compat resolves writer against p (the reader) by the Avro specification's
// schema-resolution rules and reports every violation.
func (p *avroParsed) compat(writer parsed) []Violation {
	w, ok := writer.(*avroParsed)
	if !ok {
		return []Violation{{Rule: avroRuleTypeMismatch, Message: "the writer schema is not an Avro schema",
			Hint: "register a schema of another type under a new subject"}}
	}
	c := &avroResolver{done: map[[2]avro.Schema]bool{}}
	c.resolve(p.schema, w.schema, nil)
	return c.out
}

type avroResolver struct {
	// done holds the (reader, writer) pairs of named types already resolved:
	// recursive types terminate, and a shared type is reported once, at the
	// first path it is met.
	done map[[2]avro.Schema]bool
	out  []Violation
}

func (c *avroResolver) add(rule string, path avroPtr, msg, hint string) {
	c.out = append(c.out, Violation{Rule: rule, Path: path.at(), Message: msg, Hint: hint})
}

// addStrict adds a finding only StrictRules refuse: Confluent's registry
// (Avro's own schema resolution) ignores logical types.
func (c *avroResolver) addStrict(rule string, path avroPtr, msg, hint string) {
	c.out = append(c.out, Violation{Rule: rule, Path: path.at(), Message: msg, Hint: hint, Strict: true})
}

func avroPathJoin(path, seg string) string {
	seg = strings.ReplaceAll(seg, "~", "~0")
	return path + "/" + strings.ReplaceAll(seg, "/", "~1")
}

// avroPromotes reports whether a writer value of type w can be read as r.
func avroPromotes(w, r avro.Type) bool {
	if w == r {
		return true
	}
	switch w {
	case avro.Int:
		return r == avro.Long || r == avro.Float || r == avro.Double
	case avro.Long:
		return r == avro.Float || r == avro.Double
	case avro.Float:
		return r == avro.Double
	case avro.String:
		return r == avro.Bytes
	case avro.Bytes:
		return r == avro.String
	}
	return false
}

func avroIsPrimitiveType(t avro.Type) bool {
	return avroIsPrimitive(string(t))
}

// avroNamesMatch: the same unqualified name (as Avro Java, and so Confluent,
// compares them), or the writer's full name among the reader's aliases.
func avroNamesMatch(r, w avro.NamedSchema) bool {
	return r.Name() == w.Name() || r.FullName() == w.FullName() || slices.Contains(r.Aliases(), w.FullName())
}

// avroMatches is the specification's shallow "match" used to pick a union
// branch: the same kind, names matching for named types, promotable
// primitives.
func avroMatches(r, w avro.Schema, exact bool) bool {
	r, w = avroDeref(r), avroDeref(w)
	if avroIsPrimitiveType(w.Type()) && avroIsPrimitiveType(r.Type()) {
		if exact {
			return r.Type() == w.Type() && avroLogicalName(r) == avroLogicalName(w)
		}
		return avroPromotes(w.Type(), r.Type())
	}
	if r.Type() != w.Type() {
		return false
	}
	rn, rok := r.(avro.NamedSchema)
	wn, wok := w.(avro.NamedSchema)
	if rok && wok {
		if exact {
			return rn.FullName() == wn.FullName()
		}
		return avroNamesMatch(rn, wn)
	}
	return true
}

// avroBestBranch picks the reader union's branch for writer type w: an exact
// match first (as Avro Java and hamba do), else the first that matches.
func avroBestBranch(u *avro.UnionSchema, w avro.Schema) avro.Schema {
	for _, exact := range []bool{true, false} {
		for _, b := range u.Types() {
			if avroMatches(b, w, exact) {
				return b
			}
		}
	}
	return nil
}

func avroLogical(s avro.Schema) avro.LogicalSchema {
	if l, ok := avroDeref(s).(avro.LogicalTypeSchema); ok {
		return l.Logical()
	}
	return nil
}

func avroLogicalName(s avro.Schema) string {
	if l := avroLogical(s); l != nil {
		return string(l.Type())
	}
	return ""
}

// avroBranchName names a union branch in a path: the full name of a named
// type, else the type (with its logical type, as hamba names branches).
func avroBranchName(s avro.Schema) string {
	s = avroDeref(s)
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	if l := avroLogicalName(s); l != "" {
		return string(s.Type()) + "." + l
	}
	return string(s.Type())
}

// avroDescribe names a type in a message.
func avroDescribe(s avro.Schema) string {
	s = avroDeref(s)
	switch x := s.(type) {
	case avro.NamedSchema:
		return string(x.Type()) + " " + x.FullName()
	case *avro.UnionSchema:
		names := make([]string, 0, len(x.Types()))
		for _, b := range x.Types() {
			names = append(names, avroBranchName(b))
		}
		return "union [" + strings.Join(names, ", ") + "]"
	case *avro.ArraySchema:
		return "array of " + avroDescribe(x.Items())
	case *avro.MapSchema:
		return "map of " + avroDescribe(x.Values())
	}
	return avroBranchName(s)
}

const avroHintType = "keep the type, or change it only along a promotion (int to long, float or double; long to float or double; float to double; string to or from bytes); otherwise add a new field with a default and stop writing the old one"

func (c *avroResolver) resolve(r, w avro.Schema, path avroPtr) {
	r, w = avroDeref(r), avroDeref(w)
	if wu, ok := w.(*avro.UnionSchema); ok {
		// Every branch the writer may write must be readable.
		ru, readerUnion := r.(*avro.UnionSchema)
		for _, wb := range wu.Types() {
			bp := append(path, avroBranchName(wb))
			if readerUnion {
				if rb := avroBestBranch(ru, wb); rb != nil {
					c.resolve(rb, wb, bp)
				} else {
					c.add(avroRuleMissingBranch, bp,
						fmt.Sprintf("the writer's union branch %s has no matching branch in the reader's %s", avroDescribe(wb), avroDescribe(ru)),
						fmt.Sprintf("add %s to the reader's union, or stop writing it", avroBranchName(wb)))
				}
				continue
			}
			if avroMatches(r, wb, false) {
				c.resolve(r, wb, bp)
			} else {
				c.add(avroRuleMissingBranch, bp,
					fmt.Sprintf("the writer's union branch %s cannot be read as %s", avroDescribe(wb), avroDescribe(r)),
					fmt.Sprintf("make the reader a union that includes %s, or stop writing it", avroBranchName(wb)))
			}
		}
		return
	}
	if ru, ok := r.(*avro.UnionSchema); ok {
		rb := avroBestBranch(ru, w)
		if rb == nil {
			c.add(avroRuleMissingBranch, path,
				fmt.Sprintf("the reader's %s has no branch for the writer's %s", avroDescribe(ru), avroDescribe(w)),
				fmt.Sprintf("add %s to the reader's union", avroBranchName(w)))
			return
		}
		c.resolve(rb, w, append(path, avroBranchName(rb)))
		return
	}

	if avroIsPrimitiveType(w.Type()) && avroIsPrimitiveType(r.Type()) {
		if !avroPromotes(w.Type(), r.Type()) {
			c.mismatch(r, w, path)
			return
		}
		c.logical(r, w, path)
		return
	}
	if r.Type() != w.Type() {
		c.mismatch(r, w, path)
		return
	}
	switch wt := w.(type) {
	case *avro.ArraySchema:
		c.resolve(r.(*avro.ArraySchema).Items(), wt.Items(), append(path, "items"))
		return
	case *avro.MapSchema:
		c.resolve(r.(*avro.MapSchema).Values(), wt.Values(), append(path, "values"))
		return
	}
	key := [2]avro.Schema{r, w}
	if c.done[key] {
		return
	}
	c.done[key] = true
	rn, wn := r.(avro.NamedSchema), w.(avro.NamedSchema)
	if !avroNamesMatch(rn, wn) {
		c.add(avroRuleNameMismatch, path,
			fmt.Sprintf("the writer's %s %s is read as %s %s: the names differ", w.Type(), wn.FullName(), r.Type(), rn.FullName()),
			fmt.Sprintf("keep the name, or add %q to the reader's aliases", wn.FullName()))
	}
	switch wt := w.(type) {
	case *avro.RecordSchema:
		c.record(r.(*avro.RecordSchema), wt, path)
	case *avro.EnumSchema:
		rt := r.(*avro.EnumSchema)
		if rt.HasDefault() {
			return
		}
		var missing []string
		for _, sym := range wt.Symbols() {
			if !slices.Contains(rt.Symbols(), sym) {
				missing = append(missing, sym)
			}
		}
		if len(missing) > 0 {
			c.add(avroRuleMissingSymbols, path,
				fmt.Sprintf("the reader's enum %s lacks the writer's symbols %s and has no default", rt.FullName(), strings.Join(missing, ", ")),
				"add the symbols back, or give the reader's enum a default symbol")
		}
	case *avro.FixedSchema:
		rt := r.(*avro.FixedSchema)
		if rt.Size() != wt.Size() {
			c.add(avroRuleFixedSize, path,
				fmt.Sprintf("the writer's fixed %s has size %d, the reader's %s has size %d", wt.FullName(), wt.Size(), rt.FullName(), rt.Size()),
				"keep the size; for another size add a new field of a new fixed type")
		}
		c.logical(r, w, path)
	}
}

func (c *avroResolver) mismatch(r, w avro.Schema, path avroPtr) {
	c.add(avroRuleTypeMismatch, path,
		fmt.Sprintf("the writer's %s cannot be read as %s", avroDescribe(w), avroDescribe(r)), avroHintType)
}

func (c *avroResolver) record(r, w *avro.RecordSchema, path avroPtr) {
	for _, rf := range r.Fields() {
		wf := avroField(w, rf.Name())
		for _, a := range rf.Aliases() {
			if wf != nil {
				break
			}
			wf = avroField(w, a)
		}
		fp := append(path, rf.Name())
		if wf != nil {
			c.resolve(rf.Type(), wf.Type(), fp)
			continue
		}
		if !rf.HasDefault() {
			c.add(avroRuleMissingDefault, fp,
				fmt.Sprintf("the reader's field %q is not in the writer's record %s and has no default", rf.Name(), w.FullName()),
				"give the field a default (for an optional field, type [\"null\", ...] with default null); if the field was renamed, list the old name in its aliases")
		}
	}
}

func avroField(r *avro.RecordSchema, name string) *avro.Field {
	for _, f := range r.Fields() {
		if f.Name() == name {
			return f
		}
	}
	return nil
}

// logical checks logical types over compatible physical types. Adding or
// removing a logical type is allowed (the bytes read the same, as the
// specification has readers ignore logical types they do not know); two
// different logical types on the same bytes, or a decimal whose scale
// changes or precision narrows, would silently read another value.
func (c *avroResolver) logical(r, w avro.Schema, path avroPtr) {
	rl, wl := avroLogical(r), avroLogical(w)
	if rl == nil || wl == nil {
		return
	}
	if rl.Type() != wl.Type() {
		c.addStrict(avroRuleLogicalMismatch, path,
			fmt.Sprintf("the writer's %s values would be read as %s: the same bytes, another value", wl.Type(), rl.Type()),
			"keep the logical type; for another representation add a new field")
		return
	}
	rd, rok := rl.(*avro.DecimalLogicalSchema)
	wd, wok := wl.(*avro.DecimalLogicalSchema)
	if !rok || !wok {
		return
	}
	if rd.Scale() != wd.Scale() {
		way, n := "smaller", rd.Scale()-wd.Scale()
		if n < 0 {
			way, n = "larger", -n
		}
		c.addStrict(avroRuleDecimalScale, path,
			fmt.Sprintf("the decimal scale changes from %d to %d: every value would be read 10^%d times %s", wd.Scale(), rd.Scale(), n, way),
			"keep the scale; for another scale add a new field")
	}
	if rd.Precision() < wd.Precision() {
		c.addStrict(avroRuleDecimalPrecision, path,
			fmt.Sprintf("the decimal precision narrows from %d to %d: written values may not fit", wd.Precision(), rd.Precision()),
			"keep or widen the precision")
	}
}

// --- validation ------------------------------------------------------------

// validate decodes payload as Avro binary of the schema with hamba's reader,
// walking the schema itself so that a failure names the field path, a
// truncated payload fails (hamba's Unmarshal takes an early end for
// success), and trailing bytes fail.
func (p *avroParsed) validate(payload []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &ValidationError{Rule: avroValidationRule, Reason: fmt.Sprintf("the decoder failed: %v", r)}
		}
	}()
	d := &avroDecoder{
		r:      avro.NewReader(nil, 0).Reset(payload),
		size:   int64(len(payload)),
		budget: 8*len(payload) + avroMinValueBudget,
	}
	if err := d.value(p.schema, 0); err != nil {
		return err
	}
	if d.r.Peek(); d.r.Error == nil {
		return &ValidationError{Rule: avroValidationRule, Reason: "trailing bytes after the value"}
	}
	return nil
}

type avroDecoder struct {
	r      *avro.Reader
	size   int64
	budget int // values left to decode: bounds arrays of zero-byte items
	// path holds the segments to the value being read, joined only on failure.
	path []string
}

func (d *avroDecoder) fail(format string, args ...any) error {
	var b strings.Builder
	for _, seg := range d.path {
		b.WriteString(avroPathJoin("", seg))
	}
	return &ValidationError{Path: b.String(), Rule: avroValidationRule, Reason: fmt.Sprintf(format, args...)}
}

// check turns the reader's error, if any, into a ValidationError.
func (d *avroDecoder) check(what string) error {
	err := d.r.Error
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return d.fail("the payload ends inside %s", what)
	}
	return d.fail("%s: %s", what, strings.TrimPrefix(err.Error(), "avro: "))
}

// length reads a byte length and checks it fits the payload.
func (d *avroDecoder) length(what string) (int64, error) {
	n := d.r.ReadLong()
	if err := d.check(what); err != nil {
		return 0, err
	}
	if n < 0 || n > d.size {
		return 0, d.fail("%s length %d is out of range", what, n)
	}
	return n, nil
}

// read reads n bytes.
func (d *avroDecoder) read(n int64, what string) ([]byte, error) {
	if n > d.size {
		return nil, d.fail("the payload ends inside %s", what)
	}
	b := make([]byte, n)
	d.r.Read(b)
	return b, d.check(what)
}

func (d *avroDecoder) value(s avro.Schema, depth int) error {
	d.budget--
	if d.budget < 0 {
		return d.fail("too many values to validate")
	}
	s = avroDeref(s)
	switch x := s.(type) {
	case *avro.RecordSchema:
		if depth >= avroMaxRecordDepth {
			return d.fail("records nested deeper than %d", avroMaxRecordDepth)
		}
		for _, f := range x.Fields() {
			d.path = append(d.path, f.Name())
			if err := d.value(f.Type(), depth+1); err != nil {
				return err
			}
			d.path = d.path[:len(d.path)-1]
		}
		return nil
	case *avro.EnumSchema:
		i := d.r.ReadInt()
		if err := d.check("an enum"); err != nil {
			return err
		}
		if i < 0 || int(i) >= len(x.Symbols()) {
			return d.fail("enum index %d is not a symbol of %s", i, x.FullName())
		}
		return nil
	case *avro.FixedSchema:
		_, err := d.read(int64(x.Size()), "fixed "+x.FullName())
		return err
	case *avro.UnionSchema:
		i := d.r.ReadLong()
		if err := d.check("a union"); err != nil {
			return err
		}
		if i < 0 || i >= int64(len(x.Types())) {
			return d.fail("union branch %d does not exist (the union has %d)", i, len(x.Types()))
		}
		return d.value(x.Types()[i], depth)
	case *avro.ArraySchema:
		return d.blocks("an array", func(i int64) error {
			d.path = append(d.path, strconv.FormatInt(i, 10))
			if err := d.value(x.Items(), depth); err != nil {
				return err
			}
			d.path = d.path[:len(d.path)-1]
			return nil
		})
	case *avro.MapSchema:
		return d.blocks("a map", func(int64) error {
			n, err := d.length("a map key")
			if err != nil {
				return err
			}
			key, err := d.read(n, "a map key")
			if err != nil {
				return err
			}
			if !utf8.Valid(key) {
				return d.fail("a map key is not valid UTF-8")
			}
			d.path = append(d.path, string(key))
			if err := d.value(x.Values(), depth); err != nil {
				return err
			}
			d.path = d.path[:len(d.path)-1]
			return nil
		})
	}
	switch s.Type() {
	case avro.Null:
		return nil
	case avro.Boolean:
		d.r.ReadBool()
		return d.check("a boolean")
	case avro.Int:
		d.r.ReadInt()
		return d.check("an int")
	case avro.Long:
		d.r.ReadLong()
		return d.check("a long")
	case avro.Float:
		d.r.ReadFloat()
		return d.check("a float")
	case avro.Double:
		d.r.ReadDouble()
		return d.check("a double")
	case avro.Bytes, avro.String:
		what := "bytes"
		if s.Type() == avro.String {
			what = "a string"
		}
		n, err := d.length(what)
		if err != nil {
			return err
		}
		b, err := d.read(n, what)
		if err != nil {
			return err
		}
		if s.Type() == avro.String && !utf8.Valid(b) {
			return d.fail("the string is not valid UTF-8")
		}
		return nil
	}
	return d.fail("unsupported schema type %s", s.Type())
}

// blocks reads the blocks of an array or map, calling item for each element.
func (d *avroDecoder) blocks(what string, item func(i int64) error) error {
	var i int64
	for {
		n := d.r.ReadLong()
		if err := d.check(what); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if n < 0 {
			if n == math.MinInt64 {
				return d.fail("%s block count is out of range", what)
			}
			n = -n
			if _, err := d.length(what + " block size"); err != nil {
				return err
			}
		}
		for range n {
			if err := item(i); err != nil {
				return err
			}
			i++
		}
	}
}
