package contract

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSpecificationCases runs every matching test case of the Pact
// specification (V3 and V4, kept in testdata/pact-specification) through
// handoff's matcher and checks the verdict the specification gives.
func TestSpecificationCases(t *testing.T) {
	for _, ver := range []struct {
		dir  string
		spec Spec
	}{{"v3", V3}, {"v4", V4}} {
		root := filepath.Join("testdata", "pact-specification", ver.dir)
		n := 0
		err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() || !strings.HasSuffix(path, ".json") {
				return err
			}
			n++
			rel, _ := filepath.Rel(root, path)
			t.Run(ver.dir+"/"+rel, func(t *testing.T) {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				var tc struct {
					Match    bool
					Comment  string
					Expected json.RawMessage
					Actual   json.RawMessage
				}
				if err := json.Unmarshal(b, &tc); err != nil {
					t.Fatal(err)
				}
				ms, err := specCase(strings.SplitN(filepath.ToSlash(rel), "/", 2)[0], ver.spec, tc.Expected, tc.Actual)
				if err != nil {
					t.Fatalf("%s: reading the case: %v", tc.Comment, err)
				}
				if got := len(ms) == 0; got != tc.Match {
					t.Errorf("%s: match = %v, want %v; mismatches: %v", tc.Comment, got, tc.Match, ms)
				}
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n < 200 {
			t.Fatalf("%s: only %d cases found", root, n)
		}
	}
}

func specCase(kind string, spec Spec, exp, act json.RawMessage) ([]Mismatch, error) {
	switch kind {
	case "request":
		e, err := parseRequest("expected", exp, spec)
		if err != nil {
			return nil, err
		}
		a, err := parseRequest("actual", act, spec)
		if err != nil {
			return nil, err
		}
		return MatchRequest(e, a), nil
	case "response":
		e, err := parseResponse("expected", exp, spec)
		if err != nil {
			return nil, err
		}
		a, err := parseResponse("actual", act, spec)
		if err != nil {
			return nil, err
		}
		return MatchResponse(e, a), nil
	default:
		e, err := parseMessagePart("expected", exp, spec)
		if err != nil {
			return nil, err
		}
		a, err := parseMessagePart("actual", act, spec)
		if err != nil {
			return nil, err
		}
		return MatchMessage(e, a), nil
	}
}
