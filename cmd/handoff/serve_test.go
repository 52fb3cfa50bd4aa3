package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/topology"
)

// startServe runs handoff serve with args (plus --addr 127.0.0.1:0) until
// the test ends, and returns its base URL. At cleanup it must stop
// cleanly.
func startServe(t *testing.T, args ...string) (base string, stderr *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), nil, stdout, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v\n%s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), "handoff serve: stopped") {
				t.Errorf("serve did not say it stopped:\n%s", stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(stdout.String(), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "health" {
				return strings.TrimSuffix(f[1], "/healthz"), stderr
			}
		}
		select {
		case err := <-done:
			done <- nil // for the cleanup
			t.Fatalf("serve stopped at start: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve printed no URLs; stdout %q stderr %q", stdout.String(), stderr.String())
		}
	}
}

// httpCall makes one HTTP request, with token as Bearer when not empty, and
// returns the status and body.
func httpCall(t *testing.T, method, url, token, contentType string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// handoff serve on PostgreSQL (with NATS for replays) serves every API on
// one port: health, readiness, metrics, dead letters, the schema registry
// and the contract broker, each refusing a request without the token; it
// migrates the database itself, and stops cleanly.
func TestServe_PostgresServesEveryAPIBehindItsToken(t *testing.T) {
	pg := testenv.PostgresURL(t)
	natsURL, _ := embeddedNATS(t)
	const tok = "s3cret-token"
	base, _ := startServe(t, "--db", pg, "--broker", natsURL, "--token", tok)

	// A letter written by a service into the same database.
	ctx := context.Background()
	db, err := postgres.Open(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := dlq.New(postgres.DLQStore(db))
	if err != nil {
		t.Fatal(err)
	}
	l := &dlq.Letter{Consumer: "billing", Topic: "orders", Class: dlq.ClassPermanent, Errors: []string{"card declined"},
		Message: handoff.NewMessage("/orders", "order.placed", []byte(`{"id":1}`))}
	if err := q.Add(ctx, l); err != nil {
		t.Fatal(err)
	}

	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/dead-letters", "/dead-letters/" + l.ID,
		"/registry/subjects", "/contracts/", "/contracts/pacticipants"} {
		if code, body := httpCall(t, "GET", base+path, "", "", nil); code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d %s", path, code, body)
		}
		if code, body := httpCall(t, "GET", base+path, "wrong", "", nil); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d %s", path, code, body)
		}
		if code, body := httpCall(t, "GET", base+path, tok, "", nil); code != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
	if code, body := httpCall(t, "GET", base+"/readyz", tok, "", nil); !strings.Contains(body, `"database"`) {
		t.Errorf("readyz does not report the database: %d %s", code, body)
	}
	_, letter := httpCall(t, "GET", base+"/dead-letters/"+l.ID, tok, "", nil)
	if !strings.Contains(letter, "card declined") {
		t.Errorf("the letter over the API: %s", letter)
	}
	schema := []byte(`{"schema": "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"}}}", "schemaType": "JSON"}`)
	if code, body := httpCall(t, "POST", base+"/registry/subjects/orders-value/versions", "", "application/json", schema); code != http.StatusUnauthorized {
		t.Errorf("register without the token: %d %s", code, body)
	}
	if code, body := httpCall(t, "POST", base+"/registry/subjects/orders-value/versions", tok, "application/vnd.schemaregistry.v1+json", schema); code != http.StatusOK || !strings.Contains(body, `"id"`) {
		t.Fatalf("register: %d %s", code, body)
	}
	if code, body := httpCall(t, "GET", base+"/registry/subjects", tok, "", nil); code != http.StatusOK || !strings.Contains(body, "orders-value") {
		t.Errorf("subjects: %d %s", code, body)
	}
	// The broker's links point back under /contracts on this server.
	code, index := httpCall(t, "GET", base+"/contracts/", tok, "", nil)
	if code != http.StatusOK || !strings.Contains(index, base+"/contracts/") {
		t.Errorf("contract broker index: %d %s", code, index)
	}
	if code, body := httpCall(t, "POST", base+"/contracts/environments", tok, "application/json", []byte(`{"name":"production","production":true}`)); code/100 != 2 {
		t.Errorf("create environment: %d %s", code, body)
	}
	if _, body := httpCall(t, "GET", base+"/contracts/environments", tok, "", nil); !strings.Contains(body, "production") {
		t.Errorf("environments: %s", body)
	}
	// Metrics: the dead letter is counted by consumer and class, and the
	// API requests made above by route.
	_, metrics := httpCall(t, "GET", base+"/metrics", tok, "", nil)
	for _, want := range []string{"handoff_dlq", `"billing"`, "http_server_request_duration_seconds", `http_route="/registry/"`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	var parsed []map[string]any
	_, list := httpCall(t, "GET", base+"/dead-letters?consumer=billing", tok, "", nil)
	if err := json.Unmarshal([]byte(list), &parsed); err != nil || len(parsed) != 1 {
		t.Errorf("list: %v %s", err, list)
	}
}

// serve refuses to start open to the network by accident, and names the
// flag and the rule of each bad value.
func TestServe_RefusesBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--token", "t"}, "--db is required"},
		{[]string{"--db", "x.db"}, "--token or --token-file is required"},
		{[]string{"--db", "x.db", "--token", "t", "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"--db", "x.db", "--token", "t", "--drain", "0s"}, "--drain 0s: must be > 0"},
		{[]string{"--db", "x.db", "--token", "t", "stray"}, "takes no arguments"},
		{[]string{"--db", "ftp://x", "--token", "t"}, "unsupported scheme"},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"serve"}, c.args...), nil, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("serve %v: %v, want %q", c.args, err, c.want)
		}
	}
}

// Spans a service's own OTLP/HTTP exporter sends to serve's /v1/traces,
// with the token as a header, appear as edges on /topology, next to the
// ones --system declares; an export without the token, or over
// --otlp-max-bytes, is refused and adds nothing.
func TestServe_OTLPTracesBecomeTopologyEdges(t *testing.T) {
	pg := testenv.PostgresURL(t)
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
	const tok = "otlp-token"
	base, _ := startServe(t, "--db", pg, "--token", tok, "--system", sys, "--otlp-max-bytes", "65536")

	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(base+"/v1/traces"),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + tok}))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "checkout"))))
	defer tp.Shutdown(ctx)
	tr := tp.Tracer("test")
	for _, topic := range []string{"orders", "orders"} {
		_, s := tr.Start(ctx, topic+" publish", trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
			attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", topic)))
		s.End()
	}
	_, s := tr.Start(ctx, "GET", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("http.request.method", "GET"), attribute.String("peer.service", "inventory")))
	s.End()

	code, body := httpCall(t, "GET", base+"/topology", tok, "", nil)
	if code != http.StatusOK {
		t.Fatalf("topology: %d %s", code, body)
	}
	var doc topology.Document
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	edges := map[string]topology.Edge{}
	for _, e := range doc.Edges {
		edges[e.From+">"+e.To] = e
	}
	if e := edges["checkout>orders"]; e.Observed.Calls != 2 || e.Protocol != "nats" || e.Declared {
		t.Errorf("publish edge: %+v", e)
	}
	if e := edges["checkout>inventory"]; e.Observed.Calls != 1 || e.Declared {
		t.Errorf("observed call edge: %+v", e)
	}
	if e := edges["checkout>payments"]; !e.Declared || e.Observed.Calls != 0 {
		t.Errorf("declared edge: %+v", e)
	}
	if code, dot := httpCall(t, "GET", base+"/topology?format=dot", tok, "", nil); code != http.StatusOK || !strings.Contains(dot, "digraph") {
		t.Errorf("dot: %d %s", code, dot)
	}

	req := []byte(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"intruder"}}]},"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","kind":4,"attributes":[{"key":"messaging.destination.name","value":{"stringValue":"orders"}}]}]}]}]}`)
	if code, body := httpCall(t, "POST", base+"/v1/traces", "", "application/json", req); code != http.StatusUnauthorized {
		t.Errorf("export without the token: %d %s", code, body)
	}
	if code, body := httpCall(t, "POST", base+"/v1/traces", tok, "application/json", append(req, bytes.Repeat([]byte(" "), 70000)...)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("export over --otlp-max-bytes: %d %s", code, body)
	}
	if code, body := httpCall(t, "POST", base+"/v1/traces", tok, "text/plain", req); code != http.StatusUnsupportedMediaType {
		t.Errorf("export as text/plain: %d %s", code, body)
	}
	if _, body := httpCall(t, "GET", base+"/topology", tok, "", nil); strings.Contains(body, "intruder") {
		t.Errorf("a refused export reached the graph: %s", body)
	}
	if code, body := httpCall(t, "POST", base+"/v1/traces", tok, "application/json", req); code != http.StatusOK {
		t.Errorf("export with the token: %d %s", code, body)
	}
	if _, body := httpCall(t, "GET", base+"/topology", tok, "", nil); !strings.Contains(body, "intruder") {
		t.Errorf("the accepted export is not in the graph: %s", body)
	}
}

// routeTable reads the routes a library handler registers ("METHOD
// /path/{param}") from its source, with each parameter filled in.
func routeTable(t *testing.T, file string) [][2]string {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	for _, m := range regexp.MustCompile(`(?:HandleFunc|read|write|admin)\("([A-Z]+) (/[^"]*)"`).FindAllStringSubmatch(string(src), -1) {
		path := strings.ReplaceAll(m[2], "{$}", "")
		path = regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllString(path, "x")
		out = append(out, [2]string{m[1], path})
	}
	if len(out) < 10 {
		t.Fatalf("%s: only %d routes found", file, len(out))
	}
	return out
}

// Every route serve mounts refuses a request without the token, reads and
// writes alike: the registry's and the contract broker's route tables
// (walked from their source), the dead-letter API's, and serve's own.
func TestServe_EveryRouteNeedsTheToken(t *testing.T) {
	base, _ := startServe(t, "--db", filepath.Join(t.TempDir(), "h.db"), "--token", "tok")
	everyRouteNeeds(t, base, "tok")
}

// everyRouteNeeds walks every route of buildAPI's handler at base: each
// refuses a request without the token (401) and lets one with tok through.
func everyRouteNeeds(t *testing.T, base, tok string) {
	t.Helper()
	const id = "01a2467c-0000-7000-8000-000000000000"
	routes := [][2]string{
		{"GET", "/healthz"}, {"GET", "/readyz"}, {"GET", "/metrics"}, {"GET", "/topology"}, {"POST", "/v1/traces"},
		{"GET", "/dead-letters"}, {"GET", "/dead-letters/" + id}, {"DELETE", "/dead-letters/" + id},
		{"POST", "/dead-letters/" + id + "/replay"}, {"PUT", "/dead-letters/" + id + "/data"},
		{"GET", "/sagas"}, {"GET", "/sagas/" + id}, {"POST", "/sagas/" + id + "/retry"}, {"POST", "/sagas/" + id + "/skip"},
		{"POST", "/sagas/" + id + "/abort"},
	}
	for _, r := range routeTable(t, "../../registry/server.go") {
		routes = append(routes, [2]string{r[0], "/registry" + r[1]})
	}
	for _, r := range routeTable(t, "../../contract/broker/broker.go") {
		routes = append(routes, [2]string{r[0], "/contracts" + r[1]})
	}
	writes := 0
	for _, r := range routes {
		if r[0] != "GET" {
			writes++
		}
		if code, body := httpCall(t, r[0], base+r[1], "", "application/json", []byte(`{}`)); code != http.StatusUnauthorized {
			t.Errorf("%s %s without the token: %d %s", r[0], r[1], code, body)
		}
		if code, _ := httpCall(t, r[0], base+r[1], tok, "application/json", []byte(`{}`)); code == http.StatusUnauthorized {
			t.Errorf("%s %s with the token: 401", r[0], r[1])
		}
	}
	if writes < 30 {
		t.Errorf("only %d mutating routes walked", writes)
	}
}

// serve runs on MariaDB too: it migrates the database, is ready, and its
// registry, broker and dead-letter API answer.
func TestServe_MariaDB(t *testing.T) {
	dsn := testenv.MySQLDSN(t)
	base, _ := startServe(t, "--db", "mysql://"+dsn, "--token", "tok")
	if code, body := httpCall(t, "GET", base+"/readyz", "tok", "", nil); code != http.StatusOK {
		t.Fatalf("readyz: %d %s", code, body)
	}
	schema := []byte(`{"schema": "{\"type\":\"object\"}", "schemaType": "JSON"}`)
	if code, body := httpCall(t, "POST", base+"/registry/subjects/s-value/versions", "tok", "application/json", schema); code != http.StatusOK {
		t.Errorf("register: %d %s", code, body)
	}
	if code, body := httpCall(t, "POST", base+"/contracts/environments", "tok", "application/json", []byte(`{"name":"test"}`)); code/100 != 2 {
		t.Errorf("create environment: %d %s", code, body)
	}
	if code, body := httpCall(t, "GET", base+"/dead-letters", "tok", "", nil); code != http.StatusOK || strings.TrimSpace(body) != "[]" {
		t.Errorf("dead letters: %d %s", code, body)
	}
	if code, body := httpCall(t, "GET", base+"/sagas?status=stuck&counts=true", "tok", "", nil); code != http.StatusOK || strings.TrimSpace(body) != `{"sagas":[]}` {
		t.Errorf("sagas: %d %s", code, body)
	}
}

// On stop, serve refuses new connections at once, lets a request in
// flight finish and answer, then returns.
func TestServe_DrainsInFlightRequestsOnStop(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	serveMount = func(mux *http.ServeMux) {
		mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
			close(started)
			<-release
			w.Write([]byte("finished"))
		})
	}
	t.Cleanup(func() { serveMount = nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "h.db"), "--token", "tok"}, nil, stdout, stderr)
	}()
	base := ""
	for deadline := time.Now().Add(30 * time.Second); base == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no URLs: %s", stderr.String())
		}
		for _, line := range strings.Split(stdout.String(), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "health" {
				base = strings.TrimSuffix(f[1], "/healthz")
			}
		}
	}
	answer := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest("GET", base+"/slow", nil)
		req.Header.Set("Authorization", "Bearer tok")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			answer <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		answer <- string(b)
	}()
	<-started
	cancel()
	host := strings.TrimPrefix(base, "http://")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.Dial("tcp", host)
		if err != nil {
			break // no longer accepting
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("serve still accepts connections after stop")
		}
	}
	select {
	case err := <-done:
		t.Fatalf("serve returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	if got := <-answer; got != "finished" {
		t.Fatalf("the request in flight got %q", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// serve with --token-file: each route takes a token of its scope and
// refuses a lower one with 403 naming the scope, through serve's own guard
// (dead letters, traces) and through the registry's and broker's.
func TestServe_ScopedTokens(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	if err := os.WriteFile(file, []byte("# ops\nread:r-tok\nwrite:w-tok\nadmin:a-tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base, _ := startServe(t, "--db", filepath.Join(dir, "h.db"), "--token-file", file)
	const id = "01a2467c-0000-7000-8000-000000000000"
	schema := []byte(`{"schema": "{\"type\":\"object\"}", "schemaType": "JSON"}`)
	for _, c := range []struct {
		method, path string
		body         []byte
		lowest       string // lowest scope let through
	}{
		{"GET", "/dead-letters", nil, "read"},
		{"GET", "/topology", nil, "read"},
		{"GET", "/metrics", nil, "read"},
		{"PUT", "/dead-letters/" + id + "/data", []byte(`{}`), "write"},
		{"POST", "/dead-letters/" + id + "/replay", []byte(`{}`), "write"},
		{"DELETE", "/dead-letters/" + id, nil, "admin"},
		{"GET", "/sagas?status=stuck", nil, "read"},
		{"GET", "/sagas/" + id, nil, "read"},
		{"POST", "/sagas/" + id + "/retry", nil, "write"},
		{"POST", "/sagas/" + id + "/skip", nil, "write"},
		{"POST", "/sagas/" + id + "/abort", nil, "admin"},
		{"GET", "/registry/subjects", nil, "read"},
		{"POST", "/registry/subjects/s-value/versions", schema, "write"},
		{"PUT", "/registry/mode", []byte(`{"mode":"READWRITE"}`), "admin"},
		{"POST", "/contracts/environments", []byte(`{"name":"test"}`), "admin"},
	} {
		for i, scope := range []string{"read", "write", "admin"} {
			code, body := httpCall(t, c.method, base+c.path, scope[:1]+"-tok", "application/json", c.body)
			allowed := i >= map[string]int{"read": 0, "write": 1, "admin": 2}[c.lowest]
			switch {
			case allowed && (code == http.StatusUnauthorized || code == http.StatusForbidden):
				t.Errorf("%s %s with a %s token: %d %s, want it let through", c.method, c.path, scope, code, body)
			case !allowed && (code != http.StatusForbidden || !strings.Contains(body, c.lowest)):
				t.Errorf("%s %s with a %s token: %d %s, want 403 naming %s", c.method, c.path, scope, code, body, c.lowest)
			}
		}
		if code, _ := httpCall(t, c.method, base+c.path, "", "application/json", c.body); code != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %d, want 401", c.method, c.path, code)
		}
	}
}
