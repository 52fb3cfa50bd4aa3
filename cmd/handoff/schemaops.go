package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/handoffhq/handoff/registry"
)

// errSchemaIncompatible makes schema check's exit status 1 after the
// verdict was printed.
var errSchemaIncompatible = errors.New("schema check: incompatible")

// registryClient is the registry a schema command talks to.
func (t *target) registryClient(cmd string) (*registry.Client, endpoint, error) {
	base, token, ep, ok, err := t.resolve(cmd)
	if err != nil {
		return nil, ep, err
	}
	if !ok {
		return nil, ep, fmt.Errorf("%s: --server URL (a handoff server, or HANDOFF_SERVER) or --registry URL (or HANDOFF_REGISTRY_URL) is required", cmd)
	}
	var opts []registry.ClientOption
	if token != "" {
		opts = append(opts, registry.WithToken(token))
	}
	c, err := registry.NewClient(base, opts...)
	if err != nil {
		return nil, ep, fmt.Errorf("%s: %w", cmd, err)
	}
	return c, ep, nil
}

func addRegistryTarget(fs *flag.FlagSet) *target {
	return addTarget(fs, "registry", "the schema registry", "/registry", []string{"HANDOFF_REGISTRY_URL"}, []string{"HANDOFF_REGISTRY_TOKEN"})
}

// schemaErr says what to do next after a registry's refusal: which
// subjects or versions there are, or how to reach the registry.
func schemaErr(cmd, subject, version string, ep endpoint, err error) error {
	var re *registry.Error
	if errors.As(err, &re) {
		switch re.Code {
		case registry.CodeSubjectNotFound:
			return fmt.Errorf("%s: no subject %q: `handoff schema list` shows the subjects (%w)", cmd, subject, err)
		case registry.CodeVersionNotFound:
			return fmt.Errorf("%s: subject %q has no version %s: `handoff schema list %s` shows its versions (%w)", cmd, subject, version, subject, err)
		case registry.CodeSchemaNotFound:
			return fmt.Errorf("%s: %w", cmd, err)
		case registry.CodeIncompatibleSchema:
			return fmt.Errorf("%s: %w (`handoff schema check %s FILE` lists each incompatibility)", cmd, err, subject)
		case http.StatusNotFound:
			return fmt.Errorf("%s: no schema registry answers at %s: is it a handoff server's URL (--server) or a registry's (--registry)? (%w)", cmd, ep.url, err)
		}
	}
	return fmt.Errorf("%s: %w", cmd, ep.explain(err))
}

// schemaSpecFlags are the flags saying what FILE is: its type and the
// registered schemas it references.
type schemaSpecFlags struct {
	typ  *string
	refs multi
}

func addSchemaSpec(fs *flag.FlagSet) *schemaSpecFlags {
	f := &schemaSpecFlags{}
	f.typ = fs.String("type", "", "schema type of FILE: JSON, AVRO or PROTOBUF (default: by extension, .avsc AVRO, .proto PROTOBUF, else JSON)")
	fs.Var(&f.refs, "reference", "a schema FILE references: name=subject:version (repeatable)")
	return f
}

func (f *schemaSpecFlags) spec(cmd, path string) (registry.SchemaSpec, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return registry.SchemaSpec{}, fmt.Errorf("%s: %w", cmd, err)
	}
	typ, err := schemaTypeOf(*f.typ, path)
	if err != nil {
		return registry.SchemaSpec{}, fmt.Errorf("%s: %w", cmd, err)
	}
	s := registry.SchemaSpec{Type: typ, Text: string(text)}
	for _, r := range f.refs {
		name, rest, ok := strings.Cut(r, "=")
		i := strings.LastIndex(rest, ":")
		if !ok || name == "" || i <= 0 {
			return s, fmt.Errorf("%s: --reference %q: must be name=subject:version", cmd, r)
		}
		v, err := strconv.Atoi(rest[i+1:])
		if err != nil || v < 1 {
			return s, fmt.Errorf("%s: --reference %q: the version %q must be a number >= 1", cmd, r, rest[i+1:])
		}
		s.References = append(s.References, registry.Reference{Name: name, Subject: rest[:i], Version: v})
	}
	return s, nil
}

const schemaOpsUsage = `  handoff schema register SUBJECT FILE [--type JSON|AVRO|PROTOBUF] [--reference name=subject:version]... [--json]
  handoff schema check    SUBJECT FILE [--version N|latest] [--type T] [--reference ...]... [--json]
  handoff schema get      SUBJECT [--version N|latest] | --id N [--json]
  handoff schema list     [SUBJECT] [--json]
`

const schemaOpsHelp = `register, check, get and list talk to --server URL (a handoff server: its
registry at URL/registry; env HANDOFF_SERVER) or --registry URL (any
Confluent-compatible registry; env HANDOFF_REGISTRY_URL), with --token T
(env HANDOFF_TOKEN, or HANDOFF_REGISTRY_TOKEN with --registry). register
prints the subject's version and the schema's id; check prints the verdict
and each incompatibility, exit status 1 when incompatible; get prints the
schema (--json: the registry's answer); list prints the subjects, or a
subject's versions.

`

func schemaRegister(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const cmd = "schema register"
	fs := newFlags("register", stderr)
	t := addRegistryTarget(fs)
	sf := addSchemaSpec(fs)
	asJSON := fs.Bool("json", false, "print JSON: subject, version, id")
	setUsage(fs, "schema register SUBJECT FILE [flags]")
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return errors.New("schema register: SUBJECT and FILE are required")
	}
	subject, path := fs.Arg(0), fs.Arg(1)
	spec, err := sf.spec(cmd, path)
	if err != nil {
		return err
	}
	c, ep, err := t.registryClient(cmd)
	if err != nil {
		return err
	}
	had := true
	r, err := c.Lookup(ctx, subject, spec)
	if errors.Is(err, registry.ErrNotFound) {
		had = false
		if _, err = c.Register(ctx, subject, spec); err != nil {
			return schemaErr(cmd, subject, "", ep, err)
		}
		r, err = c.Lookup(ctx, subject, spec)
	}
	if err != nil {
		return schemaErr(cmd, subject, "", ep, err)
	}
	if *asJSON {
		return printJSON(stdout, struct {
			Subject string `json:"subject"`
			Version int    `json:"version"`
			ID      int    `json:"id"`
			New     bool   `json:"new"`
		}{subject, r.Version, r.ID, !had})
	}
	if had {
		fmt.Fprintf(stdout, "%s already has this schema: version %d (id %d); nothing registered\n", subject, r.Version, r.ID)
	} else {
		fmt.Fprintf(stdout, "registered %s as %s version %d (id %d)\n", path, subject, r.Version, r.ID)
	}
	return nil
}

func schemaCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const cmd = "schema check"
	fs := newFlags("check", stderr)
	t := addRegistryTarget(fs)
	sf := addSchemaSpec(fs)
	version := fs.String("version", "latest", "the version to check against: a number or latest (the subject's level may check more)")
	asJSON := fs.Bool("json", false, "print JSON: subject, version, is_compatible, messages")
	setUsage(fs, "schema check SUBJECT FILE [flags]")
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return errors.New("schema check: SUBJECT and FILE are required")
	}
	subject, path := fs.Arg(0), fs.Arg(1)
	if *version != "latest" {
		if n, err := strconv.Atoi(*version); err != nil || n < 1 {
			return fmt.Errorf("schema check: --version %q: must be latest or a number >= 1", *version)
		}
	}
	spec, err := sf.spec(cmd, path)
	if err != nil {
		return err
	}
	c, ep, err := t.registryClient(cmd)
	if err != nil {
		return err
	}
	res, err := c.CheckCompatibility(ctx, subject, *version, spec, true)
	if err != nil {
		return schemaErr(cmd, subject, *version, ep, err)
	}
	if *asJSON {
		if res.Messages == nil {
			res.Messages = []string{}
		}
		if err := printJSON(stdout, struct {
			Subject      string   `json:"subject"`
			Version      string   `json:"version"`
			IsCompatible bool     `json:"is_compatible"`
			Messages     []string `json:"messages"`
		}{subject, *version, res.IsCompatible, res.Messages}); err != nil {
			return err
		}
	} else {
		level := ""
		if l, err := c.Config(ctx, subject); err == nil {
			level = " at level " + string(l)
		} else if l, err := c.Config(ctx, ""); err == nil {
			level = " at level " + string(l)
		}
		if res.IsCompatible {
			fmt.Fprintf(stdout, "compatible: %s against %s version %s%s; register it with: handoff schema register %s %s\n", path, subject, *version, level, subject, path)
		} else {
			fmt.Fprintf(stdout, "INCOMPATIBLE: %s against %s version %s%s (%d reason(s)):\n", path, subject, *version, level, len(res.Messages))
			for _, m := range res.Messages {
				fmt.Fprintf(stdout, "  %s\n", m)
			}
		}
	}
	if !res.IsCompatible {
		return errSchemaIncompatible
	}
	return nil
}

func schemaGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const cmd = "schema get"
	fs := newFlags("get", stderr)
	t := addRegistryTarget(fs)
	version := fs.String("version", "latest", "the version: a number or latest")
	id := fs.Int("id", 0, "instead of SUBJECT: the schema with this id")
	asJSON := fs.Bool("json", false, "print the registry's answer as JSON")
	setUsage(fs, "schema get SUBJECT [--version N|latest] | --id N [flags]")
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	byID := false
	fs.Visit(func(f *flag.Flag) { byID = byID || f.Name == "id" })
	switch {
	case byID && fs.NArg() != 0:
		return fmt.Errorf("schema get: give SUBJECT or --id, not both (got %q)", fs.Args())
	case byID && *id < 1:
		return fmt.Errorf("schema get: --id %d: must be >= 1", *id)
	case !byID && fs.NArg() != 1:
		fs.Usage()
		return errors.New("schema get: SUBJECT (or --id N) is required")
	}
	n := 0
	if *version != "latest" {
		var err error
		if n, err = strconv.Atoi(*version); err != nil || n < 1 {
			return fmt.Errorf("schema get: --version %q: must be latest or a number >= 1", *version)
		}
	}
	c, ep, err := t.registryClient(cmd)
	if err != nil {
		return err
	}
	var r registry.Registered
	subject := fs.Arg(0)
	switch {
	case byID:
		r, err = c.SchemaByID(ctx, *id)
		if errors.Is(err, registry.ErrNotFound) {
			return fmt.Errorf("schema get: no schema with id %d: `handoff schema get SUBJECT --json` shows a subject's ids (%w)", *id, err)
		}
		r.ID = *id
	case n > 0:
		r, err = c.Version(ctx, subject, n)
	default:
		r, err = c.Latest(ctx, subject)
	}
	if err != nil {
		return schemaErr(cmd, subject, *version, ep, err)
	}
	if *asJSON {
		return printJSON(stdout, r)
	}
	typ := r.SchemaType
	if typ == "" {
		typ = "AVRO"
	}
	if byID {
		fmt.Fprintf(stderr, "schema id %d, %s\n", r.ID, typ)
	} else {
		fmt.Fprintf(stderr, "%s version %d, id %d, %s\n", r.Subject, r.Version, r.ID, typ)
	}
	for _, ref := range r.References {
		fmt.Fprintf(stderr, "  references %s = %s version %d\n", ref.Name, ref.Subject, ref.Version)
	}
	text := r.Schema
	var buf bytes.Buffer
	if json.Indent(&buf, []byte(text), "", "  ") == nil {
		text = buf.String()
	}
	_, err = fmt.Fprintln(stdout, strings.TrimRight(text, "\n"))
	return err
}

func schemaList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const cmd = "schema list"
	fs := newFlags("list", stderr)
	t := addRegistryTarget(fs)
	asJSON := fs.Bool("json", false, "print a JSON array")
	setUsage(fs, "schema list [SUBJECT] [flags]")
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("schema list: takes at most one SUBJECT (got %q)", fs.Args())
	}
	c, ep, err := t.registryClient(cmd)
	if err != nil {
		return err
	}
	if subject := fs.Arg(0); subject != "" {
		vs, err := c.Versions(ctx, subject)
		if err != nil {
			return schemaErr(cmd, subject, "", ep, err)
		}
		if *asJSON {
			return printJSON(stdout, vs)
		}
		for _, v := range vs {
			fmt.Fprintln(stdout, v)
		}
		fmt.Fprintf(stderr, "%d version(s) of %s; see one with: handoff schema get %s --version N\n", len(vs), subject, subject)
		return nil
	}
	ss, err := c.Subjects(ctx)
	if err != nil {
		return schemaErr(cmd, "", "", ep, err)
	}
	if *asJSON {
		if ss == nil {
			ss = []string{}
		}
		return printJSON(stdout, ss)
	}
	for _, s := range ss {
		fmt.Fprintln(stdout, s)
	}
	if len(ss) == 0 {
		fmt.Fprintln(stderr, "no subjects; register one with: handoff schema register SUBJECT FILE")
	} else {
		fmt.Fprintf(stderr, "%d subject(s); see one with: handoff schema get SUBJECT\n", len(ss))
	}
	return nil
}
