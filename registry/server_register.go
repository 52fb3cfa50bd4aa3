package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/handoffhq/handoff/schema"
)

// --- registering: register and look up ---

func (s *Server) register(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	subject := r.PathValue("subject")
	f, err := s.settings(ctx, subject)
	if err != nil {
		return err
	}
	level, mode := f.level, f.mode
	if mode == ModeReadOnly || mode == ModeReadOnlyOverride {
		return errf(CodeOperationNotPermitted, "Subject %s is in read-only mode", subject)
	}
	c, err := s.candidate(ctx, r)
	if err != nil {
		return err
	}
	if c.req.ID < 0 || c.req.Version < 0 {
		return errf(CodeInvalidSchema, "Invalid schema: fields \"id\" and \"version\" must not be negative")
	}
	// Registered already (producers auto-register on every start): answer
	// without parsing or a write transaction. Registering is idempotent, so
	// reading outside the transaction is enough.
	if mode != ModeImport {
		rows, err := s.visibleVersions(ctx, subject, false)
		if err != nil {
			return err
		}
		find := func() (VersionRow, bool, error) {
			for i := len(rows) - 1; i >= 0; i-- {
				e, err := s.entry(ctx, rows[i].SchemaID, s.store.Schema)
				if err != nil {
					return VersionRow{}, false, err
				}
				if e.stored.Hash == c.hash {
					return rows[i], true, nil
				}
			}
			return VersionRow{}, false, nil
		}
		v, ok, err := find()
		if err != nil {
			return err
		}
		if !ok && len(rows) > 0 {
			inherited, err := s.inheritFrom(ctx, rows[len(rows)-1], c)
			if err != nil {
				return err
			}
			if inherited {
				if v, ok, err = find(); err != nil {
					return err
				}
			}
		}
		if ok {
			return reply(w, 200, registration(subject, v.Version, v.SchemaID, c))
		}
	}
	if err := s.parse(ctx, c); err != nil {
		return err
	}
	locks := []string{subject}
	for _, ref := range c.req.References {
		locks = append(locks, ref.Subject)
	}
	var (
		id, version int
		inserted    bool
		fresh       StoredSchema
	)
	err = s.store.Update(ctx, locks, func(tx StoreTx) error {
		fresh = StoredSchema{}
		// The referenced versions were resolved before the transaction;
		// their subjects are locked now, so check they are still there.
		for _, ref := range c.req.References {
			rows, err := tx.Versions(ctx, ref.Subject)
			if err != nil {
				return err
			}
			if _, err := findVersion(ref.Subject, rows, strconv.Itoa(ref.Version), false); err != nil {
				return errf(CodeInvalidSchema, "Invalid schema: reference %q: subject %q version %d was deleted meanwhile", ref.Name, ref.Subject, ref.Version)
			}
		}
		rows, err := tx.Versions(ctx, subject)
		if err != nil {
			return err
		}
		live := rows[:0:0]
		next := 1
		for _, v := range rows {
			if v.Version >= next {
				next = v.Version + 1
			}
			if v.Deleted {
				continue
			}
			live = append(live, v)
			e, err := s.entry(ctx, v.SchemaID, tx.Schema)
			if err != nil {
				return err
			}
			if e.stored.Hash == c.hash {
				id, version = v.SchemaID, v.Version // registered already: same id, no new version
				return nil
			}
		}
		if mode == ModeImport {
			if c.req.Version > 0 {
				for _, v := range rows {
					if v.Version == c.req.Version {
						return errf(CodeOperationNotPermitted, "Version %d of subject %s exists already; import may not overwrite it", v.Version, subject)
					}
				}
				next = c.req.Version
			}
			if c.req.ID > 0 {
				if e, err := s.entry(ctx, c.req.ID, tx.Schema); err == nil && e.stored.Hash != c.hash {
					return errf(CodeOperationNotPermitted, "Overwrite new schema with id %d is not permitted.", c.req.ID)
				}
			}
		} else {
			res, err := s.checkAgainst(ctx, tx, level, f.rules, c, live)
			if err != nil {
				return err
			}
			if !res.Compatible() {
				in := string(level)
				if f.rules == schema.StrictRules {
					in += ", " + rulesField + " STRICT"
				}
				return &Error{Code: CodeIncompatibleSchema, Message: fmt.Sprintf(
					"Schema being registered is incompatible with an earlier schema for subject %q (%s), details: [%s]",
					subject, in, strings.Join(describe(res.Violations), "; "))}
			}
		}
		st := StoredSchema{Hash: c.hash, GUID: guidOf(c.hash), Type: string(c.typ), Text: c.req.Schema, References: c.req.References,
			Metadata: c.req.Metadata, RuleSet: c.req.RuleSet}
		if mode == ModeImport {
			st.ID = c.req.ID
		}
		id, inserted, err = tx.InsertSchema(ctx, st)
		if err != nil {
			return err
		}
		if mode == ModeImport && c.req.ID > 0 && id != c.req.ID {
			return errf(CodeOperationNotPermitted, "Schema already registered with id %d instead of input id %d", id, c.req.ID)
		}
		if inserted {
			st.ID = id
			fresh = st
		}
		version = next
		return tx.InsertVersion(ctx, subject, next, id)
	})
	if err != nil {
		return err
	}
	if fresh.ID != 0 {
		// Committed: cache the new schema with its parsed form, so the
		// next registration of the subject does not parse it again.
		s.remember(fresh, c.parsed)
	}
	return reply(w, 200, registration(subject, version, id, c))
}

// inheritFrom gives a candidate without metadata and rule set those of
// the subject's latest live version, as Confluent's registry does (so a
// serializer auto-registering the bare schema does not drop a data
// contract's metadata and rules). It reports whether it changed the
// candidate.
func (s *Server) inheritFrom(ctx context.Context, latest VersionRow, c *candidate) (bool, error) {
	if len(c.req.Metadata) > 0 || len(c.req.RuleSet) > 0 {
		return false, nil
	}
	e, err := s.entry(ctx, latest.SchemaID, s.store.Schema)
	if err != nil {
		return false, err
	}
	if len(e.stored.Metadata) == 0 && len(e.stored.RuleSet) == 0 {
		return false, nil
	}
	c.req.Metadata, c.req.RuleSet = e.stored.Metadata, e.stored.RuleSet
	c.rehash()
	return true, nil
}

// registration is the answer to a registration. Older clients read only
// the id; Confluent Platform 8's also read the GUID and the rest.
func registration(subject string, version, id int, c *candidate) Registered {
	out := Registered{Subject: subject, Version: version, ID: id, GUID: guidOf(c.hash), Schema: c.req.Schema,
		References: c.req.References, Metadata: c.req.Metadata, RuleSet: c.req.RuleSet}
	if c.typ != schema.Avro {
		out.SchemaType = string(c.typ)
	}
	return out
}

// maxSubjectBytes bounds a subject's length (the stores' column width).
const maxSubjectBytes = 255

// validSubject checks a subject as every route (and every reference) takes
// it: valid UTF-8 without control characters (as Confluent's registry
// requires), 1 to 255 bytes, and not one of Confluent's reserved names.
func validSubject(subject string) *Error {
	bad := func(rule string) *Error {
		return errf(CodeInvalidSubject, "Invalid subject %q: %s", subject, rule)
	}
	switch {
	case subject == "":
		return bad("must not be empty")
	case len(subject) > maxSubjectBytes:
		return errf(CodeInvalidSubject, "Invalid subject of %d bytes: must be at most %d bytes", len(subject), maxSubjectBytes)
	case !utf8.ValidString(subject):
		return bad("must be valid UTF-8")
	case strings.IndexFunc(subject, unicode.IsControl) >= 0:
		return bad("must not contain control characters")
	case subject == "__GLOBAL" || subject == "__EMPTY":
		return bad("is reserved")
	}
	return nil
}

// validMetadata checks the shape of a request's metadata, as Confluent's
// registry reads it: an object whose "properties" map names to strings,
// "tags" names to arrays of strings, and "sensitive" is an array of
// strings. Other members are kept as given.
func validMetadata(raw json.RawMessage) *Error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var md map[string]json.RawMessage
	if json.Unmarshal(raw, &md) != nil {
		return errf(CodeInvalidSchema, "Invalid metadata: field \"metadata\" must be an object")
	}
	shapes := []struct {
		field string
		v     any
		want  string
	}{
		{"properties", new(map[string]string), "an object of strings"},
		{"tags", new(map[string][]string), "an object of arrays of strings"},
		{"sensitive", new([]string), "an array of strings"},
	}
	for _, sh := range shapes {
		if v, ok := md[sh.field]; ok && string(v) != "null" && json.Unmarshal(v, sh.v) != nil {
			return errf(CodeInvalidSchema, "Invalid metadata: field \"metadata.%s\" must be %s", sh.field, sh.want)
		}
	}
	return nil
}

// validRuleSet checks the shape of a request's ruleSet: an object whose
// "migrationRules", "domainRules" and "encodingRules" are arrays of rules,
// each an object with a non-empty string "name".
func validRuleSet(raw json.RawMessage) *Error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var rs map[string]json.RawMessage
	if json.Unmarshal(raw, &rs) != nil {
		return errf(CodeInvalidSchema, "Invalid ruleSet: field \"ruleSet\" must be an object")
	}
	for _, field := range []string{"migrationRules", "domainRules", "encodingRules"} {
		v, ok := rs[field]
		if !ok || string(v) == "null" {
			continue
		}
		var rules []map[string]json.RawMessage
		if json.Unmarshal(v, &rules) != nil {
			return errf(CodeInvalidSchema, "Invalid ruleSet: field \"ruleSet.%s\" must be an array of rule objects", field)
		}
		for i, r := range rules {
			var name string
			if json.Unmarshal(r["name"], &name) != nil || name == "" {
				return errf(CodeInvalidSchema, "Invalid ruleSet: field \"ruleSet.%s[%d].name\" must be a non-empty string", field, i)
			}
		}
	}
	return nil
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	subject := r.PathValue("subject")
	rows, err := s.visibleVersions(ctx, subject, queryBool(r, "deleted"))
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return subjectNotFound(subject)
	}
	c, err := s.candidate(ctx, r)
	if err != nil {
		return err
	}
	bare := c.hash
	for i := len(rows) - 1; i >= 0; i-- {
		if !rows[i].Deleted {
			if _, err := s.inheritFrom(ctx, rows[i], c); err != nil {
				return err
			}
			break
		}
	}
	for i := len(rows) - 1; i >= 0; i-- {
		e, err := s.entry(ctx, rows[i].SchemaID, s.store.Schema)
		if err != nil {
			return err
		}
		if e.stored.Hash == c.hash || e.stored.Hash == bare {
			reg, err := s.registered(ctx, rows[i])
			if err != nil {
				return err
			}
			return reply(w, 200, reg)
		}
	}
	// Not there: an invalid schema says so rather than "not found".
	if err := s.parse(ctx, c); err != nil {
		return err
	}
	return errf(CodeSchemaNotFound, "Schema not found")
}
