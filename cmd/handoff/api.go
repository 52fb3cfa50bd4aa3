package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/handoffhq/handoff/contract/broker"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/health"
	"github.com/handoffhq/handoff/internal/httpguard"
	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/topology"
	"github.com/handoffhq/handoff/topology/topologyotlp"
)

// apiConfig is what buildAPI serves: handoff dev's embedded parts (SQLite
// and the embedded NATS) or handoff serve's production ones.
type apiConfig struct {
	db          *database
	deadLetters *dlq.Queue
	// replays is the broker dead letters are replayed through (noBroker
	// when there is none: listing, editing and purging still work).
	replays dlq.Broker
	obs     *observability
	// checks are what /healthz and /readyz report.
	checks []health.Check
	// topo is the integration graph /topology serves and /v1/traces adds
	// observed edges to, kept in db (the caller runs it); otlpMax bounds
	// one OTLP export.
	topo    *topology.Shared
	otlpMax int64
	// addr is the listen address as given: on loopback, the server
	// answers to loopback Host names only.
	addr string
	// token is the admin token (--token), scoped the tokens of
	// --token-file. With neither, every route is open (handoff dev on
	// loopback, or --insecure).
	token  string
	scoped []httpguard.ScopedToken
	// base is the URL clients reach the server by (the contract broker's
	// links point under it).
	base string
	log  *slog.Logger
}

// apiTokens is the set of tokens the guard takes: token as admin, and
// each scoped token with its scope.
func apiTokens(token string, scoped []httpguard.ScopedToken) (httpguard.Tokens, error) {
	var tokens httpguard.Tokens
	if token != "" {
		if err := tokens.Add(httpguard.ScopeAdmin, token); err != nil {
			return tokens, fmt.Errorf("--token: %w", err)
		}
	}
	for _, t := range scoped {
		if err := tokens.Add(t.Scope, t.Token); err != nil {
			return tokens, fmt.Errorf("--token-file line %d: %w", t.Line, err)
		}
	}
	return tokens, nil
}

// buildAPI returns the one handler both handoff dev and handoff serve
// serve: /healthz, /readyz, /metrics, the dead letters (read, edit,
// replay through c.replays, delete), the schema registry (/registry), the
// contract broker (/contracts), the integration graph (/topology) and the
// OTLP/HTTP receiver feeding it (/v1/traces), all behind one guard.
func buildAPI(c apiConfig) (http.Handler, error) {
	tokens, err := apiTokens(c.token, c.scoped)
	if err != nil {
		return nil, err
	}
	letters, err := dlq.NewHandler(c.deadLetters, dlq.WithWrites(c.replays))
	if err != nil {
		return nil, err
	}
	// The registry and the broker check their own routes' scopes; the
	// guard lets any token of the set through to them.
	regOpts := []registry.ServerOption{registry.WithLogger(c.log)}
	brokerOpts := []broker.Option{broker.WithLogger(c.log), broker.WithBaseURL(c.base + "/contracts")}
	if c.token != "" {
		regOpts = append(regOpts, registry.WithRequiredToken(c.token))
		brokerOpts = append(brokerOpts, broker.WithToken(c.token))
	}
	for _, t := range c.scoped {
		regOpts = append(regOpts, registry.WithScopedToken(t.Scope.String(), t.Token))
		brokerOpts = append(brokerOpts, broker.WithScopedToken(t.Scope.String(), t.Token))
	}
	reg, err := registry.NewServer(c.db.registryStore(), regOpts...)
	if err != nil {
		return nil, err
	}
	contracts, err := broker.New(c.db.contractStore(), brokerOpts...)
	if err != nil {
		return nil, err
	}
	traces, err := topologyotlp.New(c.topo, topologyotlp.WithMaxBytes(c.otlpMax), topologyotlp.WithLogger(c.log))
	if err != nil {
		return nil, fmt.Errorf("--otlp-max-bytes: %w", err)
	}

	m := c.obs.metrics
	mux := http.NewServeMux()
	healthz := &health.Handler{Checks: c.checks}
	mux.Handle("GET /healthz", healthz)
	c.obs.mount(mux, healthz)
	lettersAPI := m.Handler("/dead-letters", http.StripPrefix("/dead-letters", letters))
	mux.Handle("/dead-letters", lettersAPI)
	mux.Handle("/dead-letters/", lettersAPI)
	mux.Handle("/registry/", m.Handler("/registry/", http.StripPrefix("/registry", reg)))
	mux.Handle("/contracts/", m.Handler("/contracts/", http.StripPrefix("/contracts", contracts)))
	mux.Handle("GET /topology", m.Handler("/topology", sharedTopologyHandler(c.topo)))
	if err := mountSagas(mux, c.db, m, c.log); err != nil {
		return nil, err
	}
	if serveMount != nil {
		serveMount(mux)
	}
	gd := guard(c.addr, "")
	gd.Scoped, gd.Need = tokens, serveNeed
	root := http.NewServeMux()
	root.Handle("/", gd.Wrap(mux))
	root.Handle("/v1/traces", m.Handler("/v1/traces", otlpGuard(gd, traces)))
	return root, nil
}

// printAPIs prints the URL of each API buildAPI serves, one a line: the
// name, then the URL (tests and people read them alike).
func printAPIs(w io.Writer, base string) {
	fmt.Fprintf(w, "health           %s/healthz\n", base)
	fmt.Fprintf(w, "ready            %s/readyz\n", base)
	fmt.Fprintf(w, "metrics          %s/metrics\n", base)
	fmt.Fprintf(w, "dead letters     %s/dead-letters\n", base)
	fmt.Fprintf(w, "schema registry  %s/registry\n", base)
	fmt.Fprintf(w, "contract broker  %s/contracts\n", base)
	fmt.Fprintf(w, "sagas            %s/sagas\n", base)
	fmt.Fprintf(w, "topology         %s/topology\n", base)
	fmt.Fprintf(w, "otlp traces      %s/v1/traces\n", base)
}

// httpServer is the HTTP server of dev and serve. Its shutdown closes at
// once the connections that have sent no request yet: net/http's Shutdown
// waits up to 5 seconds for such a connection (in case its first request
// is on the way), and an HTTP client keeps one around whenever a dial it
// started lost the race to a connection freed meanwhile. Such a
// connection held every stop of handoff dev for those 5 seconds, past its
// shutdown deadline. A request not yet received when the stop begins is
// one the server no longer takes, as a new connection would be.
type httpServer struct {
	*http.Server
	mu       sync.Mutex
	fresh    map[net.Conn]struct{} // connections with no request read yet
	stopping bool
}

func newHTTPServer(h http.Handler) *httpServer {
	s := &httpServer{Server: httpguard.NewServer(h, httpguard.Timeouts{}), fresh: map[net.Conn]struct{}{}}
	s.ConnState = func(c net.Conn, st http.ConnState) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case st == http.StateNew && s.stopping:
			c.Close() // accepted as the listener closes
		case st == http.StateNew:
			s.fresh[c] = struct{}{}
		default:
			delete(s.fresh, c)
		}
	}
	return s
}

// shutdown stops accepting connections, closes those that have sent no
// request, and waits for the requests in flight to finish, until ctx
// ends.
func (s *httpServer) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopping = true
	for c := range s.fresh {
		c.Close()
	}
	s.mu.Unlock()
	return s.Shutdown(ctx)
}
