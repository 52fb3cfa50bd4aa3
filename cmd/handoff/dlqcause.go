package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/handoffhq/handoff/dlq"
)

// loadClassifier returns the built-in root-cause rules, after the user's
// from a JSON rules file (dlq.ParseRules) when path is set.
func loadClassifier(path string) (*dlq.Classifier, error) {
	if path == "" {
		return dlq.DefaultClassifier, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--rules: %w", err)
	}
	defer f.Close()
	rules, err := dlq.ParseRules(f)
	if err != nil {
		return nil, fmt.Errorf("--rules %s: %w", path, err)
	}
	c, err := dlq.NewClassifier(rules...)
	if err != nil {
		return nil, fmt.Errorf("--rules %s: %w", path, err)
	}
	return c, nil
}

// printIncidents prints letters grouped into incidents, each with its
// playbook.
func printIncidents(w io.Writer, in []dlq.Incident) {
	for i, x := range in {
		if i > 0 {
			fmt.Fprintln(w)
		}
		span := x.Last.Sub(x.First).Round(time.Second)
		fmt.Fprintf(w, "incident %d: %s  %d letter(s), %d open  first seen %s (%s), over %s  [rule: %s]\n", i+1, x.Cause, x.Count, x.Open,
			x.First.UTC().Format(time.RFC3339), ago(x.First), span, x.Rule)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  consumers\t%s\n  topics\t%s\n", strings.Join(x.Consumers, ", "), strings.Join(x.Topics, ", "))
		ids := x.Letters
		more := ""
		if len(ids) > 5 {
			ids, more = ids[:5], fmt.Sprintf(" … (%d more)", len(x.Letters)-5)
		}
		fmt.Fprintf(tw, "  letters\t%s%s\n", strings.Join(ids, ", "), more)
		tw.Flush()
		fmt.Fprintf(w, "  playbook:\n%s\n", indent(x.Playbook, "    "))
	}
}

func indent(s, pre string) string {
	return pre + strings.ReplaceAll(s, "\n", "\n"+pre)
}
