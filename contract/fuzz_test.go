package contract

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the pact parser: it must not panic,
// and what it accepts must write and read back to the same interactions.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"consumer":{"name":"c"},"provider":{"name":"p"},"interactions":[]}`,
		`{"consumer":{"name":"c"},"provider":{"name":"p"},"interactions":[{"description":"d","request":{"method":"GET","path":"/","query":"a=1"},"response":{"status":200,"body":{"a":1}}}],"metadata":{"pactSpecification":{"version":"2.0.0"}}}`,
		`{"consumer":{"name":"c"},"provider":{"name":"p"},"messages":[{"description":"m","contents":{"a":[1,2]},"metaData":{"contentType":"application/json"},"matchingRules":{"body":{"$.a":{"matchers":[{"match":"type","min":1}]}}}}]}`,
		`{"consumer":{"name":"c"},"provider":{"name":"p"},"interactions":[{"type":"Synchronous/HTTP","description":"d","request":{"method":"POST","path":"/x","body":{"contentType":"application/octet-stream","encoded":"base64","content":"AAEC"}},"response":{"status":201,"matchingRules":{"status":{"matchers":[{"match":"statusCode","status":"success"}]}}}}],"metadata":{"pactSpecification":{"version":"4.0"}}}`,
	} {
		f.Add([]byte(seed))
	}
	if b, err := os.ReadFile(filepath.Join("testdata", "pact-specification", "v4", "response", "body", "array with type matcher.json")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		if p.Spec < V4 && p.HasMessages() && len(p.Interactions) > 0 {
			for _, i := range p.Interactions {
				if i.Type == TypeHTTP {
					p.Spec = V4
				}
			}
		}
		out, err := p.Marshal()
		if err != nil {
			if strings.Contains(err.Error(), "V4") {
				return
			}
			t.Fatalf("marshal an accepted pact: %v", err)
		}
		q, err := Parse(out)
		if err != nil {
			t.Fatalf("re-read what was written: %v\n%s", err, out)
		}
		if len(q.Interactions) != len(p.Interactions) || q.Consumer != p.Consumer || q.Provider != p.Provider {
			t.Fatalf("round trip changed the pact:\n%s", out)
		}
		// Matching an interaction against itself never panics.
		for _, i := range q.Interactions {
			switch i.Type {
			case TypeHTTP:
				MatchRequest(i.Request, i.Request)
				MatchResponse(i.Response, i.Response)
			case TypeMessage:
				MatchMessage(i.Message, i.Message)
			}
		}
	})
}

// FuzzMatchBody matches arbitrary bodies under arbitrary rules.
func FuzzMatchBody(f *testing.F) {
	f.Add([]byte(`{"a":[1,2],"b":"x"}`), []byte(`{"a":[3],"b":"y","c":null}`), "$.a", `{"match":"type","min":1}`)
	f.Add([]byte(`<a x="1"><b>t</b></a>`), []byte(`<a x="2"><b>u</b><b/></a>`), "$.a.b", `{"match":"regex","regex":"\\w+"}`)
	f.Add([]byte(`[{"k":1}]`), []byte(`[{"k":"1"},{"k":2}]`), "$", `{"match":"arrayContains","variants":[{"index":0,"rules":{"$.k":{"matchers":[{"match":"integer"}]}}}]}`)
	f.Fuzz(func(t *testing.T, exp, act []byte, path, matcher string) {
		var l RuleList
		if err := l.UnmarshalJSON([]byte(`{"matchers":[` + matcher + `]}`)); err != nil {
			return
		}
		rules := map[string]*RuleList{path: &l}
		for _, ct := range []string{"application/json", "application/xml", "text/plain"} {
			matchBody("body", Body{Present: true, ContentType: ct, Content: exp}, Body{Present: true, ContentType: ct, Content: act}, nil, nil, rules, true)
		}
	})
}
