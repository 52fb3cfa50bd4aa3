package registry

import (
	"context"
	"net/http"
	"strings"

	"github.com/handoffhq/handoff/schema"
)

// --- config and mode ---

// setting describes one kind of setting for its GET and DELETE routes.
type setting struct {
	kind   string // settingCompatibility or settingMode
	field  string // the answer's field
	notSet int    // the code when a subject has none of its own
	what   string // for messages
}

var (
	compatibilitySetting = setting{settingCompatibility, "compatibilityLevel", CodeSubjectCompatibilityNotSet, "compatibility"}
	modeSetting          = setting{settingMode, "mode", CodeSubjectModeNotSet, "mode"}
)

func (s *Server) settingDefault(k setting) string {
	if k.kind == settingMode {
		return ModeReadWrite
	}
	return string(s.defLevel)
}

func (s *Server) notSet(k setting, subject string) *Error {
	return errf(k.notSet, "Subject '%s' does not have subject-level %s configured", subject, k.what)
}

// getSetting answers the subject's own setting (with defaultToGlobal, the
// global one when it has none), or the global one.
func (s *Server) getSetting(k setting) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		subject := r.PathValue("subject")
		v, ok, err := s.store.Setting(r.Context(), k.kind, subject)
		if err != nil {
			return err
		}
		if !ok && subject != "" {
			if !queryBool(r, "defaultToGlobal") {
				return s.notSet(k, subject)
			}
			if v, ok, err = s.store.Setting(r.Context(), k.kind, ""); err != nil {
				return err
			}
		}
		if !ok {
			v = s.settingDefault(k)
		}
		return reply(w, 200, map[string]string{k.field: v})
	}
}

// deleteSetting removes a setting and answers the one it removed.
func (s *Server) deleteSetting(k setting) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		subject := r.PathValue("subject")
		v, ok, err := s.store.Setting(r.Context(), k.kind, subject)
		if err != nil {
			return err
		}
		if !ok {
			if subject != "" {
				return s.notSet(k, subject)
			}
			v = s.settingDefault(k)
		}
		if err := s.store.DeleteSetting(r.Context(), k.kind, subject); err != nil {
			return err
		}
		return reply(w, 200, map[string]string{k.field: v})
	}
}

// rulesField is handoff's own field of the config API: the rule set a
// subject's (or, globally, every subject's) compatibility checks follow.
// CONFLUENT (the default) refuses what Confluent's registry refuses and
// returns handoff's stricter findings as warnings; STRICT refuses those
// too. Confluent's clients ignore the field; it is distinct from
// Confluent's own compatibilityPolicy, which handoff does not implement.
const rulesField = "handoffCompatibilityRules"

// getConfig answers the subject's own compatibility settings (with
// defaultToGlobal, the global ones where it has none), or the global ones.
// The rule set is given as handoffCompatibilityRules where one is in force.
func (s *Server) getConfig(w http.ResponseWriter, r *http.Request) error {
	subject := r.PathValue("subject")
	all, err := s.store.Settings(r.Context(), subject)
	if err != nil {
		return err
	}
	type pair struct{ own, global string }
	vals := map[string]*pair{settingCompatibility: {}, settingRules: {}}
	for _, st := range all {
		if p := vals[st.Kind]; p != nil {
			if st.Subject == "" {
				p.global = st.Value
			} else if st.Subject == subject {
				p.own = st.Value
			}
		}
	}
	out := map[string]string{}
	withGlobal := subject == "" || queryBool(r, "defaultToGlobal")
	for kind, p := range vals {
		field, def := "compatibilityLevel", string(s.defLevel)
		if kind == settingRules {
			field, def = rulesField, string(schema.ConfluentRules)
		}
		v := p.own
		if subject == "" {
			v = p.global
		}
		if v == "" && withGlobal {
			v = p.global
			if v == "" {
				v = def
			}
		}
		if v != "" {
			out[field] = v
		}
	}
	if len(out) == 0 {
		return s.notSet(compatibilitySetting, subject)
	}
	return reply(w, 200, out)
}

// putConfig sets the compatibility level ("compatibility", as Confluent's
// API names it), handoff's rule set (handoffCompatibilityRules), or both;
// a field left out keeps its value.
func (s *Server) putConfig(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Compatibility *string `json:"compatibility"`
		Rules         *string `json:"handoffCompatibilityRules"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.Compatibility == nil && body.Rules == nil {
		return errf(CodeInvalidCompatibilityLevel, "Invalid compatibility level \"\" in field \"compatibility\". Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")
	}
	out := map[string]string{}
	var level schema.Level
	if body.Compatibility != nil {
		l, err := schema.ParseLevel(*body.Compatibility)
		if err != nil {
			return errf(CodeInvalidCompatibilityLevel, "Invalid compatibility level %q in field \"compatibility\". Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive", *body.Compatibility)
		}
		level = l
	}
	var rules schema.Rules
	if body.Rules != nil {
		rs, err := schema.ParseRules(*body.Rules)
		if err != nil || strings.TrimSpace(*body.Rules) == "" {
			return errf(CodeInvalidCompatibilityLevel, "Invalid value %q in field %q (handoff's extension of the config API). Valid values are CONFLUENT and STRICT", *body.Rules, rulesField)
		}
		rules = rs
	}
	subject := r.PathValue("subject")
	if level != "" {
		if err := s.store.PutSetting(r.Context(), settingCompatibility, subject, string(level)); err != nil {
			return err
		}
		out["compatibility"] = string(level)
	}
	if rules != "" {
		if err := s.store.PutSetting(r.Context(), settingRules, subject, string(rules)); err != nil {
			return err
		}
		out[rulesField] = string(rules)
	}
	return reply(w, 200, out)
}

// deleteConfig removes the subject's (or the global) compatibility level
// and rule set, and answers what it removed (globally: what was in force).
func (s *Server) deleteConfig(w http.ResponseWriter, r *http.Request) error {
	subject := r.PathValue("subject")
	out := map[string]string{}
	for _, k := range []struct{ kind, field, def string }{
		{settingCompatibility, "compatibilityLevel", string(s.defLevel)},
		{settingRules, rulesField, string(schema.ConfluentRules)},
	} {
		v, ok, err := s.store.Setting(r.Context(), k.kind, subject)
		if err != nil {
			return err
		}
		if !ok {
			if subject != "" {
				continue
			}
			v = k.def
		}
		out[k.field] = v
	}
	if len(out) == 0 {
		return s.notSet(compatibilitySetting, subject)
	}
	for _, kind := range []string{settingCompatibility, settingRules} {
		if err := s.store.DeleteSetting(r.Context(), kind, subject); err != nil {
			return err
		}
	}
	return reply(w, 200, out)
}

func (s *Server) putMode(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Mode string `json:"mode"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	m := strings.ToUpper(body.Mode)
	switch m {
	case ModeReadWrite, ModeReadOnly, ModeReadOnlyOverride, ModeImport:
	default:
		return errf(CodeInvalidMode, "Invalid mode %q in field \"mode\". Valid values are READWRITE, READONLY, READONLY_OVERRIDE, IMPORT", body.Mode)
	}
	subject := r.PathValue("subject")
	if m == ModeImport && !queryBool(r, "force") {
		var rows []VersionRow
		var err error
		if subject == "" {
			var subs []string
			subs, err = s.store.Subjects(r.Context(), true)
			if len(subs) > 0 {
				rows = []VersionRow{{}}
			}
		} else {
			rows, err = s.store.Versions(r.Context(), subject)
		}
		if err != nil {
			return err
		}
		if len(rows) > 0 {
			return errf(CodeOperationNotPermitted, "Cannot import since found existing subjects; use force=true to override")
		}
	}
	if err := s.store.PutSetting(r.Context(), settingMode, subject, m); err != nil {
		return err
	}
	return reply(w, 200, map[string]string{"mode": m})
}

// inForce is what governs a subject's writes: each setting its own, else
// the global one, else the default.
type inForce struct {
	level schema.Level
	mode  string
	rules schema.Rules
}

// settings returns the compatibility level, the mode and the rule set in
// force for subject.
func (s *Server) settings(ctx context.Context, subject string) (inForce, error) {
	all, err := s.store.Settings(ctx, subject)
	if err != nil {
		return inForce{}, err
	}
	f := inForce{level: s.defLevel, mode: ModeReadWrite, rules: schema.ConfluentRules}
	var levelOwn, modeOwn, rulesOwn, globalOverride bool
	for _, st := range all {
		own := st.Subject == subject && subject != ""
		switch st.Kind {
		case settingCompatibility:
			if own || !levelOwn {
				f.level, levelOwn = schema.Level(st.Value), own
			}
		case settingMode:
			if st.Subject == "" && st.Value == ModeReadOnlyOverride {
				globalOverride = true
			}
			if own || !modeOwn {
				f.mode, modeOwn = st.Value, own
			}
		case settingRules:
			if own || !rulesOwn {
				f.rules, rulesOwn = schema.Rules(st.Value), own
			}
		}
	}
	if globalOverride {
		// A global READONLY_OVERRIDE freezes every subject, whatever its own mode.
		f.mode = ModeReadOnlyOverride
	}
	return f, nil
}

func (s *Server) mode(ctx context.Context, subject string) (string, error) {
	f, err := s.settings(ctx, subject)
	return f.mode, err
}
