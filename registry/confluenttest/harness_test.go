package confluenttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry"
	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/rest"

	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/registry"
)

// env is one registry server under test and clients of it.
type env struct {
	url  string
	sr   schemaregistry.Client // Confluent's client
	ours *registry.Client      // handoff's client
}

// stores opens a fresh registry store per database: SQLite always,
// PostgreSQL when reachable.
var stores = map[string]func(testing.TB) registry.Store{
	"sqlite":   sqliteStore,
	"postgres": postgresStore,
}

func sqliteStore(t testing.TB) registry.Store {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := sqlite.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	return sqlite.RegistryStore(db)
}

// postgresStore opens a store on a fresh schema of the test PostgreSQL
// server, as handoff's internal/testenv does (which another module cannot
// import): the schema is created, named in the URL's search_path, and
// dropped at cleanup.
func postgresStore(t testing.TB) registry.Store {
	t.Helper()
	ctx := context.Background()
	base := os.Getenv("HANDOFF_TEST_POSTGRES")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("HANDOFF_TEST_POSTGRES: %v", err)
	}
	admin, err := postgres.Open(ctx, base)
	if err != nil {
		msg := "PostgreSQL not reachable at " + u.Host + " (set HANDOFF_TEST_POSTGRES): " + err.Error()
		if os.Getenv("HANDOFF_TEST_REQUIRE") == "1" {
			t.Fatal(msg + "; HANDOFF_TEST_REQUIRE=1 so this fails")
		}
		t.Skip(msg)
	}
	name := unique("t_")
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	db, err := postgres.Open(ctx, u.String())
	if err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		admin.Exec("DROP SCHEMA " + name + " CASCADE")
		admin.Close()
	})
	if err := postgres.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	return postgres.RegistryStore(db)
}

func unique(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// eachStore runs f as a subtest per store, each with its own server.
func eachStore(t *testing.T, f func(t *testing.T, e *env), opts ...registry.ServerOption) {
	t.Helper()
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			f(t, newEnv(t, stores[name](t), opts...))
		})
	}
}

// newEnv starts a server over st and returns clients of it.
func newEnv(t testing.TB, st registry.Store, opts ...registry.ServerOption) *env {
	t.Helper()
	srv, err := registry.NewServer(st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	ours, err := registry.NewClient(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &env{url: hs.URL, sr: confluentClient(t, schemaregistry.NewConfig(hs.URL)), ours: ours}
}

// confluentClient makes Confluent's client from conf, without retries (a
// retry would only hide a server error, and it sleeps).
func confluentClient(t testing.TB, conf *schemaregistry.Config) schemaregistry.Client {
	t.Helper()
	conf.MaxRetries = 0
	c, err := schemaregistry.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantCode checks that err is Confluent's *rest.Error with the code.
func wantCode(t testing.TB, err error, code int) {
	t.Helper()
	var re *rest.Error
	if !errors.As(err, &re) {
		t.Fatalf("got error %v (%T), want *rest.Error with code %d", err, err, code)
	}
	if re.Code != code {
		t.Fatalf("got error code %d (%s), want %d", re.Code, re.Message, code)
	}
}

// check fails the test on err.
func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
