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
	token     httpguard.Token
	hasToken  bool
	openReads bool
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

// WithRequiredToken makes writes (registering, deleting, changing config or mode)
// need the token, as "Authorization: Bearer <token>" or as the password of
// HTTP basic auth (what Confluent clients send with basic.auth.user.info).
// Reads need it too unless WithOpenReads. Tokens are compared in constant time.
func WithRequiredToken(token string) ServerOption {
	return func(s *Server) error {
		if token == "" {
			return errors.New("registry: WithRequiredToken: token must not be empty")
		}
		s.token, s.hasToken = httpguard.NewToken(token), true
		return nil
	}
}

// WithOpenReads lets reads (GET, look-ups and compatibility checks) through
// without the token.
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
	read := func(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc { return s.handle(false, h) }
	write := func(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc { return s.handle(true, h) }
	m.HandleFunc("GET /{$}", read(func(w http.ResponseWriter, r *http.Request) error { return reply(w, 200, struct{}{}) }))
	m.HandleFunc("GET /contexts", read(func(w http.ResponseWriter, r *http.Request) error { return reply(w, 200, []string{"."}) }))
	m.HandleFunc("GET /schemas/types", read(func(w http.ResponseWriter, r *http.Request) error {
		return reply(w, 200, []string{"JSON", "PROTOBUF", "AVRO"})
	}))
	m.HandleFunc("GET /schemas", read(s.listSchemas))
	m.HandleFunc("GET /schemas/ids/{id}", read(s.schemaByID))
	m.HandleFunc("GET /schemas/ids/{id}/schema", read(s.rawSchemaByID))
	m.HandleFunc("GET /schemas/ids/{id}/subjects", read(s.subjectsOfID))
	m.HandleFunc("GET /schemas/ids/{id}/versions", read(s.versionsOfID))
	m.HandleFunc("GET /schemas/guids/{guid}", read(s.schemaByGUID))
	m.HandleFunc("GET /subjects/{subject}/metadata", read(s.latestWithMetadata))
	m.HandleFunc("GET /subjects", read(s.listSubjects))
	m.HandleFunc("GET /subjects/{subject}/versions", read(s.listVersions))
	m.HandleFunc("GET /subjects/{subject}/versions/{version}", read(s.getVersion))
	m.HandleFunc("GET /subjects/{subject}/versions/{version}/schema", read(s.getRawVersion))
	m.HandleFunc("GET /subjects/{subject}/versions/{version}/referencedby", read(s.referencedBy))
	m.HandleFunc("POST /subjects/{subject}", read(s.lookup))
	m.HandleFunc("POST /subjects/{subject}/versions", write(s.register))
	m.HandleFunc("DELETE /subjects/{subject}", write(s.deleteSubject))
	m.HandleFunc("DELETE /subjects/{subject}/versions/{version}", write(s.deleteVersion))
	m.HandleFunc("POST /compatibility/subjects/{subject}/versions/{version}", read(s.checkCompatibility))
	m.HandleFunc("POST /compatibility/subjects/{subject}/versions", read(s.checkCompatibility))
	m.HandleFunc("GET /config", read(s.getConfig))
	m.HandleFunc("PUT /config", write(s.putConfig))
	m.HandleFunc("DELETE /config", write(s.deleteConfig))
	m.HandleFunc("GET /config/{subject}", read(s.getConfig))
	m.HandleFunc("PUT /config/{subject}", write(s.putConfig))
	m.HandleFunc("DELETE /config/{subject}", write(s.deleteConfig))
	m.HandleFunc("GET /mode", read(s.getSetting(modeSetting)))
	m.HandleFunc("PUT /mode", write(s.putMode))
	m.HandleFunc("DELETE /mode", write(s.deleteSetting(modeSetting)))
	m.HandleFunc("GET /mode/{subject}", read(s.getSetting(modeSetting)))
	m.HandleFunc("PUT /mode/{subject}", write(s.putMode))
	m.HandleFunc("DELETE /mode/{subject}", write(s.deleteSetting(modeSetting)))
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

func (s *Server) handle(write bool, h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.hasToken && (write || !s.openReads) && !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="handoff registry"`)
			writeErr(w, &Error{Code: CodeUnauthorized, Message: "Unauthorized: a valid token is required"})
			return
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

// authorized is the registry's token check, httpguard's (shared with the
// contract broker and the binary's servers).
func (s *Server) authorized(r *http.Request) bool { return s.token.PresentedBy(r) }
