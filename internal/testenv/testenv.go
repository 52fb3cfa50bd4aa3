// Package testenv finds the real services tests run against. Each service is
// found through an environment variable whose default is its local address;
// when it is unreachable the test is skipped with a message, or fails when
// HANDOFF_TEST_REQUIRE=1 (as in CI). Each call returns an isolated namespace
// (a fresh schema or database, a unique name prefix) removed at cleanup, so
// tests can run in parallel against one server.
package testenv

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // database/sql driver "mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// Require reports whether unreachable services fail tests instead of skipping them.
func Require() bool { return os.Getenv("HANDOFF_TEST_REQUIRE") == "1" }

// Unique returns a short random lowercase name with the given prefix, usable
// as a schema, database, stream, queue or topic name.
func Unique(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// unavailable skips or fails the test, naming the service and the variable.
func unavailable(t testing.TB, service, variable, addr string, err error) {
	t.Helper()
	msg := fmt.Sprintf("%s not reachable at %s (set %s): %v", service, addr, variable, err)
	if Require() {
		t.Fatalf("%s; HANDOFF_TEST_REQUIRE=1 so this fails", msg)
	}
	t.Skip(msg)
}

// Dial checks that a TCP address answers.
func dial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// PostgresURL returns a connection URL for a fresh schema on the test
// PostgreSQL server (HANDOFF_TEST_POSTGRES, default
// postgres://postgres@127.0.0.1:5432/test). The URL's search_path points at
// the schema; it is dropped at cleanup.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := env("HANDOFF_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("HANDOFF_TEST_POSTGRES: %v", err)
	}
	db, err := sql.Open("pgx", base)
	if err == nil {
		err = pingRetry(db)
	}
	if err != nil {
		if db != nil {
			db.Close()
		}
		unavailable(t, "PostgreSQL", "HANDOFF_TEST_POSTGRES", u.Host, err)
	}
	schema := Unique("t_")
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		db.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db.Exec("DROP SCHEMA " + schema + " CASCADE")
		db.Close()
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Postgres opens a *sql.DB (driver pgx) on a fresh schema; see PostgresURL.
func Postgres(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// MySQLDSN returns a go-sql-driver DSN for a fresh database on the test
// MySQL/MariaDB server (HANDOFF_TEST_MYSQL, default root@tcp(127.0.0.1:3306)/test).
// The database is dropped at cleanup.
func MySQLDSN(t testing.TB) string {
	t.Helper()
	base := env("HANDOFF_TEST_MYSQL", "root@tcp(127.0.0.1:3306)/test")
	db, err := sql.Open("mysql", base)
	if err == nil {
		err = pingRetry(db)
	}
	if err != nil {
		if db != nil {
			db.Close()
		}
		unavailable(t, "MySQL/MariaDB", "HANDOFF_TEST_MYSQL", base, err)
	}
	name := Unique("t_")
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		db.Close()
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		db.Exec("DROP DATABASE " + name)
		db.Close()
	})
	// Replace the database name after the last "/" and keep the parameters.
	i := strings.LastIndex(base, "/")
	rest := base[i+1:]
	params := ""
	if j := strings.Index(rest, "?"); j >= 0 {
		params = rest[j:]
	}
	dsn := base[:i+1] + name + params
	if !strings.Contains(dsn, "parseTime") {
		if params == "" {
			dsn += "?parseTime=true"
		} else {
			dsn += "&parseTime=true"
		}
	}
	return dsn
}

// MySQL opens a *sql.DB (driver mysql) on a fresh database; see MySQLDSN.
func MySQL(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", MySQLDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// NATSURL returns the URL of the test NATS server with JetStream
// (HANDOFF_TEST_NATS, default nats://127.0.0.1:4222). Use Unique for stream
// and subject names.
func NATSURL(t testing.TB) string {
	t.Helper()
	return tcpService(t, "NATS", "HANDOFF_TEST_NATS", "nats://127.0.0.1:4222")
}

// RabbitMQURL returns the AMQP URL of the test RabbitMQ server
// (HANDOFF_TEST_RABBITMQ, default amqp://guest:guest@127.0.0.1:5672/).
func RabbitMQURL(t testing.TB) string {
	t.Helper()
	return tcpService(t, "RabbitMQ", "HANDOFF_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672/")
}

// RedisAddr returns host:port of the test Redis server (HANDOFF_TEST_REDIS,
// default 127.0.0.1:6379). Use Unique for key prefixes.
func RedisAddr(t testing.TB) string {
	t.Helper()
	addr := env("HANDOFF_TEST_REDIS", "127.0.0.1:6379")
	if err := dial(addr); err != nil {
		unavailable(t, "Redis", "HANDOFF_TEST_REDIS", addr, err)
	}
	return addr
}

// KafkaBrokers returns the seed brokers of a real Kafka (HANDOFF_TEST_KAFKA,
// comma separated). There is no default: without it the test is skipped, even
// under HANDOFF_TEST_REQUIRE, since Kafka tests run against kfake in-process.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	v := os.Getenv("HANDOFF_TEST_KAFKA")
	if v == "" {
		t.Skip("no real Kafka configured (set HANDOFF_TEST_KAFKA); kfake covers the adapter")
	}
	return strings.Split(v, ",")
}

func tcpService(t testing.TB, service, variable, def string) string {
	t.Helper()
	raw := env(variable, def)
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", variable, err)
	}
	if err := dial(u.Host); err != nil {
		unavailable(t, service, variable, u.Host, err)
	}
	return raw
}

func pingRetry(db *sql.DB) error {
	var err error
	for i := 0; i < 3; i++ {
		if err = db.Ping(); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return err
}
