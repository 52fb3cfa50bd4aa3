package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/handoffhq/handoff/internal/httpguard"
	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/schema"
)

const registryUsage = `Usage:
  handoff registry serve --db URL [--addr HOST:PORT] [--token T] [--token-file F] [--open-reads] [--compatibility LEVEL]

Serves a schema registry with Confluent's REST API: point Confluent clients
and serializers at the printed URL.
`

func registryCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprint(stderr, registryUsage)
		if len(args) == 0 {
			return errors.New("registry: a subcommand is required")
		}
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			return flag.ErrHelp
		}
		return fmt.Errorf("registry: unknown subcommand %q", args[0])
	}
	fs := flag.NewFlagSet("registry serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbSpec := fs.String("db", envOr("HANDOFF_DB", ""), "database: "+dbForms+" (env HANDOFF_DB)")
	addr := fs.String("addr", envOr("HANDOFF_REGISTRY_ADDR", "127.0.0.1:8081"), "listen address (env HANDOFF_REGISTRY_ADDR)")
	token := fs.String("token", envOr("HANDOFF_REGISTRY_TOKEN", ""), "admin token (every route), as Bearer or basic-auth password (env HANDOFF_REGISTRY_TOKEN)")
	tokenFile := fs.String("token-file", envOr("HANDOFF_REGISTRY_TOKEN_FILE", ""), tokenFileHelp+" (env HANDOFF_REGISTRY_TOKEN_FILE)")
	openReads := fs.Bool("open-reads", false, "let reads through without the token")
	insecure := fs.Bool("insecure", false, "serve without --token: anyone who can reach the port may register and delete schemas")
	level := fs.String("compatibility", "BACKWARD", "default compatibility level until one is PUT to /config")
	jsonDraft := fs.String("json-draft", "draft-07", "JSON Schema draft of a schema without $schema: draft-04, draft-06, draft-07 (Confluent's), 2019-09 or 2020-12")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	l, err := schema.ParseLevel(*level)
	if err != nil {
		return fmt.Errorf("registry: --compatibility: %w", err)
	}
	draft, err := schema.ParseDraft(*jsonDraft)
	if err != nil {
		return fmt.Errorf("registry: --json-draft: %w", err)
	}
	if os.Getenv("GOGC") == "" {
		// Parsing a schema allocates much and keeps little: the live heap
		// is the schema cache, small. Collecting less often halves the CPU
		// a registration costs (bench/README.md). GOGC, if set, wins.
		debug.SetGCPercent(400)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	scoped, err := readTokenFile(*tokenFile, *token, log)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	db, err := openDB(ctx, "db", *dbSpec, dbOpen{migrate: true})
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	defer db.Close()
	opts := []registry.ServerOption{registry.WithDefaultCompatibility(l), registry.WithDefaultJSONDraft(draft), registry.WithLogger(log)}
	for _, t := range scoped {
		opts = append(opts, registry.WithScopedToken(t.Scope.String(), t.Token))
	}
	if *token != "" {
		opts = append(opts, registry.WithRequiredToken(*token))
	}
	if *token != "" || len(scoped) > 0 {
		opts = append(opts, registry.WithOpenReads(*openReads))
	} else if !*insecure {
		return errors.New("registry: --token or --token-file is required (or --insecure, to let anyone who can reach the port register and delete schemas)")
	} else {
		log.Warn("registry: INSECURE: no --token nor --token-file: anyone who can reach the port may register and delete schemas", "addr", *addr)
	}
	srv, err := registry.NewServer(db.registryStore(), opts...)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("registry: listen on %s: %w", *addr, err)
	}
	fmt.Fprintf(stdout, "schema registry  http://%s\n", ln.Addr())
	fmt.Fprintf(stdout, "database         %s\n", redact(*dbSpec))
	return serveUntilDone(ctx, ln, guard(*addr, "").Wrap(srv))
}

// guard is the HTTP guard of a server listening on addr: on loopback, the
// Host header must name loopback (DNS rebinding); everywhere, writes from
// another site and non-JSON write bodies are refused.
func guard(addr, token string) httpguard.Guard {
	g := httpguard.Guard{Token: token}
	if httpguard.IsLoopback(addr) {
		g.Hosts = httpguard.LoopbackHosts
	}
	return g
}

// serveUntilDone serves h on ln until ctx ends, then shuts down gracefully.
func serveUntilDone(ctx context.Context, ln net.Listener, h http.Handler) error {
	hs := httpguard.NewServer(h, httpguard.Timeouts{})
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
