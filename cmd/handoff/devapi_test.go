package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/examples/demo/orders"
	"github.com/handoffhq/handoff/topology"
)

// runDev runs handoff dev on dir until stop is called (or the test ends),
// and returns the URLs it printed by name ("contract broker", "nats", ...)
// once it is ready.
func runDev(t *testing.T, dir string) (urls map[string]string, stderr *syncBuffer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--data-dir", dir, "--addr", "127.0.0.1:0", "--demo-interval", "1h"}, nil, stdout, stderr)
	}()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("dev returned %v on stop; it said:\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("dev did not stop within 30s")
		}
		if !strings.Contains(stderr.String(), "handoff dev: stopped") {
			t.Fatalf("dev did not say it stopped:\n%s", stderr.String())
		}
	}
	t.Cleanup(stop)
	urls = map[string]string{}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("dev stopped at start: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev not ready; stdout %q stderr %q", stdout.String(), stderr.String())
		}
		sc := bufio.NewScanner(strings.NewReader(stdout.String()))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) >= 2 {
				urls[strings.Join(f[:len(f)-1], " ")] = f[len(f)-1]
			}
		}
		if urls["data"] == "" {
			continue
		}
		if code, _ := httpCall(t, "GET", urls["ready"], "", "", nil); code == http.StatusOK {
			return urls, stderr, stop
		}
	}
}

// handoff dev serves on its one port every API handoff serve does, and
// keeps what they were given across a restart: a schema registered, a
// pact published, verified and deployable (can-i-deploy), the demo's dead
// letters listed, one edited and replayed through the API to the demo
// consumer, which handles it; spans posted to /v1/traces on /topology;
// /metrics parsing as Prometheus text with each API's requests. Stopped
// and started again on the same data directory, the subject, the pact and
// its verdict, and the dead letters are still there.
func TestDev_ServesEveryAPIAndKeepsTheirDataAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	urls, stderr, stop := runDev(t, dir)
	for _, name := range []string{"health", "ready", "metrics", "dead letters", "schema registry", "contract broker", "sagas", "topology", "otlp traces", "nats"} {
		if urls[name] == "" {
			t.Fatalf("dev printed no %s URL: %v", name, urls)
		}
	}
	base := strings.TrimSuffix(urls["health"], "/healthz")
	for name, path := range map[string]string{"metrics": "/metrics", "dead letters": "/dead-letters", "schema registry": "/registry",
		"contract broker": "/contracts", "sagas": "/sagas", "topology": "/topology", "otlp traces": "/v1/traces"} {
		if urls[name] != base+path {
			t.Errorf("%s URL %s, want %s", name, urls[name], base+path)
		}
	}

	// The schema registry: register, then get.
	const subject = "e2e.payments-value"
	schema := []byte(`{"schema": "{\"type\":\"object\",\"properties\":{\"amount\":{\"type\":\"integer\"}}}", "schemaType": "JSON"}`)
	code, body := httpCall(t, "POST", urls["schema registry"]+"/subjects/"+subject+"/versions", "", "application/vnd.schemaregistry.v1+json", schema)
	var registered struct{ ID int }
	if json.Unmarshal([]byte(body), &registered); code != http.StatusOK || registered.ID == 0 {
		t.Fatalf("register: %d %s", code, body)
	}
	latest := func() string {
		t.Helper()
		code, body := httpCall(t, "GET", urls["schema registry"]+"/subjects/"+subject+"/versions/latest", "", "", nil)
		if code != http.StatusOK {
			t.Fatalf("get %s: %d %s", subject, code, body)
		}
		return body
	}
	got := latest()
	if !strings.Contains(got, `"amount`) {
		t.Fatalf("get %s: %s", subject, got)
	}

	// The contract broker, through the contract CLI as CI would use it:
	// publish a pact, verify it against a provider and publish the result,
	// record the provider's deployment, ask can-i-deploy.
	broker := urls["contract broker"]
	pacts := t.TempDir()
	writePact(t, pacts, "paid")
	cli := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, append([]string{args[0], args[1], "--broker", broker}, args[2:]...)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	cli("contract", "publish", "--consumer-version", "w1", "--branch", "main", pacts)
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_state" {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":7,"status":"paid"}`))
	}))
	defer provider.Close()
	if out := cli("contract", "verify", "--provider", "orders", "--provider-url", provider.URL, "--state-url", provider.URL+"/_state",
		"--provider-version", "o1", "--branch", "main", "--selector", `{"mainBranch":true}`, "--publish"); !strings.Contains(out, "1 passed, 0 failed") {
		t.Fatalf("verify: %s", out)
	}
	cli("contract", "create-environment", "--name", "production", "--production")
	cli("contract", "record-deployment", "--pacticipant", "orders", "--version", "o1", "--environment", "production")
	canIDeploy := func() {
		t.Helper()
		if out := cli("contract", "can-i-deploy", "--pacticipant", "web", "--version", "w1", "--to-environment", "production"); !strings.Contains(out, "yes: web w1 can be deployed to production") {
			t.Fatalf("can-i-deploy: %s", out)
		}
	}
	canIDeploy()

	// The dead letters: the demo's three are listed; the blocked order,
	// fixed through the API, is replayed through the embedded NATS to the
	// demo consumer, which ships it.
	var letters []*dlq.Letter
	for deadline := time.Now().Add(60 * time.Second); len(letters) < 3; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("/dead-letters lists %d letters, want the demo's 3; dev said:\n%s", len(letters), stderr.String())
		}
		_, body := httpCall(t, "GET", urls["dead letters"]+"?consumer="+orders.Group, "", "", nil)
		letters = nil
		json.Unmarshal([]byte(body), &letters)
	}
	var blocked *dlq.Letter
	for _, l := range letters {
		if l.Class == dlq.ClassPermanent {
			blocked = l
		}
	}
	if blocked == nil {
		t.Fatalf("no permanent letter among the demo's: %+v", letters)
	}
	var order orders.Order
	json.Unmarshal(blocked.Message.Data, &order)
	order.Customer = "c-1"
	fixed, _ := json.Marshal(order)
	if code, body := httpCall(t, "PUT", urls["dead letters"]+"/"+blocked.ID+"/data", "", "application/json", fixed); code != http.StatusOK {
		t.Fatalf("edit: %d %s", code, body)
	}
	if code, body := httpCall(t, "POST", urls["dead letters"]+"/"+blocked.ID+"/replay", "", "application/json", nil); code != http.StatusOK {
		t.Fatalf("replay: %d %s", code, body)
	}
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(stderr.String(), "shipment created (inbox: exactly once)\" order="+order.Order); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the replayed order %s was not handled; dev said:\n%s", order.Order, stderr.String())
		}
	}

	// The topology: spans a service's OTLP/HTTP exporter posts become
	// edges.
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(urls["otlp traces"]))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "checkout"))))
	_, span := tp.Tracer("test").Start(ctx, "payments publish", trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", "payments")))
	span.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("export to %s: %v", urls["otlp traces"], err)
	}
	code, body = httpCall(t, "GET", urls["topology"], "", "", nil)
	var doc topology.Document
	if err := json.Unmarshal([]byte(body), &doc); code != http.StatusOK || err != nil {
		t.Fatalf("topology: %d %s (%v)", code, body, err)
	}
	found := false
	for _, e := range doc.Edges {
		found = found || e.From == "checkout" && e.To == "payments" && e.Observed.Calls == 1 && e.Protocol == "nats"
	}
	if !found {
		t.Errorf("no observed edge checkout > payments: %s", body)
	}
	observedEdge := func() bool {
		code, body := httpCall(t, "GET", urls["topology"], "", "", nil)
		var doc topology.Document
		if err := json.Unmarshal([]byte(body), &doc); code != http.StatusOK || err != nil {
			t.Fatalf("topology: %d %s (%v)", code, body, err)
		}
		for _, e := range doc.Edges {
			if e.From == "checkout" && e.To == "payments" && e.Observed.Calls == 1 {
				return true
			}
		}
		return false
	}

	// The sagas' API answers (the demo runs none: an empty page).
	if code, body := httpCall(t, "GET", urls["sagas"], "", "", nil); code != http.StatusOK || !strings.Contains(body, `"sagas"`) {
		t.Errorf("GET /sagas: %d %s", code, body)
	}

	// /metrics parses, and counts the requests to each API by route.
	code, body = httpCall(t, "GET", urls["metrics"], "", "", nil)
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if code != http.StatusOK || err != nil {
		t.Fatalf("/metrics: %d, does not parse: %v", code, err)
	}
	routes := map[string]bool{}
	for _, m := range fams["http_server_request_duration_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "http_route" {
				routes[l.GetValue()] = true
			}
		}
	}
	for _, r := range []string{"/registry/", "/contracts/", "/dead-letters", "/v1/traces", "/topology"} {
		if !routes[r] {
			t.Errorf("/metrics counts no request to %s (routes %v)", r, routes)
		}
	}
	stop()

	// Started again on the same data directory: the subject, the pact and
	// its verdict, and the dead letters (the replayed one closed) are
	// there.
	urls, stderr, _ = runDev(t, dir)
	broker = urls["contract broker"]
	if again := latest(); again != got {
		t.Errorf("after restart %s is %s, was %s", subject, again, got)
	}
	if code, body := httpCall(t, "GET", broker+"/pacts/provider/orders/consumer/web/latest", "", "", nil); code != http.StatusOK || !strings.Contains(body, "a request for order 7") {
		t.Errorf("the pact after restart: %d %s", code, body)
	}
	canIDeploy()
	if !observedEdge() {
		t.Errorf("the observed edge checkout > payments is gone after restart")
	}
	_, body = httpCall(t, "GET", urls["dead letters"]+"?consumer="+orders.Group, "", "", nil)
	var after []*dlq.Letter
	if err := json.Unmarshal([]byte(body), &after); err != nil || len(after) != len(letters) {
		t.Fatalf("dead letters after restart: %v %s, want the %d from before", err, body, len(letters))
	}
	was := map[string]bool{}
	for _, l := range letters {
		was[l.ID] = true
	}
	for _, l := range after {
		if !was[l.ID] {
			t.Errorf("letter %s after restart was not there before", l.ID)
		}
		if l.ID == blocked.ID && l.Open() {
			t.Errorf("the replayed letter is open again after restart")
		}
	}
	if strings.Contains(stderr.String(), "sent three events the consumer cannot handle") {
		t.Errorf("the demo made its dead letters again on a data directory that has them:\n%s", stderr.String())
	}
}

// handoff dev keeps its token rules over the routes it now shares with
// serve: with --token, every route (reads, writes, /v1/traces) refuses a
// request without it, even on loopback; the demo, given the same token,
// registers its schema through the guarded registry.
func TestDev_TokenGuardsEveryRoute(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--demo-interval", "1h", "--token", "tok"}, nil, stdout, stderr)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev: %v", err)
		}
	}()
	base := ""
	for deadline := time.Now().Add(60 * time.Second); base == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no URLs: %q %q", stdout.String(), stderr.String())
		}
		for _, line := range strings.Split(stdout.String(), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "health" {
				base = strings.TrimSuffix(f[1], "/healthz")
			}
		}
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, _ := httpCall(t, "GET", base+"/registry/subjects/"+orders.Topic+"-value/versions/latest", "tok", "", nil)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not register its schema: %d; dev said:\n%s", code, stderr.String())
		}
	}
	everyRouteNeeds(t, base, "tok")
}
