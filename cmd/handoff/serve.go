package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/health"
	"github.com/handoffhq/handoff/internal/httpguard"
	"github.com/handoffhq/handoff/internal/otelsetup"
	"github.com/handoffhq/handoff/system"
	"github.com/handoffhq/handoff/topology"
	"github.com/handoffhq/handoff/topology/topologyotlp"
)

const serveSynopsis = `serve --db URL [--broker URL] [--addr HOST:PORT] (--token T | --token-file F | --insecure) [flags]

Runs handoff's APIs on one port over a production database (PostgreSQL,
MySQL/MariaDB; a SQLite file works too): the dead letters (/dead-letters),
the schema registry (/registry), the contract broker (/contracts), the
integration graph (/topology, declared by --system and observed from the
OTLP/HTTP traces services export to /v1/traces), /healthz, /readyz and
/metrics. Every route needs a token (OTLP exporters send it as a header:
OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer T"): --token is an admin
token; --token-file gives tokens with scopes (read: every GET, look-ups,
compatibility and can-i-deploy; write: registering, publishing pacts and
results, replaying and editing dead letters, posting traces; admin: deleting,
registry config and mode, broker environments; SECURITY.md). Several
instances may share one database: the dead letters, schemas and contracts
are all in it (the registry's caches are bounded as package registry says).
So is the observed topology: each instance adds the edges of the traces it
receives to the database every --topology-flush (counts add up across
instances and restarts) and serves /topology from what the database holds,
read at most every --topology-cache. An edge observed by one instance is
on every other one's /topology within --topology-flush + --topology-cache
(3 s by default), and on its own at once; edges not seen for
--topology-retention (7 days) are dropped.
With --broker, dead letters can be replayed through the API; without it,
they can be listed, edited and purged.

Each flag may also be set by the environment, HANDOFF_ and its name in
capitals with - as _ (HANDOFF_DB, HANDOFF_TOKEN, HANDOFF_PUBLIC_URL), or by
--config FILE, YAML with the flags' names as keys. The command line wins
over the environment, which wins over the file.`

// serve runs the production server.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, serveSynopsis)
	dbSpec := fs.String("db", "", "database: "+dbForms+" (env HANDOFF_DB)")
	brokerURL := fs.String("broker", "", "broker dead letters are replayed through: "+brokerSchemes+" (env HANDOFF_BROKER; none: no replays)")
	addr := fs.String("addr", defaultAddr, "HTTP listen address (env HANDOFF_ADDR)")
	token := fs.String("token", "", "token every request needs, as Bearer or basic-auth password (env HANDOFF_TOKEN)")
	tokenFile := fs.String("token-file", "", tokenFileHelp+" (env HANDOFF_TOKEN_FILE)")
	insecure := fs.Bool("insecure", false, "serve without --token: anyone who can reach the port may read and change dead letters, schemas and contracts")
	publicURL := fs.String("public-url", "", "the URL clients reach this server by, for the contract broker's links (default: http(s)://ADDR as listened on)")
	certFile := fs.String("tls-cert", "", "serve HTTPS with this PEM certificate (and --tls-key)")
	keyFile := fs.String("tls-key", "", "the PEM private key of --tls-cert")
	systemFile := fs.String("system", "", "the system's handoff.yaml: the graph's declared services, topics and edges (default: observed edges only)")
	otlpMax := fs.Int64("otlp-max-bytes", topologyotlp.DefaultMaxBytes, "largest OTLP trace export taken on /v1/traces, after decompression")
	drain := fs.Duration("drain", 10*time.Second, "on stop, how long in-flight requests may take to finish")
	config := fs.String("config", os.Getenv("HANDOFF_CONFIG"), "YAML file of settings: the flags' names as keys (db: postgres://..., token: ...) (env HANDOFF_CONFIG)")
	var of observeFlags
	of.register(fs, "none")
	var tf topologyFlags
	tf.register(fs)
	of.registerDB(fs)
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: takes no arguments (got %q)", fs.Args())
	}
	if err := settle(fs, "config", *config); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if *dbSpec == "" {
		return fmt.Errorf("serve: --db is required, or HANDOFF_DB (want %s)", dbForms)
	}
	if (*certFile == "") != (*keyFile == "") {
		return errors.New("serve: --tls-cert and --tls-key go together: give both, or neither")
	}
	if *drain <= 0 {
		return fmt.Errorf("serve: --drain %v: must be > 0", *drain)
	}
	if of.traces == otelsetup.TracesStdout {
		return errors.New("serve: --traces: none or otlp (stdout is handoff dev's)")
	}
	log := otelsetup.Logger(stderr, slog.LevelInfo)
	scoped, err := readTokenFile(*tokenFile, *token, log)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	tokens, err := apiTokens(*token, scoped)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if tokens.Len() == 0 {
		if !*insecure {
			return errors.New("serve: --token or --token-file is required, or HANDOFF_TOKEN (or --insecure, to let anyone who can reach the port read and change dead letters, schemas and contracts)")
		}
		log.Warn("serve: INSECURE: no --token: every route is open to whoever reaches the port", "addr", *addr)
	}

	db, err := openDB(ctx, "db", *dbSpec, dbOpen{migrate: true})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer db.Close()
	alertOpts, err := dbAlerts(db, of, true)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	obs, err := newObservability(ctx, of, "", log, alertOpts...)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer obs.close()
	if err := dbMetrics(obs.metrics, db); err != nil {
		return fmt.Errorf("serve: %w", err)
	}

	checks := []health.Check{{Name: "database", Func: db.PingContext}}
	var replays dlq.Broker = noBroker{}
	if *brokerURL != "" {
		b, closeBroker, err := openBroker(*brokerURL)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		defer closeBroker()
		replays = b
		if c, ok := b.(interface{ Check(context.Context) error }); ok {
			checks = append(checks, health.Check{Name: "broker", Func: c.Check})
		}
	}
	deadLetters, err := dlq.New(db.dlqStore(), dlq.WithLogger(log), dlq.WithAlerter(obs.alerts))
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("serve: listen on %s: %w", *addr, err)
	}
	defer ln.Close()
	scheme := "http"
	if *certFile != "" {
		scheme = "https"
	}
	base := scheme + "://" + ln.Addr().String()
	if *publicURL != "" {
		base = strings.TrimRight(*publicURL, "/")
	}
	graph := topology.New()
	if *systemFile != "" {
		sys, err := system.Load(*systemFile)
		if err != nil {
			return fmt.Errorf("serve: --system: %w", err)
		}
		graph = topology.FromSystem(sys)
	}
	observed, err := tf.open(db, graph, log)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	api, err := buildAPI(apiConfig{db: db, deadLetters: deadLetters, replays: replays, obs: obs, checks: checks,
		topo: observed, otlpMax: *otlpMax, addr: *addr, token: *token, scoped: scoped, base: base, log: log})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	srv := newHTTPServer(api)

	// As in dev: every part in one group; the first to fail stops the
	// others. On stop the server refuses new connections and lets
	// in-flight requests finish for up to --drain.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		if *certFile != "" {
			err = srv.ServeTLS(ln, *certFile, *keyFile)
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), *drain)
		defer cancel()
		if err := srv.shutdown(sctx); err != nil {
			return fmt.Errorf("serve: shutdown: %w", err)
		}
		return nil
	})
	g.Go(func() error { return obs.alerts.Run(gctx) })
	g.Go(func() error { return observed.Run(gctx) })
	obs.ready.Store(true)
	// The URLs are printed once the parts are started: /readyz no
	// longer answers "starting" (it answers what the health checks say).
	printAPIs(stdout, base)
	fmt.Fprintf(stdout, "database         %s\n", redact(*dbSpec))
	if *brokerURL != "" {
		fmt.Fprintf(stdout, "broker           %s\n", redact(*brokerURL))
	}
	if err := g.Wait(); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "handoff serve: stopped")
	return nil
}

// topologyHandler serves the graph: JSON by default, ?format=dot or
// mermaid.
func topologyHandler(g *topology.Graph) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf bytes.Buffer
		var err error
		ct := "application/json"
		switch f := r.URL.Query().Get("format"); f {
		case "", "json":
			err = g.WriteJSON(&buf)
		case "dot":
			ct, err = "text/vnd.graphviz", g.WriteDOT(&buf)
		case "mermaid":
			ct, err = "text/plain; charset=utf-8", g.WriteMermaid(&buf)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf("format: %q must be json, dot or mermaid", f)})
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", ct)
		w.Write(buf.Bytes())
	})
}

// otlpContentType carries an OTLP export's Content-Type past the guard.
const otlpContentType = "X-Handoff-Otlp-Content-Type"

// otlpGuard puts the OTLP receiver behind the server's guard (Host,
// cross-site and token checks, and whatever else the guard checks) except
// its JSON-only rule for write bodies: exporters send protobuf. That rule
// keeps browsers on other sites from posting forms; the receiver takes
// only OTLP's two content types, which a browser sends to another site
// only after asking it first (CORS), so leaving the rule out here opens
// nothing. The request's Content-Type is set aside while the guard looks
// and put back for the receiver.
func otlpGuard(g httpguard.Guard, rcv http.Handler) http.Handler {
	inner := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set("Content-Type", r.Header.Get(otlpContentType))
		r.Header.Del(otlpContentType)
		rcv.ServeHTTP(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.Clone(r.Context())
		r.Header.Set(otlpContentType, r.Header.Get("Content-Type"))
		r.Header.Del("Content-Type")
		inner.ServeHTTP(w, r)
	})
}

// serveNeed is the scope a request to serve needs from its guard. The
// registry and the contract broker check their routes' scopes themselves,
// so any token gets through to them here.
func serveNeed(r *http.Request) httpguard.Scope {
	safe := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
	switch {
	case safe, strings.HasPrefix(r.URL.Path, "/registry/"), strings.HasPrefix(r.URL.Path, "/contracts/"):
		return httpguard.ScopeRead
	case r.URL.Path == "/v1/traces":
		return httpguard.ScopeWrite
	case strings.HasPrefix(r.URL.Path, "/sagas/"):
		return sagaNeed(r) // retry, skip: write; abort: admin
	case strings.HasPrefix(r.URL.Path, "/dead-letters") && r.Method != http.MethodDelete:
		return httpguard.ScopeWrite // replay, edit
	}
	return httpguard.ScopeAdmin // deleting dead letters, anything else
}

// serveMount, when a test sets it, mounts more routes on serve's mux.
var serveMount func(mux *http.ServeMux)

// noBroker is the replay broker of a server started without --broker:
// listing, editing and purging work, replaying says what is missing.
type noBroker struct{}

var errNoBroker = errors.New("this server has no broker to replay through: start handoff serve with --broker URL (" + brokerSchemes + ")")

func (noBroker) Publish(context.Context, string, ...*handoff.Message) error { return errNoBroker }
func (noBroker) Redeliver(context.Context, string, string, ...*handoff.Message) error {
	return errNoBroker
}
