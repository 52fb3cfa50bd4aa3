package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/handoffhq/handoff/schema"
)

// --- schemas by id ---

func (s *Server) entry(ctx context.Context, id int, get func(context.Context, int) (StoredSchema, error)) (*entry, error) {
	s.mu.RLock()
	e := s.cache[id]
	s.mu.RUnlock()
	if e != nil {
		return e, nil
	}
	st, err := get(ctx, id)
	if errors.Is(err, ErrStoreNotFound) {
		return nil, errf(CodeSchemaNotFound, "Schema %d not found", id)
	}
	if err != nil {
		return nil, err
	}
	e, err = newEntry(st)
	if err != nil {
		return nil, err
	}
	return s.put(e), nil
}

func newEntry(st StoredSchema) (*entry, error) {
	body := Registered{GUID: st.GUID, Schema: st.Text, References: st.References, Metadata: st.Metadata, RuleSet: st.RuleSet}
	if st.Type != string(schema.Avro) {
		body.SchemaType = st.Type
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return &entry{stored: st, body: b}, nil
}

// put caches e unless its id is cached already, and returns the cached
// one. A read that raced a hard delete is not cached (the id is gone).
func (s *Server) put(e *entry) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.putLocked(e)
}

func (s *Server) putLocked(e *entry) *entry {
	if s.gone[e.stored.ID] {
		return e
	}
	if old := s.cache[e.stored.ID]; old != nil {
		return old
	}
	if len(s.cache) >= 100_000 {
		clear(s.cache)
	}
	s.cache[e.stored.ID] = e
	return e
}

// remember caches a schema just committed, with its parsed form.
func (s *Server) remember(st StoredSchema, p *schema.Parsed) {
	e, err := newEntry(st)
	if err != nil {
		return
	}
	s.mu.Lock()
	delete(s.gone, st.ID) // just inserted: whatever had the id before is gone
	e = s.putLocked(e)
	s.mu.Unlock()
	e.mu.Lock()
	if e.parsed == nil {
		e.parsed = p
	}
	e.mu.Unlock()
}

func (s *Server) evict(id int) {
	s.mu.Lock()
	delete(s.cache, id)
	s.gone[id] = true
	s.mu.Unlock()
}

// entryByID is the cached schema the request's {id} names.
func (s *Server) entryByID(r *http.Request) (*entry, error) {
	id, err := parseID(r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return s.entry(r.Context(), id, s.store.Schema)
}

// writeBody writes a body that is ready (pre-encoded JSON, or a raw schema).
func writeBody(w http.ResponseWriter, b []byte) error {
	w.Header().Set("Content-Type", contentType)
	_, err := w.Write(b)
	return err
}

func (s *Server) schemaByID(w http.ResponseWriter, r *http.Request) error {
	e, err := s.entryByID(r)
	if err != nil {
		return err
	}
	return writeBody(w, e.body)
}

func (s *Server) schemaByGUID(w http.ResponseWriter, r *http.Request) error {
	guid := r.PathValue("guid")
	if len(guid) > 64 || !utf8.ValidString(guid) || strings.IndexFunc(guid, unicode.IsControl) >= 0 {
		return errf(CodeSchemaNotFound, "Schema %q not found", guid)
	}
	st, err := s.store.SchemaByGUID(r.Context(), guid)
	if errors.Is(err, ErrStoreNotFound) {
		return errf(CodeSchemaNotFound, "Schema %s not found", guid)
	}
	if err != nil {
		return err
	}
	e, err := s.entry(r.Context(), st.ID, s.store.Schema)
	if err != nil {
		return err
	}
	return writeBody(w, e.body)
}

// latestWithMetadata answers the latest version whose metadata properties
// hold every key=value pair of the query (key and value repeat, paired in
// order).
func (s *Server) latestWithMetadata(w http.ResponseWriter, r *http.Request) error {
	subject := r.PathValue("subject")
	q := r.URL.Query()
	keys, values := q["key"], q["value"]
	if len(keys) != len(values) {
		return errf(CodeInvalidSchema, "Query parameters key and value must come in pairs: %d keys, %d values", len(keys), len(values))
	}
	rows, err := s.visibleVersions(r.Context(), subject, queryBool(r, "deleted"))
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return subjectNotFound(subject)
	}
	for i := len(rows) - 1; i >= 0; i-- {
		e, err := s.entry(r.Context(), rows[i].SchemaID, s.store.Schema)
		if err != nil {
			return err
		}
		var md struct {
			Properties map[string]string `json:"properties"`
		}
		if len(e.stored.Metadata) > 0 {
			json.Unmarshal(e.stored.Metadata, &md)
		}
		match := true
		for j, k := range keys {
			if v, ok := md.Properties[k]; !ok || v != values[j] {
				match = false
				break
			}
		}
		if match {
			reg, err := s.registered(r.Context(), rows[i])
			if err != nil {
				return err
			}
			return reply(w, 200, reg)
		}
	}
	return errf(CodeSchemaNotFound, "Schema with the given metadata not found in subject '%s'", subject)
}

func (s *Server) rawSchemaByID(w http.ResponseWriter, r *http.Request) error {
	e, err := s.entryByID(r)
	if err != nil {
		return err
	}
	return writeBody(w, []byte(e.stored.Text))
}

func (s *Server) liveSchemaVersions(r *http.Request) ([]VersionRow, error) {
	e, err := s.entryByID(r)
	if err != nil {
		return nil, err
	}
	rows, err := s.store.SchemaVersions(r.Context(), e.stored.ID)
	if err != nil {
		return nil, err
	}
	return visible(rows, queryBool(r, "deleted")), nil
}

func (s *Server) subjectsOfID(w http.ResponseWriter, r *http.Request) error {
	rows, err := s.liveSchemaVersions(r)
	if err != nil {
		return err
	}
	subs := []string{}
	for _, v := range rows {
		if len(subs) == 0 || subs[len(subs)-1] != v.Subject {
			subs = append(subs, v.Subject)
		}
	}
	return reply(w, 200, subs)
}

type subjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

func (s *Server) versionsOfID(w http.ResponseWriter, r *http.Request) error {
	rows, err := s.liveSchemaVersions(r)
	if err != nil {
		return err
	}
	out := []subjectVersion{}
	for _, v := range rows {
		out = append(out, subjectVersion{v.Subject, v.Version})
	}
	return reply(w, 200, out)
}

func (s *Server) listSchemas(w http.ResponseWriter, r *http.Request) error {
	prefix := r.URL.Query().Get("subjectPrefix")
	deleted, latestOnly := queryBool(r, "deleted"), queryBool(r, "latestOnly")
	subs, err := s.store.Subjects(r.Context(), deleted)
	if err != nil {
		return err
	}
	out := []Registered{}
	for _, sub := range subs {
		if !strings.HasPrefix(sub, prefix) {
			continue
		}
		rows, err := s.visibleVersions(r.Context(), sub, deleted)
		if err != nil {
			return err
		}
		if latestOnly && len(rows) > 0 {
			rows = rows[len(rows)-1:]
		}
		for _, v := range rows {
			reg, err := s.registered(r.Context(), v)
			if err != nil {
				return err
			}
			out = append(out, reg)
		}
	}
	return reply(w, 200, out)
}
