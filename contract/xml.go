package contract

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// XML bodies are matched element by element: the element's namespace and
// local name (prefixes do not matter), its attributes, its text, and its
// child elements grouped by name. Rules use Pact's XML paths: the root
// element is $.root, a child $.root.child[i], an attribute ['@name'], the
// text #text.

type xmlElem struct {
	space, local string
	attrs        map[string]string // by local name (namespace declarations dropped)
	children     []*xmlElem
	text         string
}

const maxXMLDepth = 256

func parseXML(b []byte) (*xmlElem, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	var stack []*xmlElem
	var root *xmlElem
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxXMLDepth {
				return nil, fmt.Errorf("XML nested deeper than %d", maxXMLDepth)
			}
			e := &xmlElem{space: t.Name.Space, local: t.Name.Local, attrs: map[string]string{}}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" && a.Name.Space == "" {
					continue
				}
				e.attrs[a.Name.Local] = a.Value
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, e)
			} else if root == nil {
				root = e
			}
			stack = append(stack, e)
		case xml.EndElement:
			if len(stack) > 0 {
				e := stack[len(stack)-1]
				e.text = strings.TrimSpace(e.text)
				stack = stack[:len(stack)-1]
			}
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(t)
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("no root element")
	}
	return root, nil
}

type xmlMatcher struct {
	part   string
	rules  *bodyRules
	strict bool
	out    []Mismatch
}

// xpath is an element's place in two forms Pact files use for XML rules:
// names only ($.a.b.c) and with each child's index ($.a[0].b[1].c).
type xpath struct{ names, indexed []token }

func (p xpath) child(i int, name string) xpath {
	return xpath{child(p.names, name), child(childIndex(p.indexed, i), name)}
}

func (p xpath) attr(name string) xpath {
	return xpath{child(p.names, name), child(p.indexed, name)}
}

// find returns the best rule for either form.
func (m *xmlMatcher) find(p xpath) (*RuleList, bool) {
	l1, d1, w1, n1 := m.rules.findW(p.names)
	l2, d2, w2, n2 := m.rules.findW(p.indexed)
	if l2 != nil && (l1 == nil || w2 > w1 || w2 == w1 && n2 > n1) {
		return l2, d2
	}
	return l1, d1
}

func matchXML(part string, exp, act []byte, rules *bodyRules, strict bool) []Mismatch {
	e, err := parseXML(exp)
	if err != nil {
		return []Mismatch{{Part: part, Path: "$", Message: "expected body is not valid XML: " + err.Error()}}
	}
	a, err := parseXML(act)
	if err != nil {
		return []Mismatch{{Part: part, Path: "$", Expected: "XML", Actual: quoteBody(act), Message: "body is not valid XML: " + err.Error()}}
	}
	m := &xmlMatcher{part: part, rules: rules, strict: strict}
	root := []token{{name: e.local, index: -1}}
	m.element(xpath{root, root}, e, a)
	return m.out
}

func (m *xmlMatcher) add(p xpath, mm Mismatch) {
	mm.Part, mm.Path = m.part, pathString(p.names)
	m.out = append(m.out, mm)
}

func (m *xmlMatcher) element(p xpath, e, a *xmlElem) {
	if e.local != a.local || e.space != a.space {
		m.add(p, Mismatch{Expected: "element " + xmlName(e), Actual: "element " + xmlName(a), Matcher: "equality",
			Message: fmt.Sprintf("expected element %s, got %s", xmlName(e), xmlName(a))})
		return
	}
	for _, k := range sortedKeys(e.attrs) {
		ap := p.attr("@" + k)
		av, ok := a.attrs[k]
		if !ok {
			m.add(ap, Mismatch{Expected: fmt.Sprintf("%q", e.attrs[k]), Actual: "nothing", Message: fmt.Sprintf("expected attribute %q", k)})
			continue
		}
		m.scalar(ap, e.attrs[k], av)
	}
	if m.strict {
		for _, k := range sortedKeys(a.attrs) {
			if _, ok := e.attrs[k]; !ok {
				m.add(p.attr("@"+k), Mismatch{Expected: "nothing", Actual: fmt.Sprintf("%q", a.attrs[k]), Message: fmt.Sprintf("unexpected attribute %q", k)})
			}
		}
	}
	if e.text != "" || a.text != "" && len(e.children) == 0 {
		m.scalar(p.attr("#text"), e.text, a.text)
	}
	m.children(p, e, a)
}

// scalar compares an attribute or a text by the rule that applies, or by
// equality.
func (m *xmlMatcher) scalar(p xpath, e, a string) {
	l, _ := m.find(p)
	if l == nil {
		if e != a {
			m.add(p, Mismatch{Expected: fmt.Sprintf("%q", e), Actual: fmt.Sprintf("%q", a), Matcher: "equality"})
		}
		return
	}
	for _, mm := range applyList(m.part, "", l, e, a) {
		mm.Path = pathString(p.names)
		m.out = append(m.out, mm)
	}
}

func isTypeList(l *RuleList) bool {
	for _, mt := range l.Matchers {
		if mt.Type == "type" {
			return true
		}
	}
	return false
}

func xmlName(e *xmlElem) string {
	if e.space != "" {
		return "{" + e.space + "}" + e.local
	}
	return e.local
}

// children compares child elements. Under a type rule set on the element
// itself, its children are a list: each actual child is matched against
// the first expected one, their count within the rule's min and max.
// Otherwise children pair up by name and position; a response may have
// more of them than expected, a request may not.
func (m *xmlMatcher) children(p xpath, e, a *xmlElem) {
	if l, direct := m.find(p); l != nil && direct && isTypeList(l) {
		for _, mt := range l.Matchers {
			if mt.Type != "type" {
				continue
			}
			if mt.Min != nil && len(a.children) < *mt.Min {
				m.add(p, Mismatch{Expected: fmt.Sprintf("at least %d child elements", *mt.Min), Actual: fmt.Sprint(len(a.children)), Matcher: describe(mt)})
			}
			if mt.Max != nil && len(a.children) > *mt.Max {
				m.add(p, Mismatch{Expected: fmt.Sprintf("at most %d child elements", *mt.Max), Actual: fmt.Sprint(len(a.children)), Matcher: describe(mt)})
			}
		}
		if len(e.children) == 0 {
			return
		}
		for i, ac := range a.children {
			m.element(p.child(i, ac.local), e.children[0], ac)
		}
		return
	}
	groups := map[string][]*xmlElem{}
	var order []string
	for _, c := range e.children {
		k := xmlName(c)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], c)
	}
	actual := map[string][]int{}
	for i, c := range a.children {
		actual[xmlName(c)] = append(actual[xmlName(c)], i)
	}
	for _, k := range order {
		es := groups[k]
		as := actual[k]
		for i, ec := range es {
			if i >= len(as) {
				m.add(p.child(i, ec.local), Mismatch{Expected: fmt.Sprintf("element <%s>", ec.local), Actual: "nothing",
					Message: fmt.Sprintf("expected %d <%s> elements, got %d", len(es), ec.local, len(as))})
				break
			}
			m.element(p.child(as[i], ec.local), ec, a.children[as[i]])
		}
		if m.strict && len(as) > len(es) {
			m.add(p.child(as[len(es)], es[0].local), Mismatch{Expected: fmt.Sprintf("%d <%s> elements", len(es), es[0].local), Actual: fmt.Sprint(len(as)),
				Message: fmt.Sprintf("expected %d <%s> elements, got %d", len(es), es[0].local, len(as))})
		}
	}
	if m.strict {
		for i, c := range a.children {
			if _, ok := groups[xmlName(c)]; !ok {
				m.add(p.child(i, c.local), Mismatch{Expected: "nothing", Actual: "element <" + c.local + ">", Message: fmt.Sprintf("unexpected element <%s>", c.local)})
			}
		}
	}
}
