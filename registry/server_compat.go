package registry

import (
	"context"
	"net/http"
	"strings"

	"github.com/handoffhq/handoff/schema"
)

// --- compatibility ---

func (s *Server) checkCompatibility(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	subject := r.PathValue("subject")
	rows, err := s.visibleVersions(ctx, subject, false)
	if err != nil {
		return err
	}
	f, err := s.settings(ctx, subject)
	if err != nil {
		return err
	}
	level := f.level
	// "latest" of a brand-new subject: nothing to be incompatible with, as
	// Confluent answers (a CI check of a new subject must pass).
	if seg := r.PathValue("version"); seg != "" && !(len(rows) == 0 && (seg == "latest" || seg == "-1")) {
		v, err := findVersion(subject, rows, seg, false)
		if err != nil {
			return err
		}
		rows = []VersionRow{v}
		level = schema.Level(strings.TrimSuffix(string(level), "_TRANSITIVE"))
	}
	c, err := s.candidate(ctx, r)
	if err != nil {
		return err
	}
	if err := s.parse(ctx, c); err != nil {
		return err
	}
	res, err := s.checkAgainst(ctx, s.store, level, f.rules, c, rows)
	if err != nil {
		return err
	}
	out := CompatibilityResult{IsCompatible: res.Compatible()}
	if queryBool(r, "verbose") {
		// The violations, then what the subject's rule set only warns
		// about (handoff's stricter findings under Confluent's rules).
		out.Messages = append(describe(res.Violations), describeWarnings(res.Warnings)...)
	}
	return reply(w, 200, out)
}

// checkAgainst runs the compatibility check of c against rows (live
// versions, oldest first) at level, under rules.
func (s *Server) checkAgainst(ctx context.Context, rd reader,
	level schema.Level, rules schema.Rules, c *candidate, rows []VersionRow) (schema.Result, error) {
	earlier := make([]schema.Version, 0, len(rows))
	if !level.Transitive() && len(rows) > 1 {
		rows = rows[len(rows)-1:]
	}
	for _, v := range rows {
		e, err := s.entry(ctx, v.SchemaID, rd.Schema)
		if err != nil {
			return schema.Result{}, err
		}
		p, err := s.parsedOf(ctx, rd, e)
		if err != nil {
			return schema.Result{}, err
		}
		earlier = append(earlier, schema.Version{Version: v.Version, Schema: p})
	}
	return schema.Check(level, c.parsed, earlier).Under(rules), nil
}

func describe(vs []schema.Violation) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.String()
	}
	return out
}

// describeWarnings renders the findings the subject's rule set does not
// refuse, for the verbose answer of a compatibility check.
func describeWarnings(vs []schema.Violation) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = "warning: " + v.String() + " (Confluent's registry accepts this change; " + rulesField + " STRICT refuses it)"
	}
	return out
}
