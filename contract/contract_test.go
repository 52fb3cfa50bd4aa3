package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fullPact(spec Spec) *Pact {
	body, _ := build(map[string]any{
		"id":      Integer(7),
		"price":   Decimal(9.99),
		"n":       Number(3),
		"ok":      Boolean(true),
		"none":    Null(),
		"day":     Date("yyyy-MM-dd", "2024-02-29"),
		"at":      Time("HH:mm", "23:59"),
		"ts":      Timestamp("yyyy-MM-dd'T'HH:mm:ssXXX", "2024-02-29T23:59:00Z"),
		"kind":    Regex("a|b", "a"),
		"note":    Includes("hello"),
		"exact":   Equal("x"),
		"items":   EachLike(map[string]any{"sku": Like("A")}, 2),
		"few":     AtMost("x", 3),
		"range":   Between(1, 1, 4),
		"tags":    ArrayContaining("red", Regex(`\d+`, "12")),
		"counts":  EachKey(map[string]any{"a": 1}, Regex(`[a-z]+`, "a")),
		"vals":    EachValue(map[string]any{"a": "x"}, Regex(`\w+`, "x")),
		"by":      Values(map[string]any{"a": 1}),
		"v":       Semver("1.2.3"),
		"uuid":    UUID("6f1c3d3e-0d5a-4bb3-9f5c-0b4cfa1f2e3a"),
		"owner":   FromProviderState("${owner}", "alice"),
		"filled":  NotEmpty("x"),
		"number2": Generated(5, Generator{"type": "RandomInt", "min": 1, "max": 9}),
	})
	content, _ := json.Marshal(body.example)
	resp := &Response{Status: 200, Headers: Headers{"Content-Type": {"application/json"}}, Body: Body{Present: true, ContentType: "application/json", Content: content},
		Rules: Rules{"body": body.rules, "status": {"": {Matchers: []Matcher{{Type: "statusCode", Status: "success"}}}}}, Gens: Generators{"body": body.gens}}
	p := &Pact{Consumer: "web", Provider: "orders", Spec: spec, Interactions: []*Interaction{
		{Type: TypeHTTP, Description: "get", ProviderStates: []ProviderState{{Name: "an order", Params: map[string]any{"id": 7.0}}},
			Request: &Request{Method: "GET", Path: "/orders/7", Query: Query{"a": {"1", "2"}}, Headers: Headers{"Accept": {"application/json"}},
				Rules: Rules{"path": {"": {Matchers: []Matcher{{Type: "regex", Regex: `/orders/\d+`}}}}, "query": {"a": {Matchers: []Matcher{{Type: "integer"}}}}},
				Gens:  Generators{"path": {"": {"type": "ProviderState", "expression": "/orders/${id}"}}}},
			Response: resp},
		{Type: TypeHTTP, Description: "text", Request: &Request{Method: "GET", Path: "/t"},
			Response: &Response{Status: 200, Headers: Headers{"Content-Type": {"text/plain"}}, Body: Body{Present: true, ContentType: "text/plain", Content: []byte("hi")}}},
	}}
	if spec == V4 {
		p.Interactions = append(p.Interactions, upload())
		p.Interactions = append(p.Interactions, &Interaction{Type: TypeMessage, Description: "placed", Pending: true, Message: &Message{
			Contents: Body{Present: true, ContentType: "application/json", Content: content},
			Metadata: map[string]any{"type": "order.placed", "contentType": "application/json"},
			Rules:    Rules{"content": body.rules, "metadata": {"type": {Matchers: []Matcher{{Type: "regex", Regex: `order\..+`}}}}}}})
	}
	return p
}

func upload() *Interaction {
	return &Interaction{Type: TypeHTTP, Description: "upload", Request: &Request{Method: "POST", Path: "/files", Headers: Headers{"Content-Type": {"application/octet-stream"}},
		Body: Body{Present: true, ContentType: "application/octet-stream", Content: []byte{0, 1, 2, 255}}},
		Response: &Response{Status: 204}}
}

// TestRoundTrip: V3 and V4 pacts with every matcher and generator write,
// read back to the same model, and write again to the same bytes.
func TestRoundTrip(t *testing.T) {
	for _, spec := range []Spec{V3, V4} {
		t.Run(spec.String(), func(t *testing.T) {
			p := fullPact(spec)
			b1, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			q, err := Parse(b1)
			if err != nil {
				t.Fatalf("%v\n%s", err, b1)
			}
			if q.Spec != spec || len(q.Interactions) != len(p.Interactions) {
				t.Fatalf("read back spec %v with %d interactions", q.Spec, len(q.Interactions))
			}
			b2, err := q.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b1, b2) {
				t.Fatalf("second write differs:\n%s\n---\n%s", b1, b2)
			}
			if spec == V4 {
				if up := q.Interactions[2]; !bytes.Equal(up.Request.Body.Content, []byte{0, 1, 2, 255}) {
					t.Errorf("binary body: %v", up.Request.Body.Content)
				}
			}
			// The example satisfies its own rules.
			for _, i := range q.Interactions {
				if i.Type == TypeHTTP {
					if ms := MatchResponse(i.Response, i.Response); len(ms) > 0 {
						t.Errorf("%s: the example does not match its rules: %v", i.Description, ms)
					}
				}
			}
		})
	}
	if _, err := (&Pact{Consumer: "a", Provider: "b", Spec: V3, Interactions: fullPact(V4).Interactions}).Marshal(); err == nil ||
		!strings.Contains(err.Error(), "V4") {
		t.Errorf("a V3 pact with HTTP and messages: %v", err)
	}
	if _, err := (&Pact{Consumer: "a", Provider: "b", Spec: V3, Interactions: []*Interaction{upload()}}).Marshal(); err == nil ||
		!strings.Contains(err.Error(), "binary") {
		t.Errorf("a V3 pact with a binary body: %v", err)
	}
}

// TestRoundTrip_V2 reads a V2 file (query string, V2 rule paths) and
// writes it as V3 with the same meaning.
func TestRoundTrip_V2(t *testing.T) {
	v2 := `{"consumer":{"name":"c"},"provider":{"name":"p"},"interactions":[{"description":"d","providerState":"s",
	"request":{"method":"get","path":"/x","query":"a=1&a=2&b=3","headers":{"X":"y"}},
	"response":{"status":200,"headers":{"Content-Type":"application/json"},"body":{"items":[{"n":1}]},
	"matchingRules":{"$.body.items":{"min":1},"$.body.items[*].n":{"match":"type"},"$.headers.X":{"regex":"\\w"}}}}],
	"metadata":{"pactSpecification":{"version":"2.0.0"}}}`
	p, err := Parse([]byte(v2))
	if err != nil {
		t.Fatal(err)
	}
	i := p.Interactions[0]
	if p.Spec != V2 || i.Request.Method != "GET" || fmt.Sprint(i.Request.Query["a"]) != "[1 2]" || i.ProviderStates[0].Name != "s" {
		t.Fatalf("V2 read: %+v %+v", p, i.Request)
	}
	if l := i.Response.Rules["body"]["$.items"]; l == nil || l.Matchers[0].Type != "type" || *l.Matchers[0].Min != 1 {
		t.Fatalf("V2 rules: %+v", i.Response.Rules)
	}
	p.Spec = V3
	b, _ := p.Marshal()
	q, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	act := &Response{Status: 200, Headers: Headers{"Content-Type": {"application/json"}}, Body: Body{Present: true, Content: []byte(`{"items":[{"n":5},{"n":6}]}`)}}
	if ms := MatchResponse(q.Interactions[0].Response, act); len(ms) > 0 {
		t.Fatalf("V2 rules lost in V3: %v", ms)
	}
}

// TestMatchers is the matcher table: each DSL term against values that
// match and values that do not.
func TestMatchers(t *testing.T) {
	cases := []struct {
		term    any
		matches []any
		fails   []any
	}{
		{Like("s"), []any{"t", ""}, []any{1, nil, []any{}}},
		{Like(map[string]any{"a": 1}), []any{map[string]any{"a": 2, "b": 3}}, []any{map[string]any{"b": 1}, map[string]any{"a": "1"}}},
		{EachLike(map[string]any{"a": 1}, 2), []any{[]any{map[string]any{"a": 1}, map[string]any{"a": 9}}}, []any{[]any{map[string]any{"a": 1}}, []any{map[string]any{"a": "x"}, map[string]any{"a": 1}}}},
		{AtMost(1, 2), []any{[]any{}, []any{5, 6}}, []any{[]any{1, 2, 3}, []any{"x"}}},
		{Between("x", 1, 2), []any{[]any{"a"}, []any{"a", "b"}}, []any{[]any{}, []any{"a", "b", "c"}}},
		{Regex(`\d{3}`, "123"), []any{"999"}, []any{"12", "1234", "abc", 123.5}},
		{Integer(1), []any{0, -5}, []any{1.5, "1", true}},
		{Decimal(1.5), []any{json.Number("2.25"), json.Number("1e3")}, []any{3, "1.5"}},
		{Number(1), []any{1, 2.5}, []any{"1", nil}},
		{Boolean(true), []any{false, "true"}, []any{1, "yes"}},
		{Null(), []any{nil}, []any{0, ""}},
		{Date("yyyy-MM-dd", "2024-01-31"), []any{"2024-02-29", "1999-12-31"}, []any{"2023-02-29", "2024-13-01", "2024/01/01", 20240101}},
		{Time("HH:mm:ss", "10:00:00"), []any{"23:59:59"}, []any{"24:00:00", "9:00:00"}},
		{Timestamp("yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "2024-01-01T00:00:00.000Z"), []any{"2024-06-30T12:30:45.123+02:00"}, []any{"2024-06-30T12:30:45+02:00", "2024-06-30 12:30:45.123Z"}},
		{Timestamp("", "2024-01-01T00:00:00Z"), []any{"2024-06-30T12:30:45.5+02:00"}, []any{"yesterday"}},
		{Equal("x"), []any{"x"}, []any{"y"}},
		{Includes("ell"), []any{"hello"}, []any{"help"}},
		{NotEmpty("x"), []any{"y"}, []any{"", nil}},
		{Semver("1.0.0"), []any{"2.10.3-rc.1+b5"}, []any{"1.0", "v1.0.0"}},
		{Values(map[string]any{"k": 1}), []any{map[string]any{"x": 5, "y": 6}}, []any{map[string]any{"x": "5"}}},
		{EachKey(map[string]any{"ab": 1}, Regex(`[a-z]+`, "ab")), []any{map[string]any{"cd": 2}}, []any{map[string]any{"C1": 2}}},
		{EachValue(map[string]any{"a": "x"}, Regex(`x+`, "x")), []any{map[string]any{"q": "xxx"}}, []any{map[string]any{"q": "y"}}},
		{ArrayContaining(map[string]any{"type": Equal("a")}, Integer(1)), []any{[]any{5, "z", map[string]any{"type": "a"}}}, []any{[]any{map[string]any{"type": "a"}}, []any{1, map[string]any{"type": "b"}}}},
		{UUID("6f1c3d3e-0d5a-4bb3-9f5c-0b4cfa1f2e3a"), []any{"00000000-0000-0000-0000-000000000000"}, []any{"not-a-uuid"}},
	}
	for n, c := range cases {
		exp, err := build(map[string]any{"v": c.term})
		if err != nil {
			t.Fatal(err)
		}
		eb, _ := json.Marshal(exp.example)
		want := &Response{Status: 200, Body: Body{Present: true, ContentType: "application/json", Content: eb}, Rules: Rules{"body": exp.rules}}
		check := func(v any, ok bool) {
			ab, _ := json.Marshal(map[string]any{"v": v})
			ms := MatchResponse(want, &Response{Status: 200, Body: Body{Present: true, ContentType: "application/json", Content: ab}})
			if (len(ms) == 0) != ok {
				t.Errorf("case %d (%s): %s: matched = %v, want %v; %v", n, eb, ab, len(ms) == 0, ok, ms)
			}
		}
		check(exp.example.(map[string]any)["v"], true)
		for _, v := range c.matches {
			check(v, true)
		}
		for _, v := range c.fails {
			check(v, false)
		}
	}
}

// recTB records what a consumer test reports instead of failing.
type recTB struct {
	testing.TB
	errs []string
}

func (r *recTB) Helper()                        {}
func (r *recTB) Error(args ...any)              { r.errs = append(r.errs, fmt.Sprint(args...)) }
func (r *recTB) Errorf(format string, a ...any) { r.errs = append(r.errs, fmt.Sprintf(format, a...)) }

// TestMockServer_ReportsUnexpectedAndMissing: a request that matches no
// interaction and an interaction never requested fail the consumer test
// with a readable diff, and nothing is written.
func TestMockServer_ReportsUnexpectedAndMissing(t *testing.T) {
	dir := t.TempDir()
	rt := &recTB{TB: t}
	c := NewConsumer(rt, "web", "orders", WithPactDir(dir))
	c.UponReceiving("create an order").WithRequest("POST", "/orders").JSON(map[string]any{"sku": Like("A-1"), "qty": Integer(1)}).WillRespondWith(201)
	c.UponReceiving("list orders").WithRequest("GET", "/orders").WillRespondWith(200)
	err := c.Run(func(base string) error {
		res, err := http.Post(base+"/orders", "application/json", strings.NewReader(`{"sku":"A-1","qty":"one","extra":true}`))
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 500 {
			return fmt.Errorf("mock answered %d to an unexpected request", res.StatusCode)
		}
		return nil
	})
	if err == nil || len(rt.errs) != 1 {
		t.Fatalf("Run: %v; reported %v", err, rt.errs)
	}
	got := rt.errs[0]
	for _, want := range []string{
		`unexpected request POST /orders`,
		`closest interaction "create an order" differs:`,
		"body $.qty\n        - expected: 1\n        + actual:   \"one\"\n        (expected an integer, got \"one\"; matcher integer)",
		`body $.extra`, `unexpected key "extra"`,
		`missing request: interaction "list orders" was never requested`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if _, err := os.Stat(c.PactPath()); !os.IsNotExist(err) {
		t.Errorf("a failed run wrote the pact: %v", err)
	}
}

// TestPactFileMergesTests: two tests of one pair write one file; an
// interaction declared again replaces the earlier one.
func TestPactFileMergesTests(t *testing.T) {
	dir := t.TempDir()
	run := func(desc, path string) {
		c := NewConsumer(t, "web", "orders", WithPactDir(dir))
		c.UponReceiving(desc).WithRequest("GET", path).WillRespondWith(200)
		c.Run(func(base string) error {
			res, err := http.Get(base + path)
			if err == nil {
				res.Body.Close()
			}
			return err
		})
	}
	run("a", "/a")
	run("b", "/b")
	run("a", "/a2")
	b, err := os.ReadFile(filepath.Join(dir, "web-orders.json"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Interactions) != 2 || p.Interactions[0].Request.Path != "/a2" || p.Interactions[1].Description != "b" || p.Spec != V3 {
		t.Fatalf("merged pact: %s", b)
	}
}

func TestBodyOfType(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	c := NewConsumer(t, "web", "images", WithPactDir(t.TempDir()), WithSpec(V4))
	c.UponReceiving("a logo").WithRequest("GET", "/logo").WillRespondWith(200).BodyOfType("image/png", png)
	c.Run(func(base string) error {
		res, err := http.Get(base + "/logo")
		if err == nil {
			res.Body.Close()
		}
		return err
	})
	b, _ := os.ReadFile(c.PactPath())
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	exp := p.Interactions[0].Response
	other := append([]byte("\x89PNG\r\n\x1a\n"), "different pixels"...)
	if ms := MatchResponse(exp, &Response{Status: 200, Headers: Headers{"Content-Type": {"image/png"}}, Body: Body{Present: true, ContentType: "image/png", Content: other}}); len(ms) > 0 {
		t.Errorf("another PNG: %v", ms)
	}
	if ms := MatchResponse(exp, &Response{Status: 200, Headers: Headers{"Content-Type": {"image/png"}}, Body: Body{Present: true, ContentType: "image/png", Content: []byte("GIF89a....")}}); len(ms) == 0 {
		t.Error("a GIF matched an image/png body")
	}
}
