package main

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// handoff topology over the sample system and the recorded OTLP trace:
// chains with their exact availability, findings, drift; exports.
func TestTopologyCLI(t *testing.T) {
	file := filepath.Join("..", "..", "system", "testdata", "sample", "handoff.yaml")
	spans := filepath.Join("..", "..", "topology", "testdata", "spans.otlp.json")
	out, err := runCLI(t, "topology", "show", "--file", file, "--spans", spans)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		"gateway -> order -> payment -> fraud -> ledger  4 hops  availability 0.995009990004999  latency 150ms  [entry: all-sync critical path]",
		"shared-table", "payments.transactions",
		"declared, never observed: ledger -> ledger.posted (async)",
		"observed, not declared: shipping -> 10.0.0.7:80 (sync)",
		"shipping -> 10.0.0.7:80  1 hops  availability 0.9995  latency 25ms", // observed: 1 call of 1 succeeded
	} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	out, err = runCLI(t, "topology", "show", "--json", "--file", file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Chains   []struct{ Availability string }
		Findings []struct{ Rule string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Chains) != 2 || len(doc.Findings) != 3 {
		t.Fatalf("show --json: %v %+v\n%s", err, doc, out)
	}
	for format, want := range map[string]string{"dot": "digraph topology", "mermaid": "flowchart LR", "json": `"chains"`, "svg": `<svg xmlns="http://www.w3.org/2000/svg"`} {
		out, err := runCLI(t, "topology", "export", "--format", format, "--file", file)
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("export %s: %v\n%s", format, err, out)
		}
	}
	// The SVG export of the file plus the trace: every node, the observed
	// edge among the edges, well-formed.
	out, err = runCLI(t, "topology", "export", "--format", "svg", "--file", file, "--spans", spans)
	if err != nil {
		t.Fatalf("export svg: %v\n%s", err, out)
	}
	dec := xml.NewDecoder(strings.NewReader(out))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("export svg is not well-formed: %v\n%s", err, out)
		}
	}
	for _, want := range []string{"<title>service gateway</title>", "<title>topic order.placed</title>", "<title>shipping -&gt; 10.0.0.7:80 (sync)</title>", `stroke="#d62728"`} {
		if !strings.Contains(out, want) {
			t.Errorf("export svg lacks %q", want)
		}
	}
	if _, err := runCLI(t, "topology", "export", "--format", "png", "--file", file); err == nil || !strings.Contains(err.Error(), "json, dot, mermaid or svg") {
		t.Fatalf("export --format png: %v", err)
	}
	if out, err := runCLI(t, "topology", "show", "--file", filepath.Join(t.TempDir(), "none.yaml")); err == nil {
		t.Fatalf("a missing file was accepted:\n%s", out)
	}
}
