package openapi_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/contract/openapi"
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDiff_BreakingChangesNameRuleAndLocation(t *testing.T) {
	rep, err := openapi.Diff(read(t, "orders-v1.yaml"), read(t, "orders-v2-breaking.yaml"),
		openapi.Options{OldName: "orders-v1.yaml", NewName: "orders-v2-breaking.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Breaking() {
		t.Fatalf("breaking change not reported: %+v", rep.Changes)
	}
	var rules []string
	for _, c := range rep.Changes {
		if c.Level != openapi.Error {
			t.Errorf("warning-level change %s reported without Warnings", c.Rule)
		}
		rules = append(rules, c.Rule)
		t.Logf("%s %s %s %s: %s", c.Rule, c.Operation, c.Path, c.Where(), c.Text)
	}
	for _, want := range []string{"api-removed-without-deprecation", "new-required-request-property", "response-required-property-removed"} {
		if !slices.Contains(rules, want) {
			t.Errorf("rule %s missing from %v", want, rules)
		}
	}
	for _, c := range rep.Changes {
		if c.Rule == "response-required-property-removed" {
			if c.Path != "/orders/{id}" && c.Path != "/orders" {
				t.Errorf("%s at path %q", c.Rule, c.Path)
			}
			if !strings.Contains(c.Text, "total") {
				t.Errorf("%s text %q does not name the property", c.Rule, c.Text)
			}
		}
		if c.Rule == "api-removed-without-deprecation" {
			if c.Operation != "DELETE" || c.Path != "/orders/{id}" {
				t.Errorf("removed api at %s %s", c.Operation, c.Path)
			}
			if c.Old == nil || c.Old.File != "orders-v1.yaml" || c.Old.Line == 0 {
				t.Errorf("removed api location %+v, want a line in orders-v1.yaml", c.Old)
			}
		}
	}
}

func TestDiff_CompatibleChangeIsClean(t *testing.T) {
	rep, err := openapi.Diff(read(t, "orders-v1.yaml"), read(t, "orders-v2-compatible.yaml"), openapi.Options{Warnings: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Breaking() {
		t.Fatalf("compatible change reported breaking: %+v", rep.Changes)
	}
	if rep.Count(openapi.Error) != 0 {
		t.Fatalf("errors in %+v", rep.Changes)
	}
}

func TestDiff_SameDocumentHasNoChanges(t *testing.T) {
	rep, err := openapi.Diff(read(t, "orders-v1.yaml"), read(t, "orders-v1.yaml"), openapi.Options{Warnings: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Changes) != 0 {
		t.Fatalf("changes between identical documents: %+v", rep.Changes)
	}
}

func TestDiff_BadInputNamesTheDocument(t *testing.T) {
	good := read(t, "orders-v1.yaml")
	for _, tc := range []struct {
		name string
		doc  []byte
		opts openapi.Options
		want string
	}{
		{"not yaml", []byte("openapi: [unclosed"), openapi.Options{NewName: "broken.yaml"}, "broken.yaml"},
		{"no openapi field", []byte("info: {title: x, version: '1'}\npaths: {}\n"), openapi.Options{NewName: "noversion.yaml"}, `"openapi"`},
		{"invalid", []byte("openapi: 3.0.3\ninfo: {title: x}\npaths: {}\n"), openapi.Options{NewName: "invalid.yaml"}, "invalid.yaml"},
		{"too large", good, openapi.Options{MaxBytes: 100, NewName: "big.yaml"}, "limit is 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openapi.Diff(good, tc.doc, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if tc.opts.MaxBytes > 0 && !errors.Is(err, openapi.ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
		})
	}
}

func FuzzDiff(f *testing.F) {
	f.Add(read(f, "orders-v1.yaml"))
	f.Add(read(f, "orders-v2-breaking.yaml"))
	f.Add([]byte(`{"openapi":"3.0.3","info":{"title":"x","version":"1"},"paths":{"/a":{"get":{"responses":{"200":{"description":"ok"}}}}}}`))
	old := read(f, "orders-v1.yaml")
	f.Fuzz(func(t *testing.T, doc []byte) {
		rep, err := openapi.Diff(old, doc, openapi.Options{MaxBytes: 1 << 16})
		if err == nil && rep == nil {
			t.Fatal("nil report without error")
		}
	})
}
