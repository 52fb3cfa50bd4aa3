package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/handoffhq/handoff/system"
	"github.com/handoffhq/handoff/topology"
)

const topologyUsage = `Usage:
  handoff topology show   [--file handoff.yaml] [--spans OTLP.json ...] [--server URL [--token T]] [--json]
  handoff topology export [--file handoff.yaml] [--spans OTLP.json ...] [--server URL [--token T]] --format json|dot|mermaid|svg

From files, the graph handoff.yaml declares and OTLP/JSON trace exports
show. With --server URL (or HANDOFF_SERVER), the graph a running handoff
serve (or dev) holds on GET /topology: declared by its --system, observed
from the traces sent to it; --file then only names the owners and the
findings (default: the handoff.yaml here, if any), --spans adds edges.
--token T (or HANDOFF_TOKEN) is the server's token.
`

// topologyCmd draws the graph declared in handoff.yaml and observed in OTLP
// JSON trace exports: show summarises chains, findings and drift; export
// writes the graph.
func topologyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
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
	server := fs.String("server", envOr("HANDOFF_SERVER", ""), "read the graph of this running server, e.g. http://127.0.0.1:8477 (env HANDOFF_SERVER)")
	token := fs.String("token", envOr("HANDOFF_TOKEN", ""), "bearer token for --server (env HANDOFF_TOKEN)")
	setUsage(fs, "topology "+sub+" [flags]")
	if err := parseArgs(fs, args[1:], stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("topology %s: takes no arguments (got %q)", sub, fs.Args())
	}
	if sub == "export" {
		switch *format {
		case "json", "dot", "mermaid", "svg":
		default:
			return fmt.Errorf("topology export: --format is json, dot, mermaid or svg, not %q", *format)
		}
	}
	var (
		sys *system.System
		g   *topology.Graph
		err error
	)
	if *server != "" {
		if g, err = serverTopology(ctx, "topology "+sub, *server, *token); err != nil {
			return err
		}
		// The handoff.yaml, when there is one, names owners and findings.
		if _, err := os.Stat(*file); err == nil || *file != system.FileName {
			if sys, err = system.Load(*file); err != nil {
				return err
			}
		}
	} else {
		if sys, err = system.Load(*file); err != nil {
			return err
		}
		g = topology.FromSystem(sys)
	}
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
		}
	}
	title := ""
	if sys == nil {
		sys = &system.System{}
		services, topics := 0, 0
		for _, n := range g.Nodes() {
			if n.Kind == topology.Topic {
				topics++
			} else {
				services++
			}
		}
		title = fmt.Sprintf("server %s: %d services, %d topics (no handoff.yaml: give --file for owners and findings)", *server, services, topics)
	} else {
		title = fmt.Sprintf("system %s: %d services, %d topics", sys.Name, len(sys.Services), len(sys.Topics))
		if *server != "" {
			title = fmt.Sprintf("server %s, system %s: %d services, %d topics", *server, sys.Name, len(sys.Services), len(sys.Topics))
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
	fmt.Fprintln(stdout, title)
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

// serverTopology reads the graph a running server holds (GET /topology).
func serverTopology(ctx context.Context, cmd, server, token string) (*topology.Graph, error) {
	s, err := newAPIServer(cmd, server, token)
	if err != nil {
		return nil, err
	}
	b, _, err := s.call(ctx, http.MethodGet, s.base.JoinPath("topology").String(), "", nil)
	if statusOf(err) == http.StatusNotFound {
		return nil, fmt.Errorf("%s: %w (this server answers no /topology: handoff serve does)", cmd, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, s.explain(err))
	}
	g, err := topology.ReadJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %s/topology: %w", cmd, server, err)
	}
	return g, nil
}
