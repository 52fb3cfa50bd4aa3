package contract

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Rules are an interaction part's matching rules by category ("body",
// "header", "query", "path", "status", "metadata", "content") and then by
// key: a JSON path for bodies, a name for headers, query parameters and
// metadata, "" for path and status.
type Rules map[string]map[string]*RuleList

// RuleList is the matchers that apply at one place, combined with AND
// (the default) or OR.
type RuleList struct {
	Combine  string // "AND" or "OR"; "" is AND
	Matchers []Matcher
}

// Matcher is one matching rule, as Pact defines them: "equality",
// "regex", "type" (with Min and Max for arrays), "include", "integer",
// "decimal", "number", "boolean", "null", "date", "time", "datetime"
// (with a Java DateTimeFormatter Format), "contentType", "values",
// "arrayContains", "statusCode", "notEmpty", "semver", "eachKey",
// "eachValue".
type Matcher struct {
	Type     string
	Regex    string
	Min, Max *int
	Value    any    // include: the substring; contentType: the media type; eachKey/eachValue: an example
	Format   string // date, time, datetime
	Status   any    // statusCode: a class name or a list of codes
	Variants []Variant
	Rules    []Matcher // eachKey, eachValue
	// Extra holds attributes not interpreted, written back as read.
	Extra map[string]json.RawMessage
}

// Variant is one element an arrayContains matcher looks for.
type Variant struct {
	Index int
	Rules map[string]*RuleList
	Gens  map[string]Generator
}

// Generator makes a value at verification or mock time: its "type"
// (RandomInt, RandomDecimal, RandomHexadecimal, RandomString, Regex, Uuid,
// Date, Time, DateTime, RandomBoolean, ProviderState, MockServerURL) and
// the type's attributes.
type Generator map[string]any

// Generators are an interaction part's generators, keyed as Rules are.
type Generators map[string]map[string]Generator

func intp(n int) *int { return &n }

// MarshalJSON writes the matcher in the V3/V4 form.
func (m Matcher) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, 4+len(m.Extra))
	for k, v := range m.Extra {
		out[k] = v
	}
	out["match"] = m.Type
	if m.Regex != "" {
		out["regex"] = m.Regex
	}
	if m.Min != nil {
		out["min"] = *m.Min
	}
	if m.Max != nil {
		out["max"] = *m.Max
	}
	if m.Value != nil {
		out["value"] = m.Value
	}
	if m.Format != "" {
		out["format"] = m.Format
	}
	if m.Status != nil {
		out["status"] = m.Status
	}
	if m.Type == "arrayContains" {
		vs := make([]map[string]any, 0, len(m.Variants))
		for _, v := range m.Variants {
			e := map[string]any{"index": v.Index, "rules": v.Rules}
			if len(v.Gens) > 0 {
				e["generators"] = v.Gens
			}
			vs = append(vs, e)
		}
		out["variants"] = vs
	}
	if m.Rules != nil {
		out["rules"] = m.Rules
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads a matcher in the V2, V3 or V4 form.
func (m *Matcher) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("matcher must be an object: %w", err)
	}
	*m = Matcher{}
	str := func(k string) (string, error) {
		v, ok := raw[k]
		if !ok {
			return "", nil
		}
		delete(raw, k)
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", fmt.Errorf("matcher %q must be a string", k)
		}
		return s, nil
	}
	num := func(k string) (*int, error) {
		v, ok := raw[k]
		if !ok {
			return nil, nil
		}
		delete(raw, k)
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			var s string
			if json.Unmarshal(v, &s) != nil {
				return nil, fmt.Errorf("matcher %q must be a number", k)
			}
			n = json.Number(s)
		}
		i, err := strconv.Atoi(string(n))
		if err != nil || i < 0 {
			return nil, fmt.Errorf("matcher %q must be a non-negative integer, not %s", k, n)
		}
		return &i, nil
	}
	var err error
	if m.Type, err = str("match"); err != nil {
		return err
	}
	if m.Regex, err = str("regex"); err != nil {
		return err
	}
	if m.Min, err = num("min"); err != nil {
		return err
	}
	if m.Max, err = num("max"); err != nil {
		return err
	}
	if m.Format, err = str("format"); err != nil {
		return err
	}
	for _, k := range []string{"date", "time", "timestamp", "datetime"} {
		if _, ok := raw[k]; ok && m.Format == "" {
			f, err := str(k)
			if err != nil {
				return err
			}
			m.Format = f
			if m.Type == "" {
				m.Type = k
			}
		}
	}
	if v, ok := raw["value"]; ok {
		delete(raw, "value")
		if err := json.Unmarshal(v, &m.Value); err != nil {
			return err
		}
	}
	if v, ok := raw["status"]; ok {
		delete(raw, "status")
		if err := json.Unmarshal(v, &m.Status); err != nil {
			return err
		}
	}
	if v, ok := raw["rules"]; ok {
		delete(raw, "rules")
		if err := json.Unmarshal(v, &m.Rules); err != nil {
			return fmt.Errorf("matcher rules: %w", err)
		}
	}
	if v, ok := raw["variants"]; ok {
		delete(raw, "variants")
		var vs []struct {
			Index int                        `json:"index"`
			Rules map[string]*RuleList       `json:"rules"`
			Gens  map[string]Generator       `json:"generators"`
			Extra map[string]json.RawMessage `json:"-"`
		}
		if err := json.Unmarshal(v, &vs); err != nil {
			return fmt.Errorf("matcher variants: %w", err)
		}
		for _, x := range vs {
			m.Variants = append(m.Variants, Variant{Index: x.Index, Rules: x.Rules, Gens: x.Gens})
		}
	}
	switch {
	case m.Type == "timestamp":
		m.Type = "datetime"
	case m.Type != "":
	case m.Regex != "":
		m.Type = "regex"
	case m.Min != nil || m.Max != nil:
		m.Type = "type"
	default:
		m.Type = "equality"
	}
	if len(raw) > 0 {
		m.Extra = raw
	}
	return nil
}

// MarshalJSON writes the rule list with its combine.
func (l *RuleList) MarshalJSON() ([]byte, error) {
	c := l.Combine
	if c == "" {
		c = "AND"
	}
	ms := l.Matchers
	if ms == nil {
		ms = []Matcher{}
	}
	return json.Marshal(struct {
		Combine  string    `json:"combine"`
		Matchers []Matcher `json:"matchers"`
	}{c, ms})
}

// UnmarshalJSON reads {"matchers": [...], "combine": ...} or, from V2, a
// single matcher.
func (l *RuleList) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("matching rule must be an object: %w", err)
	}
	ms, ok := raw["matchers"]
	if !ok {
		var m Matcher
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		*l = RuleList{Matchers: []Matcher{m}}
		return nil
	}
	*l = RuleList{}
	if err := json.Unmarshal(ms, &l.Matchers); err != nil {
		return fmt.Errorf("matchers: %w", err)
	}
	if c, ok := raw["combine"]; ok {
		if err := json.Unmarshal(c, &l.Combine); err != nil {
			return fmt.Errorf("combine must be a string: %w", err)
		}
		l.Combine = strings.ToUpper(l.Combine)
		if l.Combine != "AND" && l.Combine != "OR" {
			return fmt.Errorf("combine must be AND or OR, not %q", l.Combine)
		}
	}
	return nil
}

// singleCategories hold one rule list, not one per key.
func singleCategory(c string) bool { return c == "path" || c == "status" || c == "method" }

// parseRules reads a V3/V4 matchingRules object.
func parseRules(b json.RawMessage) (Rules, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("matchingRules must be an object: %w", err)
	}
	out := make(Rules, len(raw))
	for cat, v := range raw {
		if singleCategory(cat) {
			var l RuleList
			if err := json.Unmarshal(v, &l); err != nil {
				return nil, fmt.Errorf("matchingRules.%s: %w", cat, err)
			}
			out[cat] = map[string]*RuleList{"": &l}
			continue
		}
		var m map[string]*RuleList
		if err := json.Unmarshal(v, &m); err != nil {
			return nil, fmt.Errorf("matchingRules.%s: %w", cat, err)
		}
		for k, l := range m {
			if l == nil {
				return nil, fmt.Errorf("matchingRules.%s[%q]: must be an object", cat, k)
			}
			if cat == "body" || cat == "content" {
				if _, err := parsePath(k); err != nil {
					return nil, fmt.Errorf("matchingRules.%s: %w", cat, err)
				}
			}
		}
		out[cat] = m
	}
	return out, nil
}

// parseV2Rules reads V2 rules keyed by "$.body...", "$.headers.X",
// "$.query.X" and "$.path" into V3 categories.
func parseV2Rules(b json.RawMessage) (Rules, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("matchingRules must be an object: %w", err)
	}
	out := Rules{}
	add := func(cat, key string, v json.RawMessage) error {
		var m Matcher
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("matchingRules[%q]: %w", key, err)
		}
		if out[cat] == nil {
			out[cat] = map[string]*RuleList{}
		}
		out[cat][key] = &RuleList{Matchers: []Matcher{m}}
		return nil
	}
	for k, v := range raw {
		var err error
		switch {
		case k == "$.path":
			err = add("path", "", v)
		case k == "$.body":
			err = add("body", "$", v)
		case strings.HasPrefix(k, "$.body"):
			err = add("body", "$"+k[len("$.body"):], v)
		case strings.HasPrefix(k, "$.headers."):
			err = add("header", k[len("$.headers."):], v)
		case strings.HasPrefix(k, "$.query."):
			err = add("query", k[len("$.query."):], v)
		default:
			err = add("body", k, v)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// A path token: a field name, an index, or * (any field or index).
type token struct {
	name  string
	index int // -1 when name is a field
	star  bool
}

// parsePath parses a matcher path: $, .name, ['name'], [n], .* and [*].
func parsePath(p string) ([]token, error) {
	if p == "" {
		return nil, errors.New("empty path")
	}
	if !strings.HasPrefix(p, "$") {
		p = "$." + p
	}
	var out []token
	i := 1
	for i < len(p) {
		switch p[i] {
		case '.':
			i++
			j := i
			for j < len(p) && p[j] != '.' && p[j] != '[' {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("path %q: empty name at %d", p, i)
			}
			name := p[i:j]
			if name == "*" {
				out = append(out, token{star: true, index: -1})
			} else {
				out = append(out, token{name: name, index: -1})
			}
			i = j
		case '[':
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("path %q: unclosed [ at %d", p, i)
			}
			in := p[i+1 : i+j]
			if len(in) >= 2 && (in[0] == '\'' || in[0] == '"') {
				// A quoted name may hold ']': find the closing quote.
				q := in[0]
				k := strings.IndexByte(p[i+2:], q)
				if k < 0 || i+2+k+1 >= len(p) || p[i+2+k+1] != ']' {
					return nil, fmt.Errorf("path %q: unclosed quote at %d", p, i)
				}
				out = append(out, token{name: p[i+2 : i+2+k], index: -1})
				i = i + 2 + k + 2
				continue
			}
			switch {
			case in == "*":
				out = append(out, token{star: true, index: -2})
			default:
				n, err := strconv.Atoi(in)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("path %q: %q is not an index", p, in)
				}
				out = append(out, token{index: n})
			}
			i += j + 1
		default:
			return nil, fmt.Errorf("path %q: unexpected %q at %d", p, p[i], i)
		}
	}
	return out, nil
}

// weight is the Pact matcher selection weight of expression exp for the
// value at path (tokens after $): 0 when exp does not match path or a
// prefix of it. The product doubles for each exact token and stays for *.
func weight(exp, path []token) int {
	if len(exp) > len(path) {
		return 0
	}
	w := 2
	for i, e := range exp {
		p := path[i]
		switch {
		case e.star:
			// * matches any one field or index.
		case e.index >= 0:
			if p.index != e.index {
				return 0
			}
			w *= 2
		default:
			// A numeric name ($.a.0) matches that index too.
			if p.index >= 0 && e.name != strconv.Itoa(p.index) || p.index < 0 && p.name != e.name {
				return 0
			}
			w *= 2
		}
	}
	return w
}

// pathString renders path tokens as $.a[0]['b c'].
func pathString(path []token) string {
	var b strings.Builder
	b.WriteByte('$')
	for _, t := range path {
		switch {
		case t.star && t.index == -2:
			b.WriteString("[*]")
		case t.star:
			b.WriteString(".*")
		case t.index >= 0:
			b.WriteString("[" + strconv.Itoa(t.index) + "]")
		case plainName(t.name):
			b.WriteString("." + t.name)
		default:
			b.WriteString("['" + t.name + "']")
		}
	}
	return b.String()
}

func plainName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// bodyRules is a body category's rules parsed once.
type bodyRules struct {
	entries []bodyRule
}

type bodyRule struct {
	path []token
	list *RuleList
}

func compileBodyRules(m map[string]*RuleList) *bodyRules {
	br := &bodyRules{}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p, err := parsePath(k)
		if err != nil {
			continue // rejected when read; a hand-built rule with a bad path never applies
		}
		br.entries = append(br.entries, bodyRule{path: p, list: m[k]})
	}
	return br
}

// find returns the rule list that applies at path, and whether it is
// defined for the path itself (not inherited from an ancestor). Of the
// matching expressions the heaviest wins; on a tie the longer one.
func (br *bodyRules) find(path []token) (*RuleList, bool) {
	l, d, _, _ := br.findW(path)
	return l, d
}

// findW is find that also returns the winner's weight and length.
func (br *bodyRules) findW(path []token) (*RuleList, bool, int, int) {
	if br == nil {
		return nil, false, 0, -1
	}
	var best *RuleList
	bw, bl := 0, -1
	for _, e := range br.entries {
		w := weight(e.path, path)
		if w == 0 {
			continue
		}
		if w > bw || w == bw && len(e.path) > bl {
			best, bw, bl = e.list, w, len(e.path)
		}
	}
	return best, best != nil && bl == len(path), bw, bl
}

// any reports whether some rule applies at path or below it.
func (br *bodyRules) anyBelow(path []token) bool {
	if br == nil {
		return false
	}
	for _, e := range br.entries {
		n := len(path)
		if len(e.path) < n {
			n = len(e.path)
		}
		if weight(e.path[:n], path[:n]) > 0 {
			return true
		}
	}
	return false
}
