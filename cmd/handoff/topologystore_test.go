package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/topology"
)

// serveInstance runs handoff serve with args (plus --addr 127.0.0.1:0)
// and returns its base URL and a stop function, which the test's cleanup
// also calls; serve must stop cleanly.
func serveInstance(t *testing.T, args ...string) (base string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), nil, stdout, stderr)
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(stdout.String(), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "health" {
				return strings.TrimSuffix(f[1], "/healthz"), stop
			}
		}
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("serve stopped at start: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve printed no URLs; stdout %q stderr %q", stdout.String(), stderr.String())
		}
	}
}

// publishes is an OTLP/JSON export of n publish spans of service to topic.
func publishes(service, topic string, n int) []byte {
	var spans []string
	for i := range n {
		spans = append(spans, fmt.Sprintf(`{"traceId":"5b8efff798038103d269b633813fc6%02x","spanId":"eee19b7ec3c1b1%02x","kind":4,
			"startTimeUnixNano":"1000000","endTimeUnixNano":"8000000",
			"attributes":[{"key":"messaging.system","value":{"stringValue":"nats"}},{"key":"messaging.destination.name","value":{"stringValue":%q}}]}`,
			i, i, topic))
	}
	return fmt.Appendf(nil, `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":%q}}]},
		"scopeSpans":[{"spans":[%s]}]}]}`, service, strings.Join(spans, ","))
}

// topologyEdges reads base's /topology, edges by "from>to".
func topologyEdges(t *testing.T, base, tok string) map[string]topology.Edge {
	t.Helper()
	code, body := httpCall(t, "GET", base+"/topology", tok, "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s/topology: %d %s", base, code, body)
	}
	var doc topology.Document
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	edges := map[string]topology.Edge{}
	for _, e := range doc.Edges {
		edges[e.From+">"+e.To] = e
	}
	return edges
}

// waitCalls polls base's /topology until the edge has want calls, for at
// most bound plus an allowance for a loaded machine, and returns how long
// it took.
func waitCalls(t *testing.T, base, tok, edge string, want int64, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(bound + 5*time.Second)
	for {
		e := topologyEdges(t, base, tok)[edge]
		if e.Observed.Calls == want {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: edge %s has %d calls after %v; want %d within --topology-flush + --topology-cache (%v)",
				base, edge, e.Observed.Calls, time.Since(start), want, bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Two handoff serve instances on one database (PostgreSQL, MariaDB, a
// SQLite file) share the observed topology: spans posted to one appear on
// the other's /topology within --topology-flush + --topology-cache, the
// counts both received add up, next to the declared edges, and all of it
// survives a restart of both.
func TestServe_InstancesShareTheObservedTopology(t *testing.T) {
	for name, db := range map[string]func(t *testing.T) string{
		"PostgreSQL": func(t *testing.T) string { return testenv.PostgresURL(t) },
		"MariaDB":    func(t *testing.T) string { return "mysql://" + testenv.MySQLDSN(t) },
		"SQLite":     func(t *testing.T) string { return filepath.Join(t.TempDir(), "h.db") },
	} {
		t.Run(name, func(t *testing.T) { testInstancesShareTopology(t, db(t)) })
	}
}

func testInstancesShareTopology(t *testing.T, dbURL string) {
	sys := filepath.Join(t.TempDir(), "handoff.yaml")
	os.WriteFile(sys, []byte(`version: 1
system: shop
services:
  - name: checkout
    owner: team-a
    integrations:
      - {kind: sync, protocol: http, to: payments, route: POST /charges}
  - name: payments
    owner: team-b
`), 0o644)
	const tok = "tok"
	const flush, cache = 500 * time.Millisecond, 250 * time.Millisecond
	args := []string{"--db", dbURL, "--token", tok, "--system", sys,
		"--topology-flush", flush.String(), "--topology-cache", cache.String()}
	a, stopA := serveInstance(t, args...)
	b, stopB := serveInstance(t, args...)
	topologyEdges(t, b, tok) // b's cache holds the graph before any span

	if code, body := httpCall(t, "POST", a+"/v1/traces", tok, "application/json", publishes("checkout", "orders", 3)); code != http.StatusOK {
		t.Fatalf("export to a: %d %s", code, body)
	}
	if e := topologyEdges(t, a, tok)["checkout>orders"]; e.Observed.Calls != 3 || e.Protocol != "nats" || e.LastSeen.IsZero() {
		t.Errorf("a's own spans, at once on a: %+v", e)
	}
	took := waitCalls(t, b, tok, "checkout>orders", 3, flush+cache)
	t.Logf("a's spans on b after %v (bound %v)", took, flush+cache)

	if code, body := httpCall(t, "POST", b+"/v1/traces", tok, "application/json", publishes("checkout", "orders", 2)); code != http.StatusOK {
		t.Fatalf("export to b: %d %s", code, body)
	}
	waitCalls(t, a, tok, "checkout>orders", 5, flush+cache)
	e := topologyEdges(t, b, tok)["checkout>orders"]
	if e.Observed.Calls != 5 || e.Observed.Total != 5*7*time.Millisecond || e.Observed.Latency[2] != 5 {
		t.Errorf("on b, both instances' spans: %+v; want 5 calls of 7 ms", e.Observed)
	}
	if e := topologyEdges(t, b, tok)["checkout>payments"]; !e.Declared || e.Observed.Calls != 0 {
		t.Errorf("declared edge on b: %+v", e)
	}

	stopA()
	stopB()
	a, _ = serveInstance(t, args...)
	b, _ = serveInstance(t, args...)
	for _, base := range []string{a, b} {
		edges := topologyEdges(t, base, tok)
		if e := edges["checkout>orders"]; e.Observed.Calls != 5 || e.Declared {
			t.Errorf("after a restart of both, %s: %+v; want the 5 observed calls", base, e)
		}
		if e := edges["checkout>payments"]; !e.Declared {
			t.Errorf("after a restart of both, %s: declared edge %+v", base, e)
		}
	}
}

// Bad topology settings are refused with the flag and the rule.
func TestServe_RefusesBadTopologyFlags(t *testing.T) {
	db := filepath.Join(t.TempDir(), "h.db")
	for _, c := range []struct{ flag, value, want string }{
		{"--topology-flush", "0s", "--topology-flush 0s: must be > 0"},
		{"--topology-cache", "-1s", "--topology-cache -1s: must be >= 0"},
		{"--topology-retention", "0s", "--topology-retention 0s: must be > 0"},
	} {
		var out, errb syncBuffer
		err := run(context.Background(), []string{"serve", "--db", db, "--token", "t", "--addr", "127.0.0.1:0", c.flag, c.value}, nil, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("serve %s %s: %v, want %q", c.flag, c.value, err, c.want)
		}
	}
}
