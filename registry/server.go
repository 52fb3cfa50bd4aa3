package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

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
