package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/handoffhq/handoff/contract"
	"github.com/handoffhq/handoff/internal/httpguard"
)

// Server is the contract broker: the Pact Broker's HTTP API (HAL
// resources) over a Store. It is an http.Handler.
type Server struct {
	store     Store
	tokens    httpguard.Tokens
	openReads bool
	routeNeed map[string]httpguard.Scope // scope each route pattern needs
	baseURL   string
	maxBody   int64
	log       *slog.Logger
	now       func() time.Time
	mux       *http.ServeMux
}

// Option configures a Server.
type Option func(*Server) error

// WithToken makes every route need the token (reads none with
// WithOpenReads(true)), as "Authorization: Bearer <token>" or as the
// password of HTTP basic auth (what Pact's CLIs send with --broker-token
// or --broker-password). It is an admin token: WithScopedToken("admin",
// token).
func WithToken(token string) Option {
	return func(s *Server) error {
		if err := s.tokens.Add(httpguard.ScopeAdmin, token); err != nil {
			return fmt.Errorf("broker: WithToken: %w", err)
		}
		return nil
	}
}

// WithScopedToken adds a token with a scope, "read", "write" or "admin";
// it may be given many times, a token once. Once the broker has a token,
// every route needs one of at least the route's scope (reads none with
// WithOpenReads(true)):
//
//   - read: every GET (pacts, the matrix, can-i-deploy) and asking which
//     pacts to verify (POST .../for-verification);
//   - write: publishing pacts and verification results, versions,
//     branches and tags, recording deployments and releases, and what
//     read may;
//   - admin: creating environments, creating and changing pacticipants,
//     and what write may.
//
// A request without a token of the set is answered 401; one whose token's
// scope is too low 403, the message naming the scope needed. Only tokens'
// SHA-256 sums are kept, compared in constant time.
func WithScopedToken(scope, token string) Option {
	return func(s *Server) error {
		sc, err := httpguard.ParseScope(scope)
		if err != nil {
			return fmt.Errorf("broker: WithScopedToken: %w", err)
		}
		if err := s.tokens.Add(sc, token); err != nil {
			return fmt.Errorf("broker: WithScopedToken: %w", err)
		}
		return nil
	}
}

// WithOpenReads lets reads (the routes of the read scope) through without
// a token.
func WithOpenReads(open bool) Option {
	return func(s *Server) error { s.openReads = open; return nil }
}

// WithBaseURL sets the URL links are made from (for a broker mounted under
// a path prefix or behind a proxy). By default links use the request's
// host.
func WithBaseURL(u string) Option {
	return func(s *Server) error {
		if _, err := url.Parse(u); err != nil || u == "" {
			return fmt.Errorf("broker: WithBaseURL: %q is not a URL", u)
		}
		s.baseURL = strings.TrimRight(u, "/")
		return nil
	}
}

// WithLogger sets the logger for store failures.
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) error {
		if l == nil {
			return errors.New("broker: WithLogger: logger must not be nil")
		}
		s.log = l
		return nil
	}
}

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option {
	return func(s *Server) error { s.now = now; return nil }
}

// New returns a broker over store. The store's tables must exist (the
// adapters' Migrate creates them).
func New(store Store, opts ...Option) (*Server, error) {
	if store == nil {
		return nil, errors.New("broker: New: store must not be nil")
	}
	s := &Server{store: store, maxBody: contract.MaxPactBytes * 2, log: slog.Default(), now: time.Now}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	m := http.NewServeMux()
	// The route table: each route with the token scope it needs.
	s.routeNeed = map[string]httpguard.Scope{}
	route := func(need httpguard.Scope) func(string, handlerFunc) {
		return func(pattern string, h handlerFunc) {
			s.routeNeed[pattern] = need
			m.HandleFunc(pattern, s.handle(need, h))
		}
	}
	read, write, admin := route(httpguard.ScopeRead), route(httpguard.ScopeWrite), route(httpguard.ScopeAdmin)
	read("GET /{$}", s.index)
	write("POST /contracts/publish", s.publishContracts)
	write("PUT /pacts/provider/{provider}/consumer/{consumer}/version/{version}", s.putPact)
	read("GET /pacts/provider/{provider}/consumer/{consumer}/version/{version}", s.getPactByVersion)
	read("GET /pacts/provider/{provider}/consumer/{consumer}/pact-version/{sha}", s.getPactBySHA)
	read("GET /pacts/provider/{provider}/consumer/{consumer}/pact-version/{sha}/metadata/{meta}", s.getPactBySHA)
	read("GET /pacts/provider/{provider}/consumer/{consumer}/latest", s.getLatestPact)
	read("GET /pacts/provider/{provider}/consumer/{consumer}/latest/{tag}", s.getLatestPact)
	write("POST /pacts/provider/{provider}/consumer/{consumer}/pact-version/{sha}/verification-results", s.postVerification)
	read("GET /pacts/provider/{provider}/for-verification", s.forVerificationDoc)
	// Asking which pacts to verify is a read, though it is a POST.
	read("POST /pacts/provider/{provider}/for-verification", s.forVerification)
	read("GET /pacts/provider/{provider}/latest", s.latestProviderPacts)
	read("GET /pacticipants", s.listPacticipants)
	admin("POST /pacticipants", s.createPacticipant)
	read("GET /pacticipants/{pacticipant}", s.getPacticipant)
	admin("PUT /pacticipants/{pacticipant}", s.updatePacticipant)
	admin("PATCH /pacticipants/{pacticipant}", s.updatePacticipant)
	read("GET /pacticipants/{pacticipant}/versions/{version}", s.getVersion)
	write("PUT /pacticipants/{pacticipant}/versions/{version}", s.putVersion)
	write("PUT /pacticipants/{pacticipant}/branches/{branch}/versions/{version}", s.putBranchVersion)
	write("PUT /pacticipants/{pacticipant}/versions/{version}/tags/{tag}", s.putTag)
	write("POST /pacticipants/{pacticipant}/versions/{version}/deployed-versions/environment/{env}", s.recordDeployment(false))
	write("POST /pacticipants/{pacticipant}/versions/{version}/released-versions/environment/{env}", s.recordDeployment(true))
	read("GET /environments", s.listEnvironments)
	admin("POST /environments", s.createEnvironment)
	read("GET /environments/{env}", s.getEnvironment)
	read("GET /matrix", s.matrix)
	read("GET /can-i-deploy", s.canIDeployRoute)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErrors(w, http.StatusNotFound, map[string]any{"errors": []string{"no resource at " + r.Method + " " + r.URL.Path}})
	})
	s.mux = m
}

// ServeHTTP serves the broker's API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// apiError is an error answer: a status and the Pact Broker's
// {"errors": {field: [messages]}} body.
type apiError struct {
	status int
	errs   map[string][]string
}

func (e *apiError) Error() string {
	var parts []string
	for k, v := range e.errs {
		parts = append(parts, k+": "+strings.Join(v, ", "))
	}
	return fmt.Sprintf("broker: %d %s", e.status, strings.Join(parts, "; "))
}

func badRequest(field, format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, errs: map[string][]string{field: {fmt.Sprintf(format, args...)}}}
}

func notFound(format string, args ...any) error {
	return &apiError{status: http.StatusNotFound, errs: map[string][]string{"resource": {fmt.Sprintf(format, args...)}}}
}

func (s *Server) handle(need httpguard.Scope, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.tokens.Len() > 0 && !(need == httpguard.ScopeRead && s.openReads) {
			if st, msg := s.tokens.Refusal(r, need); st != 0 {
				if st == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Bearer realm="handoff contract broker"`)
				}
				writeErrors(w, st, map[string]any{"errors": []string{msg}})
				return
			}
		}
		if r.Body != nil && r.Method != http.MethodGet {
			r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		}
		if err := h(w, r); err != nil {
			var ae *apiError
			switch {
			case errors.As(err, &ae):
				writeErrors(w, ae.status, map[string]any{"errors": ae.errs})
			case errors.Is(err, context.Canceled):
			default:
				s.log.Error("broker: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
				writeErrors(w, http.StatusInternalServerError, map[string]any{"errors": []string{"the broker's store failed: " + err.Error()}})
			}
		}
	}
}

const halJSON = "application/hal+json;charset=utf-8"

func reply(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", halJSON)
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}

func writeErrors(w http.ResponseWriter, status int, body map[string]any) {
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", halJSON)
	w.WriteHeader(status)
	w.Write(b)
}

// decode reads a JSON request body into v, naming the rule broken.
func decode(r *http.Request, v any) error {
	if r.Body == nil {
		return badRequest("body", "a JSON body is required")
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{status: http.StatusRequestEntityTooLarge, errs: map[string][]string{"body": {fmt.Sprintf("larger than %d bytes", mbe.Limit)}}}
		}
		return err
	}
	return decodeBytes(b, v)
}

func decodeBytes(b []byte, v any) error {
	if len(strings.TrimSpace(string(b))) == 0 {
		return badRequest("body", "a JSON body is required")
	}
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return badRequest(te.Field, "must be a %s, not %s", te.Type, te.Value)
		}
		return badRequest("body", "not valid JSON: %v", err)
	}
	return nil
}

// base is the URL links start with.
func (s *Server) base(r *http.Request) string {
	if s.baseURL != "" {
		return s.baseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

type link struct {
	Href      string `json:"href"`
	Name      string `json:"name,omitempty"`
	Title     string `json:"title,omitempty"`
	Templated bool   `json:"templated,omitempty"`
}

func esc(s string) string { return url.PathEscape(s) }

func (s *Server) index(w http.ResponseWriter, r *http.Request) error {
	b := s.base(r)
	return reply(w, 200, map[string]any{"_links": map[string]any{
		"self":                               link{Href: b, Title: "Index"},
		"pb:publish-pact":                    link{Href: b + "/pacts/provider/{provider}/consumer/{consumer}/version/{consumerApplicationVersion}", Title: "Publish a pact", Templated: true},
		"pb:publish-contracts":               link{Href: b + "/contracts/publish", Title: "Publish contracts"},
		"pb:provider-pacts-for-verification": link{Href: b + "/pacts/provider/{provider}/for-verification", Title: "Pact versions to be verified for the specified provider", Templated: true},
		"pb:latest-provider-pacts":           link{Href: b + "/pacts/provider/{provider}/latest", Title: "Latest pacts by provider", Templated: true},
		"pb:pacticipants":                    link{Href: b + "/pacticipants", Title: "Pacticipants"},
		"pb:pacticipant":                     link{Href: b + "/pacticipants/{pacticipant}", Title: "Fetch pacticipant by name", Templated: true},
		"pb:pacticipant-version":             link{Href: b + "/pacticipants/{pacticipant}/versions/{version}", Title: "Get, create or delete a pacticipant version", Templated: true},
		"pb:pacticipant-branch-version":      link{Href: b + "/pacticipants/{pacticipant}/branches/{branch}/versions/{version}", Title: "Get or add/create a version for a branch", Templated: true},
		"pb:pacticipant-version-tag":         link{Href: b + "/pacticipants/{pacticipant}/versions/{version}/tags/{tag}", Title: "Get, create or delete a tag", Templated: true},
		"pb:environments":                    link{Href: b + "/environments", Title: "Environments"},
		"pb:environment":                     link{Href: b + "/environments/{uuid}", Title: "Environment", Templated: true},
		"pb:can-i-deploy-pacticipant-version-to-environment": link{Href: b + "/can-i-deploy?pacticipant={pacticipant}&version={version}&environment={environment}",
			Title: "Determine if an application version can be safely deployed to an environment", Templated: true},
		"pb:matrix": link{Href: b + "/matrix", Title: "The matrix of verification results"},
		"curies":    []link{{Name: "pb", Href: b + "/doc/{rel}?context=index", Templated: true}},
	}})
}

func newUUID() string {
	u := make([]byte, 16)
	_, _ = rand.Read(u)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// maxName bounds names, versions, branches and tags.
const maxName = 255

func checkName(field, v string) error {
	switch {
	case strings.TrimSpace(v) == "":
		return badRequest(field, "is required")
	case len(v) > maxName:
		return badRequest(field, "longer than %d bytes", maxName)
	case strings.ContainsAny(v, "\x00\n\r"):
		return badRequest(field, "must not contain control characters")
	}
	return nil
}
