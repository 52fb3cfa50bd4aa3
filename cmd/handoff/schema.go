package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/handoffhq/handoff/impact"
	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/schema"
	"github.com/handoffhq/handoff/system"
	"github.com/handoffhq/handoff/topology"
)

const schemaUsage = `Usage:
` + schemaOpsUsage + `  handoff schema impact   SUBJECT FILE [--server URL | --registry URL | --old FILE [--level L]] [--file handoff.yaml]
                          [--pacts FILE|DIR]... [--spans OTLP.json]... [--type JSON|AVRO|PROTOBUF] [--json]

` + schemaOpsHelp + `impact: which consumers of SUBJECT (declared in handoff.yaml, observed in
traces) read the fields the schema in FILE removes or alters, per their
message pacts; the subject's compatibility verdict beside the verdict for
its known consumers; and the migration steps. Exit status 1 when the change
breaks a known consumer.
`

// errImpactUnsafe makes the exit status 1 after the report was printed.
var errImpactUnsafe = errors.New("schema impact: the change breaks known consumers")

func schemaCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, schemaUsage)
		return errors.New("schema: a subcommand is required")
	}
	switch args[0] {
	case "impact":
		return schemaImpact(ctx, args[1:], stdout, stderr)
	case "register":
		return schemaRegister(ctx, args[1:], stdout, stderr)
	case "check":
		return schemaCheck(ctx, args[1:], stdout, stderr)
	case "get":
		return schemaGet(ctx, args[1:], stdout, stderr)
	case "list":
		return schemaList(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, schemaUsage)
		return flag.ErrHelp
	}
	fmt.Fprint(stderr, schemaUsage)
	return fmt.Errorf("schema: unknown subcommand %q", args[0])
}

func schemaImpact(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("impact", stderr)
	t := addRegistryTarget(fs)
	oldFile := fs.String("old", "", "instead of --server or --registry: the version consumers read today, from a file")
	levelFlag := fs.String("level", "", "with --old: the subject's compatibility level (default BACKWARD)")
	typeFlag := fs.String("type", "", "schema type of FILE: JSON, AVRO or PROTOBUF (default: by extension, .avsc AVRO, .proto PROTOBUF, else JSON)")
	file := fs.String("file", system.FileName, "the system's handoff.yaml (skipped when the default is absent)")
	var pacts, spans multi
	fs.Var(&pacts, "pacts", "a consumer's pact file, or a directory of them (repeatable)")
	fs.Var(&spans, "spans", "an OTLP/JSON trace export: consumers observed reading the subject's topics (repeatable)")
	asJSON := fs.Bool("json", false, "print JSON")
	setUsage(fs, "schema impact SUBJECT FILE [flags]")
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return errors.New("schema impact: SUBJECT and FILE are required")
	}
	subject, path := fs.Arg(0), fs.Arg(1)
	text, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("schema impact: %w", err)
	}
	typ, err := schemaTypeOf(*typeFlag, path)
	if err != nil {
		return fmt.Errorf("schema impact: %w", err)
	}
	proposed, err := schema.Parse(schema.Schema{Type: typ, Text: string(text)})
	if err != nil {
		return fmt.Errorf("schema impact: %s: %w", path, err)
	}
	in := impact.Input{Subject: subject, New: proposed}
	if *oldFile != "" {
		// --old beats a registry from the environment, not one on the
		// command line.
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "server" || f.Name == "registry" {
				err = fmt.Errorf("schema impact: give --%s or --old, not both", f.Name)
			}
		})
		if err != nil {
			return err
		}
		b, err := os.ReadFile(*oldFile)
		if err != nil {
			return fmt.Errorf("schema impact: --old: %w", err)
		}
		old, err := schema.Parse(schema.Schema{Type: typ, Text: string(b)})
		if err != nil {
			return fmt.Errorf("schema impact: --old %s: %w", *oldFile, err)
		}
		in.Earlier = []schema.Version{{Version: 1, Schema: old}}
		if *levelFlag != "" {
			if in.Level, err = schema.ParseLevel(*levelFlag); err != nil {
				return fmt.Errorf("schema impact: --level: %w", err)
			}
		}
	} else {
		if *levelFlag != "" {
			return errors.New("schema impact: --level goes with --old; the registry says the subject's level")
		}
		c, ep, err := t.registryClient("schema impact")
		if err != nil {
			return fmt.Errorf("%w (or --old FILE)", err)
		}
		if in.Earlier, in.Level, err = registryVersions(ctx, c, subject); err != nil {
			return schemaErr("schema impact", subject, "", ep, err)
		}
	}
	if _, err := os.Stat(*file); err == nil || *file != system.FileName {
		if in.System, err = system.Load(*file); err != nil {
			return err
		}
		in.Graph = topology.FromSystem(in.System)
	}
	if len(spans) > 0 {
		if in.Graph == nil {
			in.Graph = topology.New()
		}
		if err := observeFiles(in.Graph, spans); err != nil {
			return err
		}
	}
	if len(pacts) > 0 {
		files, err := pactFiles(pacts)
		if err != nil {
			return err
		}
		for _, f := range files {
			p, err := readPactFile(f)
			if err != nil {
				return err
			}
			in.Pacts = append(in.Pacts, p)
		}
	}
	v, err := impact.Analyze(in)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := printJSON(stdout, v); err != nil {
			return err
		}
	} else {
		printImpact(stdout, v)
	}
	if !v.SafeForKnownConsumers {
		return errImpactUnsafe
	}
	return nil
}

func schemaTypeOf(flagValue, path string) (schema.Type, error) {
	if flagValue != "" {
		t, err := schema.ParseType(flagValue)
		if err != nil {
			return "", fmt.Errorf("--type: %w", err)
		}
		return t, nil
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".avsc", ".avro":
		return schema.Avro, nil
	case ".proto":
		return schema.Protobuf, nil
	}
	return schema.JSON, nil
}

// registryVersions fetches every version of subject, oldest first, and its
// compatibility level (the global one when it has none of its own).
func registryVersions(ctx context.Context, c *registry.Client, subject string) ([]schema.Version, schema.Level, error) {
	nums, err := c.Versions(ctx, subject)
	if err != nil {
		return nil, "", err
	}
	var out []schema.Version
	for _, n := range nums {
		r, err := c.Version(ctx, subject, n)
		if err != nil {
			return nil, "", err
		}
		s, err := c.Resolve(ctx, r)
		if err != nil {
			return nil, "", err
		}
		p, err := schema.Parse(s)
		if err != nil {
			return nil, "", fmt.Errorf("subject %s version %d: %w", subject, n, err)
		}
		out = append(out, schema.Version{Version: n, Schema: p})
	}
	level, err := c.Config(ctx, subject)
	if errors.Is(err, registry.ErrNotFound) {
		level, err = c.Config(ctx, "")
	}
	if err != nil {
		return nil, "", fmt.Errorf("compatibility level of %s: %w", subject, err)
	}
	return out, level, nil
}

func observeFiles(g *topology.Graph, paths []string) error {
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("--spans: %w", err)
		}
		sp, err := topology.ReadOTLP(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("--spans %s: %w", path, err)
		}
		if _, err := g.ObserveSpans(sp, nil); err != nil {
			return fmt.Errorf("--spans %s: %w", path, err)
		}
	}
	return nil
}

func printImpact(w io.Writer, v *impact.Verdict) {
	compat := "compatible"
	if !v.Compatible {
		compat = fmt.Sprintf("refused (%d violation(s))", len(v.Violations))
	}
	safe := "safe for known consumers"
	if !v.SafeForKnownConsumers {
		safe = fmt.Sprintf("BREAKS %d known consumer(s)", len(v.Affected()))
	}
	fmt.Fprintf(w, "subject %s\n  compatibility (%s): %s\n  known consumers:      %s\n", v.Subject, v.Level, compat, safe)
	for _, x := range v.Violations {
		fmt.Fprintf(w, "    %s\n", x)
	}
	fmt.Fprintf(w, "\nchanged fields (%d):\n", len(v.Changes))
	for _, c := range v.Changes {
		desc := c.Old
		if c.New != "" {
			desc += " -> " + c.New
		}
		fmt.Fprintf(w, "  %-8s %s  %s\n", c.Kind, c.Path, desc)
	}
	fmt.Fprintf(w, "\nconsumers (%d):\n", len(v.Consumers))
	for _, c := range v.Consumers {
		owner := ""
		if c.Owner != "" {
			owner = " (" + c.Owner + ")"
		}
		reads := "reads unknown: no message pact"
		if c.Reads != nil {
			reads = "reads " + strings.Join(c.Reads, ", ")
			if len(c.Reads) == 0 {
				reads = "reads no field"
			}
		}
		status := "ok"
		if len(c.Breaks) > 0 {
			status = "BREAKS"
		} else if c.Reads == nil {
			status = "unverified"
		}
		fmt.Fprintf(w, "  %-10s %s%s [%s]: %s\n", status, c.Service, owner, strings.Join(c.Source, "+"), reads)
		for _, b := range c.Breaks {
			fmt.Fprintf(w, "             %s\n", b.Effect)
		}
	}
	fmt.Fprintln(w, "\nmigration:")
	for i, s := range v.Migration {
		fmt.Fprintf(w, "  %d. %s\n", i+1, s)
	}
}
