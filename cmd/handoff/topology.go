package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/handoffhq/handoff/system"
	"github.com/handoffhq/handoff/topology"
)

const topologyUsage = `Usage:
  handoff topology show   [--file handoff.yaml] [--spans OTLP.json ...] [--json]
  handoff topology export [--file handoff.yaml] [--spans OTLP.json ...] --format json|dot|mermaid|svg
`

// topologyCmd draws the graph declared in handoff.yaml and observed in OTLP
// JSON trace exports: show summarises chains, findings and drift; export
// writes the graph.
func topologyCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) == 0 {
			fmt.Fprint(stderr, topologyUsage)
			return errors.New("topology: show or export")
		}
		fmt.Fprint(stdout, topologyUsage)
		return nil
	}
	sub := args[0]
	if sub != "show" && sub != "export" {
		fmt.Fprint(stderr, topologyUsage)
		return fmt.Errorf("topology: unknown subcommand %q", sub)
	}
	fs := flag.NewFlagSet("topology "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", system.FileName, "the system's handoff.yaml")
	var spans multi
	fs.Var(&spans, "spans", "an OTLP/JSON trace export to read observed edges from (repeatable)")
	asJSON := fs.Bool("json", false, "show: machine-readable output")
	format := fs.String("format", "", "export: json, dot, mermaid or svg")
	setUsage(fs, "topology "+sub+" [flags]")
	if err := parseArgs(fs, args[1:], stdout); err != nil {
		return err
	}
	sys, err := system.Load(*file)
	if err != nil {
		return err
	}
	g := topology.FromSystem(sys)
	if err := observeFiles(g, spans); err != nil {
		return fmt.Errorf("topology: %w", err)
	}
	if sub == "export" {
		switch *format {
		case "json":
			return g.WriteJSON(stdout)
		case "dot":
			return g.WriteDOT(stdout)
		case "mermaid":
			return g.WriteMermaid(stdout)
		case "svg":
			return g.WriteSVG(stdout)
		default:
			return fmt.Errorf("topology export: --format is json, dot, mermaid or svg, not %q", *format)
		}
	}
	findings := topology.Findings(sys, g, topology.Thresholds{}, nil)
	if *asJSON {
		doc := struct {
			topology.Document
			Findings []topology.Finding `json:"findings"`
		}{g.Document(), findings}
		if doc.Findings == nil {
			doc.Findings = []topology.Finding{}
		}
		return printJSON(stdout, doc)
	}
	fmt.Fprintf(stdout, "system %s: %d services, %d topics\n", sys.Name, len(sys.Services), len(sys.Topics))
	chains := g.Chains()
	fmt.Fprintf(stdout, "\nsynchronous chains (%d):\n", len(chains))
	for _, c := range chains {
		mark, entry := "", ""
		if len(c.Unknown) > 0 {
			mark = " (unknown: " + strings.Join(c.Unknown, ", ") + ")"
		}
		if c.Entry {
			entry = "  [entry: all-sync critical path]"
		}
		fmt.Fprintf(stdout, "  %s  %d hops  availability %s%s  latency %s%s\n", strings.Join(c.Services, " -> "), c.Hops(), c.Availability, mark, c.Latency, entry)
	}
	fmt.Fprintf(stdout, "\nfindings (%d):\n", len(findings))
	for _, f := range findings {
		fmt.Fprintf(stdout, "  %-24s %s: %s (owners: %s)\n", f.Rule, f.Subject, f.Message, strings.Join(f.Owners, ", "))
	}
	if d := g.Drift(); d != nil {
		fmt.Fprintf(stdout, "\ndrift (%d):\n", len(d))
		for _, x := range d {
			fmt.Fprintf(stdout, "  %s: %s -> %s (%s)\n", x.Kind, x.Edge.From, x.Edge.To, x.Edge.Kind)
		}
	}
	return nil
}
