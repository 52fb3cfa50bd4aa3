package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/handoffhq/handoff/check"
	"github.com/handoffhq/handoff/contract"
	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/system"
	"github.com/handoffhq/handoff/topology"
)

// errCheckFailed makes the exit status 1 after the report was printed.
var errCheckFailed = errors.New("check: the gate failed")

// checkCmd is the governance gate: the five go-live checkpoints plus
// OpenAPI diffs, anti-patterns, drift and can-i-deploy, over handoff.yaml,
// a registry, a broker and a `go test -json` report.
func checkCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("check", stderr)
	file := fs.String("file", system.FileName, "the system's handoff.yaml")
	regURL := fs.String("registry", os.Getenv("HANDOFF_REGISTRY_URL"), "the schema registry (env HANDOFF_REGISTRY_URL)")
	regToken := fs.String("registry-token", os.Getenv("HANDOFF_REGISTRY_TOKEN"), "bearer token for --registry (env HANDOFF_REGISTRY_TOKEN)")
	bf := addBrokerFlags(fs)
	tests := fs.String("tests", "", "a `go test -json` report of the repository's tests (- for standard input)")
	var spans, apis, deploys multi
	fs.Var(&spans, "spans", "an OTLP/JSON trace export: observed edges, for drift (repeatable)")
	fs.Var(&apis, "openapi", "OLD,NEW: two OpenAPI documents whose diff must have no breaking change (repeatable)")
	fs.Var(&deploys, "deploy", "PACTICIPANT=VERSION to ask can-i-deploy about (repeatable)")
	env := fs.String("to-environment", "", "the environment --deploy targets")
	junit := fs.String("junit", "", "also write JUnit XML to this file")
	maxHops := fs.Int("max-hops", 0, "longest synchronous chain allowed (default 3)")
	minAvail := fs.Float64("min-availability", 0, "least availability of a synchronous chain, a fraction (default 0.995)")
	setUsage(fs, "check [--file handoff.yaml] [--registry URL] [--broker URL] [--server URL] [--tests REPORT.json] [--spans OTLP.json]...\n"+
		"                     [--openapi OLD,NEW]... [--deploy P=V --to-environment E] [--json] [--junit FILE]")
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("check: takes no arguments (got %q)", fs.Args())
	}
	sys, err := system.Load(*file)
	if err != nil {
		return err
	}
	in := check.Input{System: sys, Environment: *env, Thresholds: topology.Thresholds{MaxHops: *maxHops, MinAvailability: *minAvail}}
	brokerURL, brokerToken, _, hasBroker, err := bf.t.resolve("check")
	if err != nil {
		return err
	}
	if hasBroker {
		in.Broker = &contract.BrokerClient{BaseURL: brokerURL, Token: brokerToken}
	}
	if s := bf.t.chosenServer; s != "" && *regURL == "" {
		// --server: the server's registry too, unless --registry names one.
		*regURL = strings.TrimSuffix(s, "/") + "/registry"
		if *regToken == "" {
			*regToken = brokerToken
		}
	}
	if *regURL != "" {
		var opts []registry.ClientOption
		if *regToken != "" {
			opts = append(opts, registry.WithToken(*regToken))
		}
		if in.Registry, err = registry.NewClient(*regURL, opts...); err != nil {
			return fmt.Errorf("check: --registry: %w", err)
		}
	}
	switch *tests {
	case "":
	case "-":
		if in.TestReport, err = io.ReadAll(io.LimitReader(stdin, 256<<20)); err != nil {
			return fmt.Errorf("check: --tests: %w", err)
		}
	default:
		if in.TestReport, err = os.ReadFile(*tests); err != nil {
			return fmt.Errorf("check: --tests: %w", err)
		}
	}
	if len(spans) > 0 {
		in.Graph = topology.FromSystem(sys)
		if err := observeFiles(in.Graph, spans); err != nil {
			return fmt.Errorf("check: %w", err)
		}
	}
	for _, pair := range apis {
		oldPath, newPath, ok := strings.Cut(pair, ",")
		if !ok || oldPath == "" || newPath == "" {
			return fmt.Errorf("check: --openapi %q: must be OLD,NEW", pair)
		}
		c := check.APIChange{OldName: oldPath, NewName: newPath}
		if c.Old, err = os.ReadFile(oldPath); err != nil {
			return fmt.Errorf("check: --openapi: %w", err)
		}
		if c.New, err = os.ReadFile(newPath); err != nil {
			return fmt.Errorf("check: --openapi: %w", err)
		}
		in.APIChanges = append(in.APIChanges, c)
	}
	for _, d := range deploys {
		p, v, ok := strings.Cut(d, "=")
		if !ok || p == "" || v == "" {
			return fmt.Errorf("check: --deploy %q: must be PACTICIPANT=VERSION", d)
		}
		in.Deployments = append(in.Deployments, check.Deployment{Pacticipant: p, Version: v})
	}
	rep, err := check.Run(ctx, in)
	if err != nil {
		return err
	}
	if *junit != "" {
		f, err := os.Create(*junit)
		if err != nil {
			return fmt.Errorf("check: --junit: %w", err)
		}
		werr := rep.WriteJUnit(f)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("check: --junit: %w", werr)
		}
	}
	if *bf.json {
		err = printJSON(stdout, rep)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if !rep.Passed {
		return errCheckFailed
	}
	return nil
}
