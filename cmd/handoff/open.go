package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	natsgo "github.com/nats-io/nats.go"

	"github.com/handoffhq/handoff/adapter/kafka"
	"github.com/handoffhq/handoff/adapter/mysql"
	natsadapter "github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/rabbitmq"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/dlq"
)

const brokerSchemes = "nats://HOST:PORT, amqp://USER:PASS@HOST:PORT/VHOST or kafka://HOST:PORT[,HOST:PORT]"

// openBroker connects to the broker named by raw. A broker that is down
// is not an error here: the adapters say so, with the address and the
// cause, when they are used.
func openBroker(raw string) (dlq.Broker, func(), error) {
	switch {
	case raw == "":
		return nil, nil, fmt.Errorf("--broker is required (%s)", brokerSchemes)
	case strings.HasPrefix(raw, "nats://"), strings.HasPrefix(raw, "tls://"):
		// Wait for a broker that is down at start instead of failing.
		nc, err := natsadapter.Connect(raw, natsgo.RetryOnFailedConnect(true))
		if err != nil {
			return nil, nil, err
		}
		c, err := natsadapter.New(nc)
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		return c, func() { c.Close(); nc.Close() }, nil
	case strings.HasPrefix(raw, "amqp://"), strings.HasPrefix(raw, "amqps://"):
		b, err := rabbitmq.New(raw)
		if err != nil {
			return nil, nil, err
		}
		return b, func() { b.Close() }, nil
	case strings.HasPrefix(raw, "kafka://"):
		seeds := strings.Split(strings.TrimPrefix(raw, "kafka://"), ",")
		c, err := kafka.New(seeds)
		if err != nil {
			return nil, nil, err
		}
		return c, func() { c.Close() }, nil
	default:
		return nil, nil, fmt.Errorf("--broker %s: unsupported scheme (want %s)", redact(raw), brokerSchemes)
	}
}

// defaultDB is the database of handoff dev's default data directory.
var defaultDB = filepath.Join(".handoff", "handoff.db")

// openDLQ opens the database named by spec and returns its dead-letter
// store. It never migrates: the service that owns the database does (the
// relay, handoff dev, the service's own Migrate call). readOnly opens it so
// that nothing can be written: a SQLite file read-only, a PostgreSQL
// session with read-only transactions.
func openDLQ(ctx context.Context, spec string, readOnly bool) (*sql.DB, dlq.Store, error) {
	switch {
	case spec == "":
		return nil, nil, errors.New("--db is required")
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		dsn := spec
		if readOnly {
			u, err := url.Parse(spec)
			if err != nil {
				return nil, nil, fmt.Errorf("--db: %w", err)
			}
			q := u.Query()
			q.Set("default_transaction_read_only", "on")
			u.RawQuery = q.Encode()
			dsn = u.String()
		}
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, nil, err
		}
		return db, postgres.DLQStore(db), nil
	case strings.HasPrefix(spec, "mysql://"):
		db, err := mysql.Open(ctx, strings.TrimPrefix(spec, "mysql://"))
		if err != nil {
			return nil, nil, err
		}
		return db, mysql.DLQStore(db), nil
	default:
		path := strings.TrimPrefix(spec, "sqlite:")
		if _, err := os.Stat(path); err != nil {
			return nil, nil, fmt.Errorf("--db %s: %w", spec, err)
		}
		if !readOnly {
			db, err := sqlite.Open(ctx, path)
			if err != nil {
				return nil, nil, err
			}
			return db, sqlite.DLQStore(db), nil
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, nil, err
		}
		// Read-only, no journal-mode change, and queries only.
		u := url.URL{Scheme: "file", Path: abs, RawQuery: "mode=ro&_pragma=busy_timeout(5000)&_pragma=query_only(1)"}
		db, err := sql.Open("sqlite", u.String())
		if err != nil {
			return nil, nil, fmt.Errorf("--db %s: %w", spec, err)
		}
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, nil, fmt.Errorf("--db %s: %w", spec, err)
		}
		return db, sqlite.DLQStore(db), nil
	}
}

// explainDB adds what to do to an error from a database with no handoff
// tables.
func explainDB(spec string, err error) error {
	if err != nil && strings.Contains(err.Error(), "handoff_dlq") &&
		(strings.Contains(err.Error(), "no such table") || strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "doesn't exist")) {
		return fmt.Errorf("%w\n(%s has no dead-letter table: point --db at the database of a service that uses handoff; its Migrate, or handoff relay, creates the tables)", err, redact(spec))
	}
	return err
}
