package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/alert"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/relay"
	"github.com/handoffhq/handoff/telemetry"
)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// relayCmd runs the relay as its own process.
func relayCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, "relay --db URL --broker URL [flags]\n\nPublishes the outbox rows of a database to a broker. Run several: they share the partitions.\n\nAlerts (to the log, and to --alert-webhook): a message the broker refused for good\nand open dead letters, an outbox backlog older than --alert-backlog, stuck sagas, and\nthis relay holding no partition for --alert-no-lease (table mode).")
	dbSpec := fs.String("db", envOr("HANDOFF_DB", ""), "outbox database: "+dbForms+" (env HANDOFF_DB)")
	brokerURL := fs.String("broker", envOr("HANDOFF_BROKER", ""), "broker: "+brokerSchemes+" (env HANDOFF_BROKER)")
	partitions := fs.Int("partitions", 0, "partition count the outbox was created with; 0: read it from the outbox")
	batch := fs.Int("batch", 1000, "rows per fetch and publish")
	leaseTTL := fs.Duration("lease-ttl", 10*time.Second, "partition lease duration; a crashed relay's partitions move after it")
	pollMax := fs.Duration("poll-max", time.Second, "longest idle poll interval (LISTEN/NOTIFY wakes PostgreSQL relays sooner)")
	owner := fs.String("owner", envOr("HANDOFF_RELAY_OWNER", ""), "this relay's name in the lease table (default: random)")
	progress := fs.Duration("progress", 30*time.Second, "how often to log a progress line (published/s, backlog, oldest age), and a summary on stop; 0: never")
	mode := fs.String("mode", "table", "table: poll the outbox table; wal: read a logical replication slot (PostgreSQL with wal_level=logical; writers use postgres.WithWAL)")
	slot := fs.String("slot", "handoff_outbox", "--mode wal: the replication slot and publication (created if missing); relays on one slot: one reads, the others stand by")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus /metrics on HOST:PORT, without a token (publishes, lag per partition, the outbox backlog); default: none")
	var af observeFlags
	af.registerAlerts(fs)
	af.registerDB(fs)
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("relay: takes no arguments (got %q)", fs.Args())
	}
	switch *mode {
	case "table":
	case "wal":
		if !strings.HasPrefix(*dbSpec, "postgres://") && !strings.HasPrefix(*dbSpec, "postgresql://") {
			return errors.New("relay: --mode wal needs a PostgreSQL --db (postgres://...): logical decoding is PostgreSQL's")
		}
	default:
		return fmt.Errorf("relay: --mode %q: must be table or wal", *mode)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	db, err := openDB(ctx, "db", *dbSpec, dbOpen{migrate: true})
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer db.Close()
	pub, closePub, err := openBroker(*brokerURL)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer closePub()
	alerts, err := relayAlerts(db, af, log)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	dead, err := dlq.New(db.dlqStore(), dlq.WithLogger(log), dlq.WithAlerter(dlq.AlerterFunc(func(ctx context.Context, l *dlq.Letter) {
		log.Warn("ALERT: the broker refused a message for good; it is dead-lettered and its key is held", "id", l.Message.ID, "topic", l.Topic)
		alerts.FirstDeadLetter(ctx, l)
	})))
	if err != nil {
		return err
	}
	rm, err := startRelayMetrics(ctx, *metricsAddr, db.relayStore(), stdout)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	defer rm.close()
	if *mode == "wal" {
		r, err := postgres.NewWALRelay(db.dsn, rm.publisher(telemetry.Publisher(pub), *brokerURL), postgres.WithSlot(*slot),
			postgres.WithWALBatch(*batch, time.Millisecond), postgres.WithWALDeadLetters(dead), postgres.WithWALLogger(log))
		if err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		fmt.Fprintf(stdout, "relay (wal, slot %s): %s -> %s\n", *slot, redact(*dbSpec), redact(*brokerURL))
		return runWithAlerts(ctx, alerts, r.Run)
	}
	opts := []relay.Option{relay.WithBatchSize(*batch), relay.WithLeaseTTL(*leaseTTL),
		relay.WithPollInterval(5*time.Millisecond, *pollMax), relay.WithDeadLetters(dead), relay.WithLogger(log)}
	if *partitions != 0 {
		opts = append(opts, relay.WithPartitions(*partitions))
	}
	if *owner != "" {
		opts = append(opts, relay.WithOwner(*owner))
	}
	if *progress > 0 {
		opts = append(opts, relay.WithProgressLog(*progress))
	}
	if db.kind == postgresDB {
		opts = append(opts, relay.WithWakeups(postgres.Wakeups(ctx, db.dsn, log)))
	}
	r, err := relay.New(db.relayStore(), rm.publisher(telemetry.Publisher(pub), *brokerURL), append(opts, rm.options()...)...)
	if err != nil {
		return err
	}
	if af.noLease > 0 {
		alerts.add(alert.RelayLease(r, af.noLease, checkEvery))
	}
	fmt.Fprintf(stdout, "relay %s: %s -> %s\n", r.Owner(), redact(*dbSpec), redact(*brokerURL))
	return runWithAlerts(ctx, alerts, r.Run) // with --progress, the relay logs its progress and a summary on stop
}

// redact hides a password in a URL for printing.
func redact(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		if at := strings.Index(rest, "@"); at >= 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 {
				return s[:i+3] + rest[:c] + ":***" + rest[at:]
			}
		}
	}
	return s
}
