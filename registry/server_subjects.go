package registry

import (
	"context"
	"net/http"
	"sort"
	"strings"

	"github.com/handoffhq/handoff/schema"
)

// --- subjects and versions ---

func (s *Server) visibleVersions(ctx context.Context, subject string, deleted bool) ([]VersionRow, error) {
	rows, err := s.store.Versions(ctx, subject)
	if err != nil {
		return nil, err
	}
	return visible(rows, deleted), nil
}

// visible is rows without the soft-deleted ones, unless deleted (in place).
func visible(rows []VersionRow, deleted bool) []VersionRow {
	out := rows[:0]
	for _, v := range rows {
		if deleted || !v.Deleted {
			out = append(out, v)
		}
	}
	return out
}

func (s *Server) listSubjects(w http.ResponseWriter, r *http.Request) error {
	subs, err := s.store.Subjects(r.Context(), queryBool(r, "deleted"))
	if err != nil {
		return err
	}
	prefix := r.URL.Query().Get("subjectPrefix")
	out := []string{}
	for _, sub := range subs {
		if strings.HasPrefix(sub, prefix) {
			out = append(out, sub)
		}
	}
	return reply(w, 200, out)
}

func subjectNotFound(subject string) *Error {
	return errf(CodeSubjectNotFound, "Subject '%s' not found.", subject)
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request) error {
	subject := r.PathValue("subject")
	rows, err := s.visibleVersions(r.Context(), subject, queryBool(r, "deleted"))
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return subjectNotFound(subject)
	}
	out := make([]int, len(rows))
	for i, v := range rows {
		out[i] = v.Version
	}
	return reply(w, 200, out)
}

// findVersion resolves a subject's version path segment among rows.
func findVersion(subject string, rows []VersionRow, seg string, deleted bool) (VersionRow, error) {
	ver, err := parseVersion(seg)
	if err != nil {
		return VersionRow{}, err
	}
	if len(rows) == 0 {
		return VersionRow{}, subjectNotFound(subject)
	}
	live := false
	for _, v := range rows {
		live = live || !v.Deleted
	}
	if !live && !deleted {
		return VersionRow{}, subjectNotFound(subject)
	}
	for i := len(rows) - 1; i >= 0; i-- {
		v := rows[i]
		if v.Deleted && !deleted {
			continue
		}
		if ver == -1 || v.Version == ver {
			return v, nil
		}
	}
	return VersionRow{}, errf(CodeVersionNotFound, "Version %s not found.", seg)
}

func (s *Server) versionOf(r *http.Request) (VersionRow, error) {
	subject := r.PathValue("subject")
	rows, err := s.store.Versions(r.Context(), subject)
	if err != nil {
		return VersionRow{}, err
	}
	return findVersion(subject, rows, r.PathValue("version"), queryBool(r, "deleted"))
}

func (s *Server) registered(ctx context.Context, v VersionRow) (Registered, error) {
	e, err := s.entry(ctx, v.SchemaID, s.store.Schema)
	if err != nil {
		return Registered{}, err
	}
	reg := Registered{Subject: v.Subject, Version: v.Version, ID: v.SchemaID, GUID: e.stored.GUID, Schema: e.stored.Text,
		References: e.stored.References, Metadata: e.stored.Metadata, RuleSet: e.stored.RuleSet}
	if e.stored.Type != string(schema.Avro) {
		reg.SchemaType = e.stored.Type
	}
	return reg, nil
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) error {
	v, err := s.versionOf(r)
	if err != nil {
		return err
	}
	reg, err := s.registered(r.Context(), v)
	if err != nil {
		return err
	}
	return reply(w, 200, reg)
}

func (s *Server) getRawVersion(w http.ResponseWriter, r *http.Request) error {
	v, err := s.versionOf(r)
	if err != nil {
		return err
	}
	e, err := s.entry(r.Context(), v.SchemaID, s.store.Schema)
	if err != nil {
		return err
	}
	return writeBody(w, []byte(e.stored.Text))
}

func (s *Server) referencedBy(w http.ResponseWriter, r *http.Request) error {
	v, err := s.versionOf(r)
	if err != nil {
		return err
	}
	ids, err := s.store.ReferencedBy(r.Context(), v.Subject, v.Version)
	if err != nil {
		return err
	}
	if ids == nil {
		ids = []int{}
	}
	return reply(w, 200, ids)
}

// --- deleting ---

func (s *Server) writable(ctx context.Context, subject string) error {
	mode, err := s.mode(ctx, subject)
	if err != nil {
		return err
	}
	if mode == ModeReadOnly || mode == ModeReadOnlyOverride {
		return errf(CodeOperationNotPermitted, "Subject %s is in read-only mode", subject)
	}
	return nil
}

func referenceExists(subject string, version int, ids []int) *Error {
	return errf(CodeReferenceExists, "One or more references exist to the schema {subject=%s,version=%d}: schemas %v use it; delete them first", subject, version, ids)
}

func (s *Server) deleteSubject(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	subject := r.PathValue("subject")
	permanent := queryBool(r, "permanent")
	if err := s.writable(ctx, subject); err != nil {
		return err
	}
	var deleted []int
	var orphans []int
	err := s.store.Update(ctx, []string{subject}, func(tx StoreTx) error {
		deleted, orphans = nil, nil
		rows, err := tx.Versions(ctx, subject)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return subjectNotFound(subject)
		}
		live := false
		for _, v := range rows {
			live = live || !v.Deleted
		}
		if !permanent && !live {
			return errf(CodeSubjectSoftDeleted, "Subject '%s' was soft deleted. Set permanent=true to delete permanently", subject)
		}
		if permanent && live {
			return errf(CodeSubjectNotSoftDeleted, "Subject '%s' was not deleted first before being permanently deleted", subject)
		}
		for _, v := range rows {
			ids, err := tx.ReferencedBy(ctx, subject, v.Version)
			if err != nil {
				return err
			}
			if len(ids) > 0 {
				return referenceExists(subject, v.Version, ids)
			}
		}
		for _, v := range rows {
			if permanent {
				o, err := tx.HardDelete(ctx, subject, v.Version)
				if err != nil {
					return err
				}
				if o != 0 {
					orphans = append(orphans, o)
				}
			} else if err := tx.SoftDelete(ctx, subject, v.Version); err != nil {
				return err
			}
			deleted = append(deleted, v.Version)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range orphans {
		s.evict(id)
	}
	if permanent {
		for _, kind := range []string{settingCompatibility, settingMode} {
			if err := s.store.DeleteSetting(ctx, kind, subject); err != nil {
				return err
			}
		}
	}
	sort.Ints(deleted)
	return reply(w, 200, deleted)
}

func (s *Server) deleteVersion(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	subject := r.PathValue("subject")
	permanent := queryBool(r, "permanent")
	if err := s.writable(ctx, subject); err != nil {
		return err
	}
	var version, orphan int
	err := s.store.Update(ctx, []string{subject}, func(tx StoreTx) error {
		rows, err := tx.Versions(ctx, subject)
		if err != nil {
			return err
		}
		// A number names a version even when soft-deleted (to delete it
		// for good, or to say it was); "latest" is the latest live one.
		seg := r.PathValue("version")
		v, err := findVersion(subject, rows, seg, seg != "latest" && seg != "-1")
		if err != nil {
			return err
		}
		version = v.Version
		if !permanent && v.Deleted {
			return errf(CodeSchemaVersionSoftDeleted, "Subject '%s' Version %d was soft deleted. Set permanent=true to delete permanently", subject, v.Version)
		}
		if permanent && !v.Deleted {
			return errf(CodeSchemaVersionNotSoftDeleted, "Subject '%s' Version %d was not deleted first before being permanently deleted", subject, v.Version)
		}
		ids, err := tx.ReferencedBy(ctx, subject, v.Version)
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			return referenceExists(subject, v.Version, ids)
		}
		if permanent {
			orphan, err = tx.HardDelete(ctx, subject, v.Version)
			return err
		}
		return tx.SoftDelete(ctx, subject, v.Version)
	})
	if err != nil {
		return err
	}
	if orphan != 0 {
		s.evict(orphan)
	}
	return reply(w, 200, version)
}
