package handoff_test

import (
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/handoffhq/handoff"

// deps returns the packages pkgs link, beyond the standard library: each
// one's import path and module path.
func deps(t *testing.T, pkgs ...string) map[string]string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	args := append([]string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}} {{with .Module}}{{.Path}}{{end}}{{end}}"}, pkgs...)
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", strings.Join(pkgs, " "), err, out)
	}
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			m[f[0]] = f[1]
		}
	}
	return m
}

// Core packages must not drag a driver into every user's build: pgx,
// franz-go, nats, amqp, sqlite, mysql, redis and gRPC live only in adapter/*,
// cmd/ and tests; core uses only the OpenTelemetry API, never its SDK.
func TestCorePackagesHaveNoDriverDependencies(t *testing.T) {
	core := []string{".", "./consumer", "./inbox", "./dlq", "./outbox", "./relay", "./telemetry", "./internal/backoff",
		"./internal/clock", "./health", "./breaker", "./bulkhead", "./retry", "./throttle", "./hedge", "./fallback", "./resilience",
		"./resiliencehttp", "./idempotency", "./schema", "./registry", "./contract", "./contract/broker", "./contract/openapi", "./impact", "./check", "./saga", "./system", "./topology", "./metrics", "./alert", "./alert/alertstate"}
	forbidden := []string{"github.com/jackc/", "github.com/twmb/franz-go", "github.com/nats-io/", "github.com/rabbitmq/",
		"modernc.org/sqlite", "github.com/go-sql-driver/", "github.com/redis/", "google.golang.org/grpc",
		"go.opentelemetry.io/otel/sdk", "github.com/prometheus/"}
	for _, pkg := range core {
		for dep := range deps(t, pkg) {
			for _, f := range forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("core package %s depends on %s", pkg, dep)
				}
			}
		}
	}
}

// Dependencies follow use: what each adapter package may link, beyond the
// standard library. handoff lists the packages of this module (relative
// paths, "" for the root); modules the other modules. A new import that is
// not listed fails here: add it only if every user of the adapter needs it.
// None of them may link the schema engine (schema, registry: the SQL
// adapters build the registry's store from registry/registrystore, which
// imports only the standard library) or nats-server (adapter/natsserver is
// its own package).
var adapterDeps = map[string]struct{ handoff, modules []string }{
	"adapter/postgres": {
		handoff: []string{"", "dlq", "inbox", "outbox", "relay", "telemetry", "internal/backoff", "internal/timeparam", "internal/sqlstore",
			"registry/registrystore", "idempotency/idempotencystore", "contract", "contract/broker", "internal/httpguard", "saga",
			"topology/topologystore", "alert/alertstate"},
		modules: append([]string{"github.com/jackc/pgx/v5", "github.com/jackc/pgpassfile", "github.com/jackc/pgservicefile",
			"github.com/jackc/puddle/v2", "golang.org/x/sync", "golang.org/x/text", "github.com/jackc/pglogrepl", "github.com/jackc/pgio"}, otelAPI...),
	},
	"adapter/sqlite": {
		handoff: []string{"", "dlq", "inbox", "outbox", "relay", "telemetry", "internal/backoff", "internal/timeparam", "internal/sqlstore",
			"registry/registrystore", "idempotency/idempotencystore", "contract", "contract/broker", "internal/httpguard", "saga",
			"topology/topologystore", "alert/alertstate"},
		modules: append([]string{"modernc.org/sqlite", "modernc.org/libc", "modernc.org/mathutil", "modernc.org/memory",
			"github.com/dustin/go-humanize", "github.com/remyoudompheng/bigfft", "golang.org/x/sys"}, otelAPI...),
	},
	"adapter/mysql": {
		handoff: []string{"", "dlq", "inbox", "outbox", "relay", "telemetry", "internal/backoff", "internal/timeparam", "internal/sqlstore",
			"registry/registrystore", "idempotency/idempotencystore", "contract", "contract/broker", "internal/httpguard", "saga",
			"topology/topologystore", "alert/alertstate"},
		modules: append([]string{"github.com/go-sql-driver/mysql", "filippo.io/edwards25519"}, otelAPI...),
	},
	"adapter/nats": {
		handoff: []string{""},
		modules: []string{"github.com/google/uuid", "github.com/nats-io/nats.go", "github.com/nats-io/nkeys",
			"github.com/nats-io/nuid", "github.com/klauspost/compress", "golang.org/x/crypto", "golang.org/x/sys"},
	},
	"adapter/natsserver": {
		modules: []string{"github.com/nats-io/nats-server/v2", "github.com/nats-io/jwt/v2", "github.com/nats-io/nkeys",
			"github.com/nats-io/nuid", "github.com/klauspost/compress", "github.com/minio/highwayhash",
			"github.com/antithesishq/antithesis-sdk-go", "golang.org/x/crypto", "golang.org/x/sys", "golang.org/x/time"},
	},
	"adapter/kafka": {
		handoff: []string{""},
		modules: []string{"github.com/google/uuid", "github.com/twmb/franz-go", "github.com/twmb/franz-go/pkg/kadm",
			"github.com/twmb/franz-go/pkg/kmsg", "github.com/klauspost/compress", "github.com/pierrec/lz4/v4"},
	},
	"adapter/rabbitmq": {
		handoff: []string{"", "internal/backoff"},
		modules: []string{"github.com/google/uuid", "github.com/rabbitmq/amqp091-go"},
	},
	"adapter/redis": {
		handoff: []string{"idempotency", "idempotency/idempotencystore"},
		modules: []string{"github.com/redis/go-redis/v9", "github.com/cespare/xxhash/v2", "go.uber.org/atomic", "golang.org/x/sys"},
	},
	"adapter/grpc": {
		handoff: []string{"", "resilience", "retry", "breaker", "bulkhead", "throttle", "idempotency", "idempotency/idempotencystore",
			"internal/backoff", "internal/clock"},
		modules: append([]string{"google.golang.org/grpc", "google.golang.org/protobuf", "google.golang.org/genproto/googleapis/rpc",
			"golang.org/x/net", "golang.org/x/sys", "golang.org/x/text"}, otelAPI...),
	},
	"adapter/memory": {
		handoff: []string{"", "dlq", "internal/timeparam", "contract", "contract/broker", "internal/httpguard", "topology/topologystore", "alert/alertstate"},
		modules: []string{"github.com/google/uuid"},
	},
}

// otelAPI is the OpenTelemetry API (never its SDK) and what it links.
var otelAPI = []string{"go.opentelemetry.io/otel", "go.opentelemetry.io/otel/trace", "go.opentelemetry.io/otel/metric",
	"go.opentelemetry.io/otel/log", "go.opentelemetry.io/auto/sdk", "github.com/go-logr/logr", "github.com/go-logr/stdr",
	"github.com/cespare/xxhash/v2", "github.com/google/uuid"}

func TestAdaptersLinkOnlyWhatTheyUse(t *testing.T) {
	out, err := exec.Command("go", "list", "./adapter/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list ./adapter/...: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		rel := strings.TrimPrefix(pkg, module+"/")
		allowed, ok := adapterDeps[rel]
		if !ok {
			t.Errorf("%s: not in adapterDeps; state what it may import", rel)
			continue
		}
		for dep, mod := range deps(t, pkg) {
			if dep == pkg {
				continue
			}
			if mod == module {
				if r := strings.TrimPrefix(strings.TrimPrefix(dep, module), "/"); !slices.Contains(allowed.handoff, r) {
					t.Errorf("%s links %s, not in its list", rel, dep)
				}
			} else if !slices.Contains(allowed.modules, mod) {
				t.Errorf("%s links %s (module %s), not in its list", rel, dep, mod)
			}
		}
	}
}

// An outbox-only PostgreSQL service (outbox writer, relay, PostgreSQL
// stores, NATS client) links no part of the schema engine and no NATS
// server.
func TestOutboxOnlyPostgresServiceLinksNoSchemaOrNATSServer(t *testing.T) {
	var bad []string
	for dep, mod := range deps(t, "./outbox", "./relay", "./adapter/postgres", "./adapter/nats") {
		switch {
		case dep == module+"/schema" || strings.HasPrefix(dep, module+"/schema/"),
			dep == module+"/registry",
			strings.HasPrefix(dep, module+"/registry/") && dep != module+"/registry/registrystore",
			mod == "github.com/nats-io/nats-server/v2",
			mod == "github.com/hamba/avro/v2", mod == "github.com/bufbuild/protocompile",
			mod == "github.com/santhosh-tekuri/jsonschema/v6":
			bad = append(bad, dep)
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Fatalf("an outbox-only PostgreSQL + NATS service links:\n%s", strings.Join(bad, "\n"))
	}
}
