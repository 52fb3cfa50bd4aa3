package handoff_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Core packages must not drag a driver into every user's build: pgx,
// franz-go, nats, amqp, sqlite, mysql, redis and gRPC live only in adapter/*,
// cmd/ and tests; core uses only the OpenTelemetry API, never its SDK.
func TestCorePackagesHaveNoDriverDependencies(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not found")
	}
	core := []string{".", "./consumer", "./inbox", "./dlq", "./outbox", "./relay", "./telemetry", "./internal/backoff",
		"./internal/clock", "./breaker", "./bulkhead", "./retry", "./throttle", "./hedge", "./fallback", "./resilience",
		"./resiliencehttp", "./idempotency", "./schema", "./registry"}
	forbidden := []string{"github.com/jackc/", "github.com/twmb/franz-go", "github.com/nats-io/", "github.com/rabbitmq/",
		"modernc.org/sqlite", "github.com/go-sql-driver/", "github.com/redis/", "google.golang.org/grpc",
		"go.opentelemetry.io/otel/sdk", "github.com/prometheus/"}
	for _, pkg := range core {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range forbidden {
				if strings.HasPrefix(dep, f) {
					t.Errorf("core package %s depends on %s", pkg, dep)
				}
			}
		}
	}
}
