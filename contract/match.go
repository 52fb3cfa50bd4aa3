package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"mime"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Mismatch is one way an actual request, response or message differs
// from the expected one: where (Part and Path), what was expected and
// found, and the matcher that decided.
type Mismatch struct {
	Part     string // "method", "path", "query", "header", "body", "status", "metadata"
	Path     string // a JSON path in a body, a header, query or metadata name
	Expected string
	Actual   string
	Matcher  string // e.g. "equality", "type", "regex \d+", "integer"
	Message  string
}

func (m Mismatch) String() string {
	var b strings.Builder
	b.WriteString(m.Part)
	if m.Path != "" {
		b.WriteString(" " + m.Path)
	}
	b.WriteString(": ")
	if m.Message != "" {
		b.WriteString(m.Message)
	} else {
		fmt.Fprintf(&b, "expected %s, got %s", m.Expected, m.Actual)
	}
	if m.Matcher != "" {
		b.WriteString(" (matcher: " + m.Matcher + ")")
	}
	return b.String()
}

// MatchRequest compares an actual request with an expected one. Requests
// are matched strictly: unexpected query parameters and, in JSON bodies,
// unexpected keys are mismatches (a consumer must not send what the
// contract does not say).
func MatchRequest(expected, actual *Request) []Mismatch {
	var out []Mismatch
	if !strings.EqualFold(expected.Method, actual.Method) {
		out = append(out, Mismatch{Part: "method", Expected: expected.Method, Actual: actual.Method, Matcher: "equality"})
	}
	out = append(out, matchSingle("path", expected.Path, actual.Path, expected.Rules["path"][""])...)
	out = append(out, matchQuery(expected.Query, actual.Query, expected.Rules["query"])...)
	out = append(out, matchHeaders(expected.Headers, actual.Headers, expected.Rules["header"])...)
	out = append(out, matchBody("body", expected.Body, actual.Body, expected.Headers, actual.Headers, expected.Rules["body"], true)...)
	return out
}

// MatchResponse compares an actual response with an expected one.
// Responses are matched leniently: unexpected headers and keys are fine
// (a provider may send more than a consumer reads).
func MatchResponse(expected, actual *Response) []Mismatch {
	var out []Mismatch
	if l := expected.Rules["status"][""]; l != nil {
		out = append(out, applyList("status", "", l, json.Number(strconv.Itoa(expected.Status)), json.Number(strconv.Itoa(actual.Status)))...)
	} else if expected.Status != actual.Status {
		out = append(out, Mismatch{Part: "status", Expected: strconv.Itoa(expected.Status), Actual: strconv.Itoa(actual.Status), Matcher: "equality"})
	}
	out = append(out, matchHeaders(expected.Headers, actual.Headers, expected.Rules["header"])...)
	out = append(out, matchBody("body", expected.Body, actual.Body, expected.Headers, actual.Headers, expected.Rules["body"], false)...)
	return out
}

// MatchMessage compares an actual message with an expected one: its
// contents as a response body, and each expected metadata entry.
func MatchMessage(expected, actual *Message) []Mismatch {
	var out []Mismatch
	rules := expected.Rules["content"]
	out = append(out, matchBody("body", expected.Contents, actual.Contents, nil, nil, rules, false)...)
	mr := expected.Rules["metadata"]
	for _, k := range sortedKeys(expected.Metadata) {
		ev := expected.Metadata[k]
		av, ok := lookupMeta(actual.Metadata, k)
		if !ok {
			out = append(out, Mismatch{Part: "metadata", Path: k, Expected: show(ev), Actual: "nothing", Message: fmt.Sprintf("expected metadata %q", k)})
			continue
		}
		if l := ruleFor(mr, k); l != nil {
			out = append(out, applyList("metadata", k, l, normalize(ev), normalize(av))...)
			continue
		}
		es, as := metaString(ev), metaString(av)
		if isContentTypeKey(k) {
			if !contentTypesEqual(es, as) {
				out = append(out, Mismatch{Part: "metadata", Path: k, Expected: strconv.Quote(es), Actual: strconv.Quote(as), Matcher: "equality"})
			}
			continue
		}
		if !jsonEqual(normalize(ev), normalize(av)) && es != as {
			out = append(out, Mismatch{Part: "metadata", Path: k, Expected: show(ev), Actual: show(av), Matcher: "equality"})
		}
	}
	return out
}

func isContentTypeKey(k string) bool {
	k = strings.ToLower(k)
	return k == "contenttype" || k == "content-type" || k == "datacontenttype"
}

func lookupMeta(m map[string]any, k string) (any, bool) {
	if v, ok := m[k]; ok {
		return v, true
	}
	if isContentTypeKey(k) {
		for kk, v := range m {
			if isContentTypeKey(kk) {
				return v, true
			}
		}
	}
	return nil, false
}

func metaString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func ruleFor(m map[string]*RuleList, name string) *RuleList {
	if l, ok := m[name]; ok {
		return l
	}
	for k, l := range m {
		if strings.EqualFold(k, name) {
			return l
		}
	}
	return nil
}

func matchSingle(part, expected, actual string, l *RuleList) []Mismatch {
	if l != nil {
		return applyList(part, "", l, expected, actual)
	}
	if expected != actual {
		return []Mismatch{{Part: part, Expected: strconv.Quote(expected), Actual: strconv.Quote(actual), Matcher: "equality"}}
	}
	return nil
}

func matchQuery(expected, actual Query, rules map[string]*RuleList) []Mismatch {
	var out []Mismatch
	for _, k := range sortedKeys(expected) {
		ev := expected[k]
		av, ok := actual[k]
		if !ok {
			out = append(out, Mismatch{Part: "query", Path: k, Expected: fmt.Sprintf("%q", ev), Actual: "nothing", Message: fmt.Sprintf("expected query parameter %q", k)})
			continue
		}
		if l := rules[k]; l != nil {
			for n, a := range av {
				e := ""
				if len(ev) > 0 {
					e = ev[min(n, len(ev)-1)]
				}
				out = append(out, applyList("query", k, l, e, a)...)
			}
			continue
		}
		if !equalStrings(ev, av) {
			out = append(out, Mismatch{Part: "query", Path: k, Expected: fmt.Sprintf("%q", ev), Actual: fmt.Sprintf("%q", av), Matcher: "equality"})
		}
	}
	for _, k := range sortedKeys(actual) {
		if _, ok := expected[k]; !ok {
			out = append(out, Mismatch{Part: "query", Path: k, Expected: "nothing", Actual: fmt.Sprintf("%q", actual[k]), Message: fmt.Sprintf("unexpected query parameter %q", k)})
		}
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func matchHeaders(expected, actual Headers, rules map[string]*RuleList) []Mismatch {
	var out []Mismatch
	for _, k := range expected.names() {
		ev := expected[k]
		av, ok := actual.Get(k)
		if !ok {
			out = append(out, Mismatch{Part: "header", Path: k, Expected: strconv.Quote(strings.Join(ev, ", ")), Actual: "nothing", Message: fmt.Sprintf("expected header %q", k)})
			continue
		}
		es, as := strings.Join(ev, ", "), strings.Join(av, ", ")
		if l := ruleFor(rules, k); l != nil {
			out = append(out, applyList("header", k, l, es, as)...)
			continue
		}
		if strings.EqualFold(k, "Content-Type") || strings.EqualFold(k, "Accept") && strings.Contains(es, ";") {
			if !contentTypesEqual(es, as) {
				out = append(out, Mismatch{Part: "header", Path: k, Expected: strconv.Quote(es), Actual: strconv.Quote(as), Matcher: "equality"})
			}
			continue
		}
		if !equalStrings(splitHeader(es), splitHeader(as)) {
			out = append(out, Mismatch{Part: "header", Path: k, Expected: strconv.Quote(es), Actual: strconv.Quote(as), Matcher: "equality"})
		}
	}
	return out
}

func splitHeader(v string) []string {
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// contentTypesEqual compares media types and their parameters: names and
// the charset case-insensitively, in any order.
func contentTypesEqual(e, a string) bool {
	em, ep, err1 := mime.ParseMediaType(e)
	am, ap, err2 := mime.ParseMediaType(a)
	if err1 != nil || err2 != nil {
		return strings.EqualFold(strings.TrimSpace(e), strings.TrimSpace(a))
	}
	if em != am {
		return false
	}
	for k, v := range ep {
		w, ok := ap[k]
		if !ok {
			return false
		}
		if k == "charset" {
			if !strings.EqualFold(v, w) {
				return false
			}
		} else if v != w {
			return false
		}
	}
	return true
}

// matchBody compares bodies by content type: JSON by structure, XML by
// element, anything else by bytes (or by a rule on "$").
func matchBody(part string, expected, actual Body, eh, ah Headers, rules map[string]*RuleList, strict bool) []Mismatch {
	if !expected.Present {
		return nil
	}
	ect := contentType(expected, eh)
	if len(expected.Content) == 0 {
		if len(bytes.TrimSpace(actual.Content)) > 0 {
			return []Mismatch{{Part: part, Path: "$", Expected: "an empty body", Actual: quoteBody(actual.Content), Message: "expected an empty body"}}
		}
		return nil
	}
	if !actual.Present || len(actual.Content) == 0 {
		if string(bytes.TrimSpace(expected.Content)) == "null" {
			return nil
		}
		return []Mismatch{{Part: part, Path: "$", Expected: quoteBody(expected.Content), Actual: "an empty body", Message: "expected a body, got none"}}
	}
	act := contentType(actual, ah)
	br := compileBodyRules(rules)
	switch {
	case isJSONType(ect) || ect == "" && isJSONType(act):
		if act != "" && !isJSONType(act) && detectContentType(actual.Content) != "application/json" {
			return []Mismatch{{Part: part, Path: "$", Expected: "a body of type " + mediaType(ect), Actual: "a body of type " + mediaType(act), Message: "body type differs"}}
		}
		ev, err := decodeJSON(expected.Content)
		if err != nil {
			return []Mismatch{{Part: part, Path: "$", Message: "expected body is not valid JSON: " + err.Error()}}
		}
		av, err := decodeJSON(actual.Content)
		if err != nil {
			return []Mismatch{{Part: part, Path: "$", Expected: "JSON", Actual: quoteBody(actual.Content), Message: "body is not valid JSON: " + err.Error()}}
		}
		m := &jsonMatcher{part: part, rules: br, strict: strict}
		m.compare(nil, ev, av)
		return m.out
	case isXMLType(ect):
		return matchXML(part, expected.Content, actual.Content, br, strict)
	default:
		if l, _ := br.find(nil); l != nil {
			return applyList(part, "$", l, string(expected.Content), string(actual.Content))
		}
		if !bytes.Equal(expected.Content, actual.Content) {
			return []Mismatch{{Part: part, Path: "$", Expected: quoteBody(expected.Content), Actual: quoteBody(actual.Content), Matcher: "equality"}}
		}
		return nil
	}
}

func quoteBody(b []byte) string {
	const max = 200
	s := string(b)
	if !utf8.ValidString(s) {
		return fmt.Sprintf("%d bytes of binary data", len(b))
	}
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}

func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

// normalize turns a value decoded without UseNumber into one with
// json.Number, so values from Go code and from JSON compare alike.
func normalize(v any) any {
	switch x := v.(type) {
	case float64:
		return json.Number(strconv.FormatFloat(x, 'f', -1, 64))
	case int:
		return json.Number(strconv.Itoa(x))
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	}
	return v
}

type jsonMatcher struct {
	part   string
	rules  *bodyRules
	strict bool
	out    []Mismatch
}

func child(path []token, name string) []token {
	p := make([]token, len(path), len(path)+1)
	copy(p, path)
	return append(p, token{name: name, index: -1})
}

func childIndex(path []token, i int) []token {
	p := make([]token, len(path), len(path)+1)
	copy(p, path)
	return append(p, token{index: i})
}

func (m *jsonMatcher) add(path []token, mm Mismatch) {
	mm.Part = m.part
	mm.Path = pathString(path)
	m.out = append(m.out, mm)
}

// compare matches act against exp at path, with the rules that apply.
func (m *jsonMatcher) compare(path []token, exp, act any) {
	list, direct := m.rules.find(path)
	if list == nil {
		m.equal(path, exp, act)
		return
	}
	or := list.Combine == "OR"
	var failed []Mismatch
	for _, mt := range list.Matchers {
		sub := &jsonMatcher{part: m.part, rules: m.rules, strict: m.strict}
		sub.apply(path, mt, exp, act, direct)
		if or && len(sub.out) == 0 {
			return
		}
		failed = append(failed, sub.out...)
	}
	m.out = append(m.out, failed...)
}

// equal is the default: structure and values equal; in a response extra
// keys are fine.
func (m *jsonMatcher) equal(path []token, exp, act any) {
	switch e := exp.(type) {
	case map[string]any:
		a, ok := act.(map[string]any)
		if !ok {
			m.add(path, Mismatch{Expected: "an object", Actual: typeName(act) + " " + show(act), Matcher: "equality", Message: "expected an object, got " + typeName(act) + " " + show(act)})
			return
		}
		m.object(path, e, a)
	case []any:
		a, ok := act.([]any)
		if !ok {
			m.add(path, Mismatch{Expected: "an array", Actual: typeName(act) + " " + show(act), Matcher: "equality", Message: "expected an array, got " + typeName(act) + " " + show(act)})
			return
		}
		if len(e) != len(a) {
			m.add(path, Mismatch{Expected: fmt.Sprintf("%d elements", len(e)), Actual: fmt.Sprintf("%d elements", len(a)), Matcher: "equality",
				Message: fmt.Sprintf("expected an array of %d elements, got %d: %s", len(e), len(a), show(act))})
		}
		for i := 0; i < len(e) && i < len(a); i++ {
			m.compare(childIndex(path, i), e[i], a[i])
		}
	default:
		if !jsonEqual(exp, act) {
			m.add(path, Mismatch{Expected: show(exp), Actual: show(act), Matcher: "equality"})
		}
	}
}

// object matches each expected key; in strict mode an unexpected key is
// a mismatch too.
func (m *jsonMatcher) object(path []token, e, a map[string]any) {
	for _, k := range sortedKeys(e) {
		cp := child(path, k)
		av, ok := a[k]
		if !ok {
			m.add(cp, Mismatch{Expected: show(e[k]), Actual: "nothing", Message: fmt.Sprintf("expected key %q", k)})
			continue
		}
		m.compare(cp, e[k], av)
	}
	if m.strict {
		for _, k := range sortedKeys(a) {
			if _, ok := e[k]; !ok {
				m.add(child(path, k), Mismatch{Expected: "nothing", Actual: show(a[k]), Message: fmt.Sprintf("unexpected key %q", k)})
			}
		}
	}
}

// apply runs one matcher at path. direct is false when the rule was set
// on an ancestor: then only its type-like check applies (a min or max is
// about the array it was set on).
func (m *jsonMatcher) apply(path []token, mt Matcher, exp, act any, direct bool) {
	switch mt.Type {
	case "equality":
		m.equal(path, exp, act)
		return
	case "type":
		m.typeMatch(path, mt, exp, act, direct)
		return
	case "values", "eachKey", "eachValue":
		if !direct {
			// Set on an ancestor: its children are matched by type.
			m.typeMatch(path, Matcher{Type: "type"}, exp, act, false)
			return
		}
		if mt.Type == "values" {
			m.values(path, exp, act)
		} else {
			m.each(path, mt, exp, act)
		}
		return
	case "arrayContains":
		if direct {
			m.arrayContains(path, mt, exp, act)
		} else {
			m.equal(path, exp, act)
		}
		return
	case "notEmpty":
		if isEmpty(act) {
			m.add(path, Mismatch{Expected: "a non-empty value", Actual: show(act), Matcher: "notEmpty"})
			return
		}
		if sameContainer(exp, act) {
			m.typeMatch(path, Matcher{Type: "type"}, exp, act, false)
		}
		return
	}
	switch exp.(type) {
	case map[string]any, []any:
		// A value matcher set on a container applies to its leaves.
		if _, ok := act.(map[string]any); ok {
			m.typeMatch(path, mt, exp, act, false)
			return
		}
		if _, ok := act.([]any); ok {
			m.typeMatch(path, mt, exp, act, false)
			return
		}
	}
	if ok, why := valueMatches(mt, exp, act); !ok {
		m.add(path, Mismatch{Expected: show(exp), Actual: show(act), Matcher: describe(mt), Message: why})
	}
}

func sameContainer(a, b any) bool {
	switch a.(type) {
	case map[string]any:
		_, ok := b.(map[string]any)
		return ok
	case []any:
		_, ok := b.([]any)
		return ok
	}
	return false
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// typeMatch is Pact's type matcher: same JSON type; objects key by key;
// arrays of any length within Min and Max, each element like the first
// expected one.
func (m *jsonMatcher) typeMatch(path []token, mt Matcher, exp, act any, direct bool) {
	switch e := exp.(type) {
	case map[string]any:
		a, ok := act.(map[string]any)
		if !ok {
			m.add(path, Mismatch{Expected: "an object", Actual: typeName(act) + " " + show(act), Matcher: describe(mt), Message: "expected an object, got " + typeName(act) + " " + show(act)})
			return
		}
		m.object(path, e, a)
	case []any:
		a, ok := act.([]any)
		if !ok {
			m.add(path, Mismatch{Expected: "an array", Actual: typeName(act) + " " + show(act), Matcher: describe(mt), Message: "expected an array, got " + typeName(act) + " " + show(act)})
			return
		}
		if direct && mt.Type == "type" {
			if mt.Min != nil && len(a) < *mt.Min {
				m.add(path, Mismatch{Expected: fmt.Sprintf("at least %d elements", *mt.Min), Actual: fmt.Sprintf("%d", len(a)), Matcher: describe(mt),
					Message: fmt.Sprintf("expected an array of at least %d elements, got %d", *mt.Min, len(a))})
			}
			if mt.Max != nil && len(a) > *mt.Max {
				m.add(path, Mismatch{Expected: fmt.Sprintf("at most %d elements", *mt.Max), Actual: fmt.Sprintf("%d", len(a)), Matcher: describe(mt),
					Message: fmt.Sprintf("expected an array of at most %d elements, got %d", *mt.Max, len(a))})
			}
		}
		if len(e) == 0 {
			return
		}
		for i, av := range a {
			ev := e[0]
			if i < len(e) && mt.Type != "type" {
				ev = e[i]
			}
			m.compare(childIndex(path, i), ev, av)
		}
	default:
		if mt.Type == "type" {
			if typeName(exp) != typeName(act) {
				m.add(path, Mismatch{Expected: typeName(exp) + " " + show(exp), Actual: typeName(act) + " " + show(act), Matcher: "type",
					Message: fmt.Sprintf("expected %s (like %s), got %s %s", typeName(exp), show(exp), typeName(act), show(act))})
			}
			return
		}
		if ok, why := valueMatches(mt, exp, act); !ok {
			m.add(path, Mismatch{Expected: show(exp), Actual: show(act), Matcher: describe(mt), Message: why})
		}
	}
}

// values ignores the keys of an object: each actual value is matched
// against the expected value of its key, or the first expected value.
func (m *jsonMatcher) values(path []token, exp, act any) {
	switch e := exp.(type) {
	case map[string]any:
		a, ok := act.(map[string]any)
		if !ok {
			m.add(path, Mismatch{Expected: "an object", Actual: show(act), Matcher: "values"})
			return
		}
		keys := sortedKeys(e)
		if len(keys) == 0 {
			return
		}
		for _, k := range sortedKeys(a) {
			ev, ok := e[k]
			if !ok {
				ev = e[keys[0]]
			}
			m.compare(child(path, k), ev, a[k])
		}
	case []any:
		m.typeMatch(path, Matcher{Type: "type"}, exp, act, false)
	default:
		m.typeMatch(path, Matcher{Type: "type"}, exp, act, false)
	}
}

// arrayContains passes when each variant matches some actual element, in
// any order, among any others.
func (m *jsonMatcher) arrayContains(path []token, mt Matcher, exp, act any) {
	a, ok := act.([]any)
	if !ok {
		m.add(path, Mismatch{Expected: "an array", Actual: show(act), Matcher: "arrayContains"})
		return
	}
	e, _ := exp.([]any)
	for _, v := range mt.Variants {
		if v.Index < 0 || v.Index >= len(e) {
			m.add(path, Mismatch{Message: fmt.Sprintf("arrayContains variant %d has no example element", v.Index), Matcher: "arrayContains"})
			continue
		}
		vr := compileBodyRules(v.Rules)
		found := false
		for _, av := range a {
			sub := &jsonMatcher{part: m.part, rules: vr, strict: m.strict}
			sub.compare(nil, e[v.Index], av)
			if len(sub.out) == 0 {
				found = true
				break
			}
		}
		if !found {
			m.add(path, Mismatch{Expected: "an element like " + show(e[v.Index]), Actual: show(act), Matcher: "arrayContains",
				Message: fmt.Sprintf("no element matches variant %d (like %s)", v.Index, show(e[v.Index]))})
		}
	}
}

// each applies the nested rules to each key (eachKey) or value
// (eachValue) of the actual collection.
func (m *jsonMatcher) each(path []token, mt Matcher, exp, act any) {
	tmpl := exp
	if mt.Value != nil {
		tmpl = normalize(mt.Value)
	}
	check := func(p []token, v any, ev any) {
		if len(mt.Rules) == 0 {
			m.compare(p, ev, v)
			return
		}
		for _, r := range mt.Rules {
			sub := &jsonMatcher{part: m.part, rules: m.rules, strict: m.strict}
			sub.apply(p, r, ev, v, true)
			m.out = append(m.out, sub.out...)
		}
	}
	switch a := act.(type) {
	case map[string]any:
		em, _ := tmpl.(map[string]any)
		var first any
		if ks := sortedKeys(em); len(ks) > 0 {
			first = em[ks[0]]
		}
		for _, k := range sortedKeys(a) {
			if mt.Type == "eachKey" {
				check(child(path, k), k, k)
				ev, ok := em[k]
				if !ok {
					ev = first
				}
				if ev != nil {
					m.compare(child(path, k), ev, a[k])
				}
				continue
			}
			ev, ok := em[k]
			if !ok {
				ev = first
			}
			check(child(path, k), a[k], ev)
		}
	case []any:
		if mt.Type == "eachKey" {
			m.add(path, Mismatch{Expected: "an object", Actual: show(act), Matcher: "eachKey"})
			return
		}
		el, _ := tmpl.([]any)
		for i, v := range a {
			var ev any
			if len(el) > 0 {
				ev = el[0]
			}
			check(childIndex(path, i), v, ev)
		}
	default:
		m.add(path, Mismatch{Expected: "a collection", Actual: show(act), Matcher: mt.Type})
	}
}

// applyList runs a rule list on a single string or number value (path,
// header, query, status, metadata).
func applyList(part, name string, l *RuleList, exp, act any) []Mismatch {
	var failed []Mismatch
	for _, mt := range l.Matchers {
		ok, why := valueMatches(mt, exp, act)
		if ok && mt.Type == "type" {
			if typeName(exp) != typeName(act) {
				ok, why = false, fmt.Sprintf("expected %s, got %s", typeName(exp), typeName(act))
			}
		}
		if ok {
			if l.Combine == "OR" {
				return nil
			}
			continue
		}
		failed = append(failed, Mismatch{Part: part, Path: name, Expected: show(exp), Actual: show(act), Matcher: describe(mt), Message: why})
	}
	return failed
}

// valueMatches checks a single value against a value matcher.
func valueMatches(mt Matcher, exp, act any) (bool, string) {
	switch mt.Type {
	case "equality":
		if jsonEqual(exp, act) {
			return true, ""
		}
		return false, fmt.Sprintf("expected %s, got %s", show(exp), show(act))
	case "type":
		if typeName(exp) == typeName(act) {
			return true, ""
		}
		return false, fmt.Sprintf("expected %s, got %s %s", typeName(exp), typeName(act), show(act))
	case "regex":
		re, err := compileRegex(mt.Regex)
		if err != nil {
			return false, fmt.Sprintf("invalid regex %q: %v", mt.Regex, err)
		}
		s, ok := text(act)
		if !ok || !re.MatchString(s) {
			return false, fmt.Sprintf("%s does not match regex %q", show(act), mt.Regex)
		}
		return true, ""
	case "include":
		sub, _ := text(mt.Value)
		s, ok := text(act)
		if !ok || !strings.Contains(s, sub) {
			return false, fmt.Sprintf("%s does not include %q", show(act), sub)
		}
		return true, ""
	case "integer":
		n, ok := act.(json.Number)
		if ok && isInteger(string(n)) {
			return true, ""
		}
		if s, isStr := act.(string); isStr && isInteger(s) && !isJSONNumber(exp) {
			return true, ""
		}
		return false, fmt.Sprintf("expected an integer, got %s", show(act))
	case "decimal":
		n, ok := act.(json.Number)
		if ok && isDecimal(string(n)) {
			return true, ""
		}
		if s, isStr := act.(string); isStr && isDecimal(s) && !isJSONNumber(exp) {
			return true, ""
		}
		return false, fmt.Sprintf("expected a decimal number, got %s", show(act))
	case "number":
		if _, ok := act.(json.Number); ok {
			return true, ""
		}
		if s, isStr := act.(string); isStr && !isJSONNumber(exp) {
			if _, err := strconv.ParseFloat(s, 64); err == nil {
				return true, ""
			}
		}
		return false, fmt.Sprintf("expected a number, got %s", show(act))
	case "boolean":
		switch x := act.(type) {
		case bool:
			return true, ""
		case string:
			if x == "true" || x == "false" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("expected a boolean, got %s", show(act))
	case "null":
		if act == nil {
			return true, ""
		}
		return false, fmt.Sprintf("expected null, got %s", show(act))
	case "date", "time", "datetime":
		s, ok := act.(string)
		if !ok {
			return false, fmt.Sprintf("expected a %s string, got %s", mt.Type, show(act))
		}
		if err := checkDateTime(mt.Type, mt.Format, s); err != nil {
			return false, err.Error()
		}
		return true, ""
	case "contentType":
		want, _ := text(mt.Value)
		s, _ := text(act)
		got := detectContentType([]byte(s))
		if mediaType(got) != mediaType(want) {
			return false, fmt.Sprintf("expected content of type %s, got %s", want, got)
		}
		return true, ""
	case "statusCode":
		code := 0
		if s, ok := text(act); ok {
			code, _ = strconv.Atoi(s)
		}
		if statusMatches(mt.Status, code) {
			return true, ""
		}
		return false, fmt.Sprintf("status %d is not %v", code, mt.Status)
	case "notEmpty":
		if isEmpty(act) {
			return false, "expected a non-empty value"
		}
		return true, ""
	case "semver":
		s, _ := text(act)
		if semverRe.MatchString(s) {
			return true, ""
		}
		return false, fmt.Sprintf("%s is not a semantic version", show(act))
	case "values", "eachKey", "eachValue", "arrayContains":
		return true, ""
	default:
		return false, fmt.Sprintf("unknown matcher %q", mt.Type)
	}
}

var semverRe = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

func isJSONNumber(v any) bool { _, ok := v.(json.Number); return ok }

func statusMatches(status any, code int) bool {
	switch s := status.(type) {
	case string:
		switch s {
		case "information":
			return code >= 100 && code < 200
		case "success":
			return code >= 200 && code < 300
		case "redirect":
			return code >= 300 && code < 400
		case "clientError":
			return code >= 400 && code < 500
		case "serverError":
			return code >= 500 && code < 600
		case "nonError":
			return code < 400
		case "error":
			return code >= 400
		}
	case []any:
		for _, x := range s {
			if n, ok := x.(float64); ok && int(n) == code {
				return true
			}
			if n, ok := x.(json.Number); ok && string(n) == strconv.Itoa(code) {
				return true
			}
		}
	case []int:
		for _, n := range s {
			if n == code {
				return true
			}
		}
	}
	return false
}

func isInteger(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' || s[0] == '+' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isDecimal(s string) bool {
	if !strings.ContainsAny(s, ".eE") {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

var regexCache sync.Map // string → *regexp.Regexp

const maxRegexLen = 4096

func compileRegex(p string) (*regexp.Regexp, error) {
	if v, ok := regexCache.Load(p); ok {
		return v.(*regexp.Regexp), nil
	}
	if len(p) > maxRegexLen {
		return nil, fmt.Errorf("longer than %d bytes", maxRegexLen)
	}
	// Pact regexes match the whole value, as the specification's cases
	// require ("alligator named .{4}" does not match "... brent").
	re, err := regexp.Compile(`^(?:` + p + `)$`)
	if err != nil {
		return nil, err
	}
	regexCache.Store(p, re)
	return re, nil
}

// text is the string form of a scalar, as regex and include see it.
func text(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return string(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case int:
		return strconv.Itoa(x), true
	case bool:
		return strconv.FormatBool(x), true
	case nil:
		return "", false
	}
	return "", false
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number, float64, int, int64:
		return "number"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	const max = 120
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

func describe(mt Matcher) string {
	switch mt.Type {
	case "regex":
		return "regex " + mt.Regex
	case "type":
		switch {
		case mt.Min != nil && mt.Max != nil:
			return fmt.Sprintf("type, min %d, max %d", *mt.Min, *mt.Max)
		case mt.Min != nil:
			return fmt.Sprintf("type, min %d", *mt.Min)
		case mt.Max != nil:
			return fmt.Sprintf("type, max %d", *mt.Max)
		}
	case "date", "time", "datetime":
		if mt.Format != "" {
			return mt.Type + " " + mt.Format
		}
	case "include":
		s, _ := text(mt.Value)
		return "include " + strconv.Quote(s)
	}
	return mt.Type
}

// jsonEqual compares decoded JSON values; numbers by value.
func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		fx, ok1 := new(big.Float).SetString(string(x))
		fy, ok2 := new(big.Float).SetString(string(y))
		return ok1 && ok2 && fx.Cmp(fy) == 0
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !jsonEqual(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	default:
		return a == b
	}
}

// FromHTTPRequest turns a received request into the form MatchRequest
// takes. The body is read in full.
func FromHTTPRequest(r *http.Request, body []byte) *Request {
	req := &Request{Method: r.Method, Path: r.URL.Path, Headers: Headers(r.Header.Clone())}
	if r.URL.RawQuery != "" {
		req.Query = Query(r.URL.Query())
	}
	if len(body) > 0 {
		req.Body = Body{Present: true, ContentType: r.Header.Get("Content-Type"), Content: body}
	}
	return req
}

func isUTF8(b []byte) bool { return utf8.Valid(b) }

// sortMismatches orders mismatches for stable output.
func sortMismatches(ms []Mismatch) {
	order := map[string]int{"method": 0, "path": 1, "status": 1, "query": 2, "header": 3, "metadata": 4, "body": 5}
	sort.SliceStable(ms, func(i, j int) bool { return order[ms[i].Part] < order[ms[j].Part] })
}
