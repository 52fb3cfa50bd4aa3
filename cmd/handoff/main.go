// Command handoff runs the shared parts of handoff: `handoff dev` starts the
// embedded defaults (SQLite and NATS JetStream under one data directory) with
// a demo flow, and `handoff dlq` inspects, edits, replays and purges dead
// letters. Each subcommand wraps library packages and holds no logic of its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "handoff:", err)
		os.Exit(1)
	}
}

const usage = `handoff: safe handoffs between services

Usage:
  handoff dev   [--data-dir DIR] [--addr HOST:PORT]   run the embedded defaults and a demo flow
  handoff serve --db URL [--broker URL] --token T    run every API on one port over a production database
  handoff relay --db URL --broker URL                 publish outbox rows to a broker
  handoff dlq   list|show|edit|replay|purge ...       work with dead letters
  handoff saga  list|show|retry|skip|abort ...        see sagas and their timelines; move a stuck one on
  handoff registry serve --db URL [--token T]         run the schema registry (Confluent's REST API)
  handoff topology show|export ...                    the integration graph: chains, findings, drift; JSON, DOT, Mermaid
  handoff schema impact SUBJECT FILE ...              which consumers a schema change breaks, and the migration
  handoff check [--registry URL] [--broker URL] [--tests REPORT.json] ...  the go-live gate for CI (table, --json, --junit)
  handoff init  [--force] [FILE]                      write a commented handoff.yaml to start from
  handoff help                                         show this help

Run "handoff COMMAND -h" for a command's flags.
`

// run is main without the process: testable end to end. Help asked for
// (-h, --help, help) is not an error: it returns nil, and main exits 0.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, stdin, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("a command is required")
	}
	switch args[0] {
	case "dev":
		return dev(ctx, args[1:], stdout, stderr)
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "relay":
		return relayCmd(ctx, args[1:], stdout, stderr)
	case "dlq":
		return dlqCmd(ctx, args[1:], stdin, stdout, stderr)
	case "saga":
		return sagaCmd(ctx, args[1:], stdout, stderr)
	case "registry":
		return registryCmd(ctx, args[1:], stdout, stderr)
	case "contract":
		return contractCmd(ctx, args[1:], stdin, stdout, stderr)
	case "topology":
		return topologyCmd(ctx, args[1:], stdout, stderr)
	case "schema":
		return schemaCmd(ctx, args[1:], stdout, stderr)
	case "check":
		return checkCmd(ctx, args[1:], stdin, stdout, stderr)
	case "init":
		return initCmd(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
