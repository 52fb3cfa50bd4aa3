package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
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
	"github.com/handoffhq/handoff/contract/broker"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/relay"
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

// dbForms is what every --db flag accepts.
const dbForms = "postgres://USER:PASS@HOST:5432/DB, mysql://USER:PASS@HOST:3306/DB (or mysql:// and a go-sql-driver DSN: USER@tcp(HOST:3306)/DB), or a SQLite file: PATH, sqlite:PATH or file:PATH"

// dbKind is the database behind a --db value.
type dbKind int

const (
	sqliteDB dbKind = iota
	postgresDB
	mysqlDB
)

// dbOpen says how a command uses its database.
type dbOpen struct {
	// migrate creates or upgrades handoff's tables. Without it, a SQLite
	// file must exist already (opening would create an empty one).
	migrate bool
	// readOnly opens the database so that nothing can be written: a SQLite
	// file read-only, a PostgreSQL session with read-only transactions.
	readOnly bool
}

// database is an open --db: the connection pool, which database it is,
// and the DSN the driver was given (for PostgreSQL's LISTEN).
type database struct {
	*sql.DB
	kind dbKind
	dsn  string
}

// openDB opens the database named by spec, the value of the flag named
// flagName (for errors). Every command that takes a database opens it
// here, so each accepts the same forms (dbForms) and names the flag and
// those forms when a value is missing or malformed.
func openDB(ctx context.Context, flagName, spec string, how dbOpen) (*database, error) {
	kind, dsn, err := parseDB(spec)
	if err != nil {
		if spec == "" && flagName == "db" {
			return nil, fmt.Errorf("--db is required, or HANDOFF_DB (want %s)", dbForms)
		}
		return nil, fmt.Errorf("--%s %w (want %s)", flagName, err, dbForms)
	}
	d := &database{kind: kind, dsn: dsn}
	switch kind {
	case postgresDB:
		if how.readOnly {
			u, err := url.Parse(dsn)
			if err != nil {
				return nil, fmt.Errorf("--%s %s: %w (want %s)", flagName, redact(spec), err, dbForms)
			}
			q := u.Query()
			q.Set("default_transaction_read_only", "on")
			u.RawQuery = q.Encode()
			dsn = u.String()
		}
		d.DB, err = postgres.Open(ctx, dsn)
	case mysqlDB:
		d.DB, err = mysql.Open(ctx, dsn)
	default:
		d.DB, err = openSQLite(ctx, dsn, how)
	}
	if err != nil {
		return nil, fmt.Errorf("--%s %s: %w", flagName, redact(spec), err)
	}
	if how.migrate {
		if err := adapters[kind].migrate(ctx, d.DB); err != nil {
			d.Close()
			return nil, fmt.Errorf("--%s %s: %w", flagName, redact(spec), err)
		}
	}
	return d, nil
}

// parseDB tells which database spec names and the DSN its driver takes.
// An error starts with the (redacted) value, after the flag's name.
func parseDB(spec string) (dbKind, string, error) {
	scheme, rest, hasScheme := strings.Cut(spec, "://")
	switch {
	case spec == "":
		return 0, "", errors.New("is required")
	case hasScheme && (scheme == "postgres" || scheme == "postgresql"):
		if _, err := url.Parse(spec); err != nil || rest == "" {
			return 0, "", fmt.Errorf("%s: not a PostgreSQL URL", redact(spec))
		}
		return postgresDB, spec, nil
	case hasScheme && scheme == "mysql":
		dsn, err := mysqlDSN(rest)
		if err != nil {
			return 0, "", fmt.Errorf("%s: %w", redact(spec), err)
		}
		return mysqlDB, dsn, nil
	case hasScheme && scheme == "sqlite":
		// sqlite:///abs/path and sqlite://rel/path.
		if rest == "" {
			return 0, "", fmt.Errorf("%s: no file path", spec)
		}
		return sqliteDB, rest, nil
	case hasScheme && scheme == "file":
		return sqliteDB, spec, nil
	case hasScheme:
		return 0, "", fmt.Errorf("%s: unsupported scheme %q", redact(spec), scheme)
	case strings.HasPrefix(spec, "sqlite:"):
		if strings.TrimPrefix(spec, "sqlite:") == "" {
			return 0, "", fmt.Errorf("%s: no file path", spec)
		}
		return sqliteDB, strings.TrimPrefix(spec, "sqlite:"), nil
	default:
		// A path, or a file: URI for the driver.
		return sqliteDB, spec, nil
	}
}

// mysqlDSN turns what follows mysql:// into go-sql-driver's DSN: a URL's
// USER:PASS@HOST:PORT/DB?PARAMS, or a DSN as the driver takes it.
func mysqlDSN(rest string) (string, error) {
	if strings.Contains(rest, "@tcp(") || strings.Contains(rest, "@unix(") || strings.Contains(rest, "@/") || strings.HasPrefix(rest, "tcp(") {
		return rest, nil
	}
	u, err := url.Parse("mysql://" + rest)
	if err != nil || u.Host == "" {
		return "", errors.New("not a MySQL URL or DSN")
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" {
		return "", errors.New("names no database (mysql://USER@HOST:3306/DB)")
	}
	host := u.Host
	if u.Port() == "" {
		host += ":3306"
	}
	dsn := ""
	if u.User != nil {
		dsn = u.User.Username()
		if p, ok := u.User.Password(); ok {
			dsn += ":" + p
		}
		dsn += "@"
	}
	dsn += "tcp(" + host + ")/" + db
	if u.RawQuery != "" {
		dsn += "?" + u.RawQuery
	}
	return dsn, nil
}

// openSQLite opens a SQLite file. Without migrate the file must exist;
// readOnly opens it read-only, with no journal-mode change, and queries
// only.
func openSQLite(ctx context.Context, dsn string, how dbOpen) (*sql.DB, error) {
	path := dsn
	if strings.HasPrefix(dsn, "file:") {
		u, err := url.Parse(dsn)
		if err != nil {
			return nil, err
		}
		path = u.Path
		if u.Opaque != "" { // file:relative/path
			path = u.Opaque
		}
	}
	if !how.migrate {
		if _, err := os.Stat(path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, errors.New("no such file (point it at an existing database; handoff dev keeps its own in " + defaultDB + ")")
			}
			return nil, err
		}
	}
	if !how.readOnly {
		return sqlite.Open(ctx, dsn)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	u := url.URL{Scheme: "file", Path: abs, RawQuery: "mode=ro&_pragma=busy_timeout(5000)&_pragma=query_only(1)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// adapter is what the binary uses of one database's adapter package.
type adapter struct {
	migrate  func(context.Context, *sql.DB) error
	dlq      func(*sql.DB) dlq.Store
	relay    func(*sql.DB) relay.Store
	registry func(*sql.DB) registry.Store
	contract func(*sql.DB) broker.Store
}

var adapters = map[dbKind]adapter{
	postgresDB: {postgres.Migrate[*sql.DB], postgres.DLQStore[*sql.DB], postgres.RelayStore[*sql.DB],
		func(db *sql.DB) registry.Store { return postgres.RegistryStore(db) }, postgres.ContractStore},
	mysqlDB: {mysql.Migrate, mysql.DLQStore, mysql.RelayStore,
		func(db *sql.DB) registry.Store { return mysql.RegistryStore(db) }, mysql.ContractStore},
	sqliteDB: {sqlite.Migrate, sqlite.DLQStore, sqlite.RelayStore,
		func(db *sql.DB) registry.Store { return sqlite.RegistryStore(db) }, sqlite.ContractStore},
}

func (d *database) dlqStore() dlq.Store           { return adapters[d.kind].dlq(d.DB) }
func (d *database) relayStore() relay.Store       { return adapters[d.kind].relay(d.DB) }
func (d *database) registryStore() registry.Store { return adapters[d.kind].registry(d.DB) }
func (d *database) contractStore() broker.Store   { return adapters[d.kind].contract(d.DB) }

// explainDB adds what to do to an error from a database with no handoff
// tables.
func explainDB(spec string, err error) error {
	if err != nil && strings.Contains(err.Error(), "handoff_dlq") &&
		(strings.Contains(err.Error(), "no such table") || strings.Contains(err.Error(), "does not exist") || strings.Contains(err.Error(), "doesn't exist")) {
		return fmt.Errorf("%w\n(%s has no dead-letter table: point --db at the database of a service that uses handoff; its Migrate, or handoff relay, creates the tables)", err, redact(spec))
	}
	return err
}
