package main

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestContractOpenAPIDiffCLI(t *testing.T) {
	dir := filepath.Join("..", "..", "contract", "openapi", "testdata")
	v1 := filepath.Join(dir, "orders-v1.yaml")
	out, err := runCLI(t, "contract", "openapi-diff", v1, filepath.Join(dir, "orders-v2-breaking.yaml"))
	if !errors.Is(err, errBreakingAPI) {
		t.Fatalf("breaking diff: err = %v, want errBreakingAPI\n%s", err, out)
	}
	for _, want := range []string{"4 breaking change(s)", "api-removed-without-deprecation  DELETE /orders/{id}", "orders-v1.yaml:38:5", "new-required-request-property"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, err = runCLI(t, "contract", "openapi-diff", "--json", v1, filepath.Join(dir, "orders-v2-breaking.yaml"))
	if !errors.Is(err, errBreakingAPI) {
		t.Fatalf("--json breaking: err = %v", err)
	}
	var doc struct {
		Breaking bool
		Changes  []struct {
			Rule, Level, Path string
			Old, New          *struct {
				File string
				Line int
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || !doc.Breaking || len(doc.Changes) != 4 {
		t.Fatalf("--json: %v %+v\n%s", err, doc, out)
	}
	out, err = runCLI(t, "contract", "openapi-diff", v1, filepath.Join(dir, "orders-v2-compatible.yaml"))
	if err != nil || !strings.Contains(out, "no breaking changes") {
		t.Fatalf("compatible diff: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "contract", "openapi-diff", v1); err == nil {
		t.Fatal("one argument was accepted")
	}
	if _, err := runCLI(t, "contract", "openapi-diff", v1, filepath.Join(dir, "none.yaml")); err == nil {
		t.Fatal("a missing file was accepted")
	}
}
