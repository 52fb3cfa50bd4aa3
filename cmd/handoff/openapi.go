package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/handoffhq/handoff/contract/openapi"
)

// errBreakingAPI makes the exit status 1 after the diff was printed.
var errBreakingAPI = errors.New("contract: openapi-diff: breaking changes")

// contractOpenAPIDiff compares two OpenAPI documents with oasdiff's rules:
// breaking changes are listed with their rule id and location, and fail.
func contractOpenAPIDiff(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("openapi-diff", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	warnings := fs.Bool("warnings", false, "also list warning-level changes (they do not fail)")
	setUsage(fs, "contract openapi-diff [--json] [--warnings] OLD NEW")
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return errors.New("contract openapi-diff: OLD and NEW are required")
	}
	rep, err := openAPIDiffFiles(fs.Arg(0), fs.Arg(1), *warnings)
	if err != nil {
		return err
	}
	if *asJSON {
		doc := struct {
			*openapi.Report
			Breaking bool `json:"breaking"`
		}{rep, rep.Breaking()}
		if err := printJSON(stdout, doc); err != nil {
			return err
		}
	} else {
		printOpenAPIReport(stdout, rep)
	}
	if rep.Breaking() {
		return errBreakingAPI
	}
	return nil
}

func openAPIDiffFiles(oldPath, newPath string, warnings bool) (*openapi.Report, error) {
	oldDoc, err := os.ReadFile(oldPath)
	if err != nil {
		return nil, fmt.Errorf("contract openapi-diff: %w", err)
	}
	newDoc, err := os.ReadFile(newPath)
	if err != nil {
		return nil, fmt.Errorf("contract openapi-diff: %w", err)
	}
	return openapi.Diff(oldDoc, newDoc, openapi.Options{OldName: oldPath, NewName: newPath, Warnings: warnings})
}

func printOpenAPIReport(w io.Writer, rep *openapi.Report) {
	errs, warns := rep.Count(openapi.Error), rep.Count(openapi.Warning)
	switch {
	case errs > 0:
		fmt.Fprintf(w, "%s -> %s: %d breaking change(s)", rep.Old, rep.New, errs)
	default:
		fmt.Fprintf(w, "%s -> %s: no breaking changes", rep.Old, rep.New)
	}
	if warns > 0 {
		fmt.Fprintf(w, ", %d warning(s)", warns)
	}
	fmt.Fprintln(w)
	for _, c := range rep.Changes {
		op := c.Path
		if c.Operation != "" {
			op = c.Operation + " " + c.Path
		}
		fmt.Fprintf(w, "  %-7s %s  %s: %s", c.Level, c.Rule, op, c.Text)
		if where := c.Where(); where != "" {
			fmt.Fprintf(w, "  (%s)", where)
		}
		fmt.Fprintln(w)
	}
}
