package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/handoffhq/handoff/internal/httpguard"
	"github.com/handoffhq/handoff/schema"
)

// Modes, as in Confluent's registry.
const (
	ModeReadWrite        = "READWRITE"
	ModeReadOnly         = "READONLY"
	ModeReadOnlyOverride = "READONLY_OVERRIDE"
	ModeImport           = "IMPORT"
)

const contentType = "application/vnd.schemaregistry.v1+json"

// Server is the registry's HTTP server: Confluent's REST API over a Store.
// It is an http.Handler.
type Server struct {
	store     Store
	tokens    httpguard.Tokens
	openReads bool
	routeNeed map[string]httpguard.Scope // scope each route pattern needs
	defLevel  schema.Level
	draft     schema.Draft // JSON Schema draft of a text without $schema
	maxBody   int64
	limits    schema.Limits
	log       *slog.Logger
	mux       *http.ServeMux

	// Parse slots: admit holds every parse running or waiting, run every
	// parse running. A parse finds admit full: 429.
	admit, run chan struct{}
	parses     atomic.Int64 // parses started, for tests
	hooks      parseHooks

	mu    sync.RWMutex
	cache map[int]*entry // immutable schemas by id
	gone  map[int]bool   // ids hard-deleted here: never cached again from a read
}

// entry is a cached schema: its row, the body of GET /schemas/ids/{id}, and
// its parsed form once needed.
type entry struct {
	stored StoredSchema
	body   []byte

	mu     sync.Mutex
	parsed *schema.Parsed
}

// ServerOption configures a Server.
type ServerOption func(*Server) error

// WithRequiredToken makes every route need the token (reads too unless
// WithOpenReads), as "Authorization: Bearer <token>" or as the password of
// HTTP basic auth (what Confluent clients send with basic.auth.user.info).
// It is an admin token: WithScopedToken("admin", token).
func WithRequiredToken(token string) ServerOption {
	return func(s *Server) error {
		if err := s.tokens.Add(httpguard.ScopeAdmin, token); err != nil {
			return fmt.Errorf("registry: WithRequiredToken: %w", err)
		}
		return nil
	}
}

// WithScopedToken adds a token with a scope, "read", "write" or "admin";
// it may be given many times, a token once. Once the server has a token,
// every route needs one of at least the route's scope (reads none with
// WithOpenReads):
//
//   - read: every GET, look-ups (POST /subjects/{s}) and compatibility
//     checks (POST /compatibility/...);
//   - write: registering (POST /subjects/{s}/versions), and what read may;
//   - admin: deleting subjects and versions, PUT and DELETE of /config and
//     /mode (global or a subject's), and what write may.
//
// A request without a token of the set is answered 401 (40101); one whose
// token's scope is too low 403 (40301), the message naming the scope
// needed. Only tokens' SHA-256 sums are kept, compared in constant time.
func WithScopedToken(scope, token string) ServerOption {
	return func(s *Server) error {
		sc, err := httpguard.ParseScope(scope)
		if err != nil {
			return fmt.Errorf("registry: WithScopedToken: %w", err)
		}
		if err := s.tokens.Add(sc, token); err != nil {
			return fmt.Errorf("registry: WithScopedToken: %w", err)
		}
		return nil
	}
}

// WithOpenReads lets reads (GET, look-ups and compatibility checks: the
// routes of the read scope) through without a token.
func WithOpenReads(open bool) ServerOption {
	return func(s *Server) error { s.openReads = open; return nil }
}

// WithDefaultCompatibility sets the global level used until one is PUT to
// /config. The default is BACKWARD, as in Confluent's registry.
func WithDefaultCompatibility(l schema.Level) ServerOption {
	return func(s *Server) error {
		if _, err := schema.ParseLevel(string(l)); err != nil {
			return fmt.Errorf("registry: WithDefaultCompatibility: %w", err)
		}
		s.defLevel = l
		return nil
	}
}

// WithDefaultJSONDraft sets the draft a JSON Schema without $schema is
// read as (registered, looked up, checked, and referenced): draft-07 by
// default, as Confluent's registry reads it. A $schema in the text always
// wins. Changing it changes how stored schemas without $schema are read.
func WithDefaultJSONDraft(d schema.Draft) ServerOption {
	return func(s *Server) error {
		pd, err := schema.ParseDraft(string(d))
		if err != nil {
			return fmt.Errorf("registry: WithDefaultJSONDraft: %w", err)
		}
		s.draft = pd
		return nil
	}
}

// WithLogger sets the logger for store failures.
func WithLogger(l *slog.Logger) ServerOption {
	return func(s *Server) error {
		if l == nil {
			return errors.New("registry: WithLogger: logger must not be nil")
		}
		s.log = l
		return nil
	}
}

// WithMaxBodyBytes bounds request bodies (default 8 MiB).
func WithMaxBodyBytes(n int64) ServerOption {
	return func(s *Server) error {
		if n <= 0 {
			return errors.New("registry: WithMaxBodyBytes: must be positive")
		}
		s.maxBody = n
		return nil
	}
}

// WithLimits sets the work budget of every schema the server parses for a
// request (registered, looked up, checked, with its references): nesting
// depth, members/fields and references, as schema.Limits says. A zero field
// keeps its default (schema.DefaultLimits). A schema over a limit is refused
// with 42201 naming the limit and its value. Schemas the registry holds
// already are read without limits, so lowering a limit never makes a
// stored schema unreadable.
func WithLimits(l schema.Limits) ServerOption {
	return func(s *Server) error { s.limits = l; return nil }
}

// WithMaxParses bounds the schemas parsed at once (default: the number of
// CPUs, at least 2) and the requests waiting for a parse slot (default: 32
// per slot, so a burst of producers registering at start-up waits rather
// than fails). A request that finds every slot running and every waiting
// place taken is answered 429 with Retry-After, and a request whose client
// goes away while it waits gives its place up without parsing.
func WithMaxParses(running, waiting int) ServerOption {
	return func(s *Server) error {
		if running <= 0 || waiting < 0 {
			return errors.New("registry: WithMaxParses: running must be positive and waiting not negative")
		}
		s.admit, s.run = make(chan struct{}, running+waiting), make(chan struct{}, running)
		return nil
	}
}

// NewServer returns a server over store. The store's tables must exist
// (the adapters' Migrate creates them).
func NewServer(store Store, opts ...ServerOption) (*Server, error) {
	if store == nil {
		return nil, errors.New("registry: NewServer: store must not be nil")
	}
	s := &Server{store: store, defLevel: schema.Backward, draft: schema.Draft7, maxBody: 8 << 20, log: slog.Default(), cache: map[int]*entry{}, gone: map[int]bool{}}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	if s.run == nil {
		n := max(runtime.NumCPU(), 2)
		s.admit, s.run = make(chan struct{}, 33*n), make(chan struct{}, n)
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	m := http.NewServeMux()
	// The route table: each route with the token scope it needs.
	s.routeNeed = map[string]httpguard.Scope{}
	route := func(need httpguard.Scope) func(string, func(http.ResponseWriter, *http.Request) error) {
		return func(pattern string, h func(http.ResponseWriter, *http.Request) error) {
			s.routeNeed[pattern] = need
			m.HandleFunc(pattern, s.handle(need, h))
		}
	}
	read, write, admin := route(httpguard.ScopeRead), route(httpguard.ScopeWrite), route(httpguard.ScopeAdmin)
	read("GET /{$}", func(w http.ResponseWriter, r *http.Request) error { return reply(w, 200, struct{}{}) })
	read("GET /contexts", func(w http.ResponseWriter, r *http.Request) error { return reply(w, 200, []string{"."}) })
	read("GET /schemas/types", func(w http.ResponseWriter, r *http.Request) error {
		return reply(w, 200, []string{"JSON", "PROTOBUF", "AVRO"})
	})
	read("GET /schemas", s.listSchemas)
	read("GET /schemas/ids/{id}", s.schemaByID)
	read("GET /schemas/ids/{id}/schema", s.rawSchemaByID)
	read("GET /schemas/ids/{id}/subjects", s.subjectsOfID)
	read("GET /schemas/ids/{id}/versions", s.versionsOfID)
	read("GET /schemas/guids/{guid}", s.schemaByGUID)
	read("GET /subjects/{subject}/metadata", s.latestWithMetadata)
	read("GET /subjects", s.listSubjects)
	read("GET /subjects/{subject}/versions", s.listVersions)
	read("GET /subjects/{subject}/versions/{version}", s.getVersion)
	read("GET /subjects/{subject}/versions/{version}/schema", s.getRawVersion)
	read("GET /subjects/{subject}/versions/{version}/referencedby", s.referencedBy)
	read("POST /subjects/{subject}", s.lookup)
	write("POST /subjects/{subject}/versions", s.register)
	admin("DELETE /subjects/{subject}", s.deleteSubject)
	admin("DELETE /subjects/{subject}/versions/{version}", s.deleteVersion)
	read("POST /compatibility/subjects/{subject}/versions/{version}", s.checkCompatibility)
	read("POST /compatibility/subjects/{subject}/versions", s.checkCompatibility)
	read("GET /config", s.getConfig)
	admin("PUT /config", s.putConfig)
	admin("DELETE /config", s.deleteConfig)
	read("GET /config/{subject}", s.getConfig)
	admin("PUT /config/{subject}", s.putConfig)
	admin("DELETE /config/{subject}", s.deleteConfig)
	read("GET /mode", s.getSetting(modeSetting))
	admin("PUT /mode", s.putMode)
	admin("DELETE /mode", s.deleteSetting(modeSetting))
	read("GET /mode/{subject}", s.getSetting(modeSetting))
	admin("PUT /mode/{subject}", s.putMode)
	admin("DELETE /mode/{subject}", s.deleteSetting(modeSetting))
	m.HandleFunc("/", s.notFound)
	s.mux = m
}

// ServeHTTP serves the registry's REST API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// notFound answers paths no route has, in the registry's error shape: 405
// for a known path with another method, else 404.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, p := s.mux.Handler(probe); p != "/" && p != "" {
			writeErr(w, &Error{Code: 405, Message: "HTTP " + r.Method + " not allowed on " + r.URL.Path})
			return
		}
	}
	writeErr(w, &Error{Code: 404, Message: "HTTP 404 Not Found"})
}

func (s *Server) handle(need httpguard.Scope, h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.tokens.Len() > 0 && !(need == httpguard.ScopeRead && s.openReads) {
			switch st, msg := s.tokens.Refusal(r, need); st {
			case http.StatusUnauthorized:
				w.Header().Set("WWW-Authenticate", `Bearer realm="handoff registry"`)
				writeErr(w, &Error{Code: CodeUnauthorized, Message: "Unauthorized: " + msg})
				return
			case http.StatusForbidden:
				writeErr(w, &Error{Code: CodeForbidden, Message: "Forbidden: " + msg})
				return
			}
		}
		if strings.Contains(r.Pattern, "{subject}") {
			if err := validSubject(r.PathValue("subject")); err != nil {
				writeErr(w, err)
				return
			}
		}
		if r.Method != http.MethodGet && r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		}
		if err := h(w, r); err != nil {
			var re *Error
			if !errors.As(err, &re) {
				if errors.Is(err, context.Canceled) {
					return
				}
				if errors.Is(err, context.DeadlineExceeded) {
					writeErr(w, &Error{Code: CodeOperationTimeout, Message: "Operation timed out"})
					return
				}
				s.log.Error("registry: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
				re = &Error{Code: CodeBackendStore, Message: "Error in the backend data store: " + err.Error()}
			}
			writeErr(w, re)
		}
	}
}

func reply(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}

func writeErr(w http.ResponseWriter, e *Error) {
	b, _ := json.Marshal(e)
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(e.HTTPStatus())
	w.Write(b)
}

func errf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// decode reads a JSON body; unknown fields are accepted (and ignored, or
// kept where the API round-trips them).
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &Error{Code: 413, Status: 413, Message: fmt.Sprintf("request body larger than %d bytes", mbe.Limit)}
		}
		return &Error{Code: 400, Status: 400, Message: "malformed JSON body: " + err.Error()}
	}
	if dec.More() {
		return &Error{Code: 400, Status: 400, Message: "malformed JSON body: more than one JSON value"}
	}
	return nil
}

func queryBool(r *http.Request, name string) bool {
	v, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return v
}

// parseID reads a schema id path segment.
func parseID(s string) (int, error) {
	id, err := strconv.Atoi(s)
	if err != nil || id < 0 || id > math.MaxInt32 {
		return 0, errf(CodeSchemaNotFound, "Schema %s not found", s)
	}
	return id, nil
}

// parseVersion reads a version: "latest", -1 (latest) or 1..2^31-1. It
// returns -1 for latest.
func parseVersion(s string) (int, error) {
	if s == "latest" || s == "-1" {
		return -1, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 || v > math.MaxInt32 {
		return 0, errf(CodeInvalidVersion, "The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", s)
	}
	return v, nil
}

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
	deleted := queryBool(r, "deleted")
	out := rows[:0]
	for _, v := range rows {
		if deleted || !v.Deleted {
			out = append(out, v)
		}
	}
	return out, nil
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

// --- subjects and versions ---

func (s *Server) visibleVersions(ctx context.Context, subject string, deleted bool) ([]VersionRow, error) {
	rows, err := s.store.Versions(ctx, subject)
	if err != nil {
		return nil, err
	}
	out := rows[:0]
	for _, v := range rows {
		if deleted || !v.Deleted {
			out = append(out, v)
		}
	}
	return out, nil
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

// --- registering ---

// request is the body of a registration, look-up or compatibility check.
// Other fields are accepted and ignored.
type request struct {
	Schema     string          `json:"schema"`
	SchemaType string          `json:"schemaType"`
	References []Reference     `json:"references"`
	Metadata   json.RawMessage `json:"metadata"`
	RuleSet    json.RawMessage `json:"ruleSet"`
	ID         int             `json:"id"`
	Version    int             `json:"version"`
}

// candidate is a request's schema with its references resolved and its
// content hash; it is parsed only when needed (a schema registered already
// is recognised by its hash).
type candidate struct {
	req    request
	typ    schema.Type
	draft  schema.Draft
	refs   map[string]string
	canon  string
	hash   string
	parsed *schema.Parsed
}

func (s *Server) candidate(ctx context.Context, r *http.Request) (*candidate, error) {
	var req request
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return s.parseCandidate(ctx, req)
}

func (s *Server) parseCandidate(ctx context.Context, req request) (*candidate, error) {
	if strings.TrimSpace(req.Schema) == "" {
		return nil, errf(CodeInvalidSchema, "Invalid schema: field \"schema\" must not be empty")
	}
	typ, err := schema.ParseType(req.SchemaType)
	if err != nil {
		return nil, errf(CodeInvalidSchema, "Invalid schema: field \"schemaType\" must be one of AVRO, JSON, PROTOBUF, got %q", req.SchemaType)
	}
	if i := strings.IndexByte(req.Schema, 0); i >= 0 {
		return nil, errf(CodeInvalidSchema, "Invalid schema: field \"schema\" has a NUL character at byte %d", i)
	}
	if err := validMetadata(req.Metadata); err != nil {
		return nil, err
	}
	if err := validRuleSet(req.RuleSet); err != nil {
		return nil, err
	}
	for i, ref := range req.References {
		if err := validSubject(ref.Subject); err != nil && ref.Subject != "" {
			return nil, errf(CodeInvalidSchema, "Invalid schema: references[%d].subject: %s", i, err.Message)
		}
		switch {
		case ref.Name == "":
			return nil, errf(CodeInvalidSchema, "Invalid schema: references[%d].name must not be empty", i)
		case ref.Subject == "":
			return nil, errf(CodeInvalidSchema, "Invalid schema: references[%d].subject must not be empty", i)
		case ref.Version != -1 && ref.Version < 1:
			return nil, errf(CodeInvalidSchema, "Invalid schema: references[%d].version must be -1 (latest) or at least 1, got %d", i, ref.Version)
		}
	}
	refs, resolved, err := s.resolve(ctx, s.store, req.References)
	if err != nil {
		return nil, err
	}
	req.References = resolved
	c := &candidate{req: req, typ: typ, draft: s.draft, refs: refs}
	if c.canon, err = schema.Canonical(typ, req.Schema); err != nil {
		// Not even JSON: parse to say exactly why.
		return nil, s.parse(ctx, c)
	}
	c.rehash()
	return c, nil
}

// rehash computes the content hash from the canonical text, the resolved
// references, the metadata and the rule set.
func (c *candidate) rehash() {
	c.hash = hashOf(c.typ, c.canon, c.req.References, c.req.Metadata, c.req.RuleSet)
}

// parseHooks let tests see a parse wait, give up and start.
type parseHooks struct {
	waiting, gaveUp, parsing func()
}

// retryAfterSeconds is the Retry-After of a 429: a parse within the
// default limits takes about a second at most.
const retryAfterSeconds = 1

// parseSlot takes a parse slot: at once when one is free, after a wait
// when a waiting place is free (giving up when ctx ends), else a 429.
func (s *Server) parseSlot(ctx context.Context) (release func(), err error) {
	select {
	case s.admit <- struct{}{}:
	default:
		return nil, &Error{Code: CodeTooManyRequests, Message: fmt.Sprintf(
			"Too many schemas being parsed: %d running and %d waiting; retry after %d s", cap(s.run), cap(s.admit)-cap(s.run), retryAfterSeconds),
			retryAfter: retryAfterSeconds}
	}
	select {
	case s.run <- struct{}{}:
	default:
		if s.hooks.waiting != nil {
			s.hooks.waiting()
		}
		select {
		case s.run <- struct{}{}:
		case <-ctx.Done():
			<-s.admit
			if s.hooks.gaveUp != nil {
				s.hooks.gaveUp()
			}
			return nil, ctx.Err()
		}
	}
	release = func() { <-s.run; <-s.admit }
	if err := ctx.Err(); err != nil {
		release()
		if s.hooks.gaveUp != nil {
			s.hooks.gaveUp()
		}
		return nil, err
	}
	return release, nil
}

// parse parses the candidate, once, in a parse slot, under the server's
// limits and ctx; a schema that does not parse, or is over a limit, is a
// 42201 naming where and why.
func (s *Server) parse(ctx context.Context, c *candidate) error {
	if c.parsed != nil {
		return nil
	}
	release, err := s.parseSlot(ctx)
	if err != nil {
		return err
	}
	defer release()
	s.parses.Add(1)
	if s.hooks.parsing != nil {
		s.hooks.parsing()
	}
	p, err := schema.ParseContext(ctx, schema.Schema{Type: c.typ, Text: c.req.Schema, References: c.refs, DefaultDraft: c.draft}, s.limits)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return errf(CodeInvalidSchema, "Invalid schema: %s", strings.TrimPrefix(err.Error(), "schema: "))
	}
	c.parsed = p
	return nil
}

// guidOf derives a schema's GUID from its content hash (a version 8 UUID),
// so every registry holding one schema gives it one GUID.
func guidOf(hash string) string {
	b, err := hex.DecodeString(hash)
	if err != nil || len(b) < 16 {
		sum := sha256.Sum256([]byte(hash))
		b = sum[:]
	}
	var u [16]byte
	copy(u[:], b)
	u[6] = u[6]&0x0f | 0x80
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func hashOf(t schema.Type, canonical string, refs []Reference, md, rules json.RawMessage) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", t, canonical)
	for _, r := range refs {
		fmt.Fprintf(h, "%s\x01%s\x01%d\x00", r.Name, r.Subject, r.Version)
	}
	h.Write([]byte{0})
	h.Write(compactJSON(md))
	h.Write([]byte{0})
	h.Write(compactJSON(rules))
	return hex.EncodeToString(h.Sum(nil))
}

func compactJSON(b json.RawMessage) []byte {
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}

// reader is what resolving and checking read: the store, or the
// transaction of a registration (so that it never needs a second
// connection while holding one).
type reader interface {
	Versions(ctx context.Context, subject string) ([]VersionRow, error)
	Schema(ctx context.Context, id int) (StoredSchema, error)
}

// maxReferences bounds the distinct schema versions one schema may
// reference, directly or not: the limits' MaxReferences.
func (s *Server) maxReferences() int {
	if s.limits.MaxReferences == 0 {
		return schema.DefaultLimits.MaxReferences
	}
	return s.limits.MaxReferences
}

// resolve loads the referenced versions (latest for -1) and, breadth first,
// their own references, as the name → text map the schema package takes;
// each (subject, version) is read once, and where two references share a
// name the shallower one wins. It returns refs with -1 replaced by the
// version found.
func (s *Server) resolve(ctx context.Context, rd reader, refs []Reference) (map[string]string, []Reference, error) {
	if len(refs) == 0 {
		return nil, nil, nil
	}
	maxRefs := s.maxReferences()
	if maxRefs >= 0 && len(refs) > maxRefs {
		return nil, nil, errf(CodeInvalidSchema, "Invalid schema: %d references, more than the limit MaxReferences=%d", len(refs), maxRefs)
	}
	type node struct {
		subject string
		version int
	}
	out := map[string]string{}
	resolved := make([]Reference, len(refs))
	seen := map[node]bool{}
	level := refs
	for depth := 0; len(level) > 0; depth++ {
		if depth > 32 {
			return nil, nil, errf(CodeInvalidSchema, "Invalid schema: references nest deeper than 32 levels")
		}
		var next []Reference
		for i, ref := range level {
			rows, err := rd.Versions(ctx, ref.Subject)
			if err != nil {
				return nil, nil, err
			}
			v, err := findVersion(ref.Subject, rows, strconv.Itoa(ref.Version), false)
			if err != nil {
				return nil, nil, errf(CodeInvalidSchema, "Invalid schema: reference %q: subject %q version %d not found", ref.Name, ref.Subject, ref.Version)
			}
			if depth == 0 {
				resolved[i] = Reference{Name: ref.Name, Subject: ref.Subject, Version: v.Version}
			}
			e, err := s.entry(ctx, v.SchemaID, rd.Schema)
			if err != nil {
				return nil, nil, err
			}
			if prev, ok := out[ref.Name]; !ok {
				out[ref.Name] = e.stored.Text
			} else if depth == 0 && prev != e.stored.Text {
				return nil, nil, errf(CodeInvalidSchema, "Invalid schema: two references named %q name different schemas", ref.Name)
			}
			k := node{ref.Subject, v.Version}
			if seen[k] {
				continue
			}
			seen[k] = true
			if maxRefs >= 0 && len(seen) > maxRefs {
				return nil, nil, errf(CodeInvalidSchema, "Invalid schema: references reach more than %d schema versions, the limit MaxReferences", maxRefs)
			}
			next = append(next, e.stored.References...)
		}
		level = next
	}
	return out, resolved, nil
}

// parsedOf returns the parsed form of a stored schema, parsing it once.
func (s *Server) parsedOf(ctx context.Context, rd reader, e *entry) (*schema.Parsed, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.parsed != nil {
		return e.parsed, nil
	}
	typ, err := schema.ParseType(e.stored.Type)
	if err != nil {
		return nil, err
	}
	refs, _, err := s.resolve(ctx, rd, e.stored.References)
	if err != nil {
		return nil, err
	}
	// Accepted earlier, perhaps under other limits: read without them.
	p, err := schema.ParseContext(ctx, schema.Schema{Type: typ, Text: e.stored.Text, References: refs, DefaultDraft: s.draft}, schema.NoLimits)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("registry: stored schema %d no longer parses: %w", e.stored.ID, err)
	}
	e.parsed = p
	return p, nil
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
