package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/contract"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/topology"
)

// startSQLiteServe runs handoff serve on a SQLite file with token tok
// until the test ends; it returns the base URL and the file.
func startSQLiteServe(t *testing.T, tok string, args ...string) (base, db string) {
	t.Helper()
	db = filepath.Join(t.TempDir(), "handoff.db")
	base, _ = startServe(t, append([]string{"--db", db, "--token", tok}, args...)...)
	return base, db
}

// opsCLI runs the CLI with args and returns its stdout, its stderr and
// its error.
func opsCLI(args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	err := run(context.Background(), args, nil, &out, &errb)
	return out.String(), errb.String(), err
}

// refusedURL is a loopback URL nothing listens on.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// clearOpsEnv keeps the developer's environment out of a test.
func clearOpsEnv(t *testing.T) {
	for _, e := range []string{"HANDOFF_SERVER", "HANDOFF_TOKEN", "HANDOFF_REGISTRY_URL", "HANDOFF_REGISTRY_TOKEN",
		"HANDOFF_BROKER_URL", "HANDOFF_BROKER_TOKEN", "PACT_BROKER_BASE_URL", "PACT_BROKER_TOKEN"} {
		t.Setenv(e, "")
	}
}

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// The schema commands through handoff serve's registry: register (and
// again, which registers nothing), get by subject, version and id, check a
// compatible and an incompatible change (exit status 1, each reason
// printed), a refused registration pointing at check, list subjects and
// versions; an Avro schema registered with a reference; and each mistake
// answered with what to do next.
func TestSchemaCLI_ThroughServe(t *testing.T) {
	clearOpsEnv(t)
	const tok = "schema-token"
	base, _ := startSQLiteServe(t, tok)
	dir := t.TempDir()
	v1 := writeFile(t, dir, "v1.json", `{"type":"object","properties":{"id":{"type":"string"}},"required":["id"],"additionalProperties":false}`)
	v2 := writeFile(t, dir, "v2.json", `{"type":"object","properties":{"id":{"type":"string"},"note":{"type":"string"}},"required":["id"],"additionalProperties":false}`)
	v3 := writeFile(t, dir, "v3.json", `{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"],"additionalProperties":false}`)
	const subj = "orders-value"
	cli := func(args ...string) (string, string, error) {
		return opsCLI(append(args, "--server", base, "--token", tok)...)
	}
	must := func(args ...string) (string, string) {
		t.Helper()
		out, errs, err := cli(args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s%s", args, err, out, errs)
		}
		return out, errs
	}

	out, _ := must("schema", "register", subj, v1)
	if !strings.Contains(out, "registered "+v1+" as orders-value version 1 (id ") {
		t.Fatalf("register: %s", out)
	}
	out, _ = must("schema", "register", subj, v1, "--json")
	var reg struct {
		Subject     string
		Version, ID int
		New         bool
	}
	if err := json.Unmarshal([]byte(out), &reg); err != nil || reg.Version != 1 || reg.ID < 1 || reg.New {
		t.Fatalf("register again --json: %v %+v\n%s", err, reg, out)
	}

	out, errs := must("schema", "get", subj)
	if !strings.Contains(out, `"additionalProperties": false`) || !strings.Contains(errs, "orders-value version 1, id ") || !strings.Contains(errs, "JSON") {
		t.Fatalf("get: %s\n%s", out, errs)
	}
	out, _ = must("schema", "get", subj, "--version", "1", "--json")
	var r registry.Registered
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.ID != reg.ID || r.Version != 1 || r.SchemaType != "JSON" || !strings.Contains(r.Schema, `"required"`) {
		t.Fatalf("get --json: %v %+v\n%s", err, r, out)
	}
	if out, _ := must("schema", "get", "--id", itoa(reg.ID)); !strings.Contains(out, `"id": {`) {
		t.Fatalf("get --id: %s", out)
	}

	out, _ = must("schema", "check", subj, v2)
	if !strings.HasPrefix(out, "compatible: ") || !strings.Contains(out, "at level BACKWARD") {
		t.Fatalf("check a compatible change: %s", out)
	}
	out, _, err := cli("schema", "check", subj, v3)
	if !errors.Is(err, errSchemaIncompatible) || !strings.HasPrefix(out, "INCOMPATIBLE: ") || !strings.Contains(out, "\n  ") || !strings.Contains(out, "id") {
		t.Fatalf("check an incompatible change: %v\n%s", err, out)
	}
	out, _, err = cli("schema", "check", subj, v3, "--version", "1", "--json")
	var verdict struct {
		Subject, Version string
		IsCompatible     bool `json:"is_compatible"`
		Messages         []string
	}
	if !errors.Is(err, errSchemaIncompatible) || json.Unmarshal([]byte(out), &verdict) != nil || verdict.IsCompatible || len(verdict.Messages) == 0 || verdict.Version != "1" {
		t.Fatalf("check --json: %v %+v\n%s", err, verdict, out)
	}
	t.Setenv("HANDOFF_SERVER", base)
	t.Setenv("HANDOFF_TOKEN", tok)
	if code, out := exitCode(t, "schema", "check", subj, v3); code != 1 || !strings.Contains(out, "INCOMPATIBLE") {
		t.Fatalf("check an incompatible change: exit %d\n%s", code, out)
	}
	if code, out := exitCode(t, "schema", "check", subj, v2); code != 0 {
		t.Fatalf("check a compatible change: exit %d\n%s", code, out)
	}
	t.Setenv("HANDOFF_SERVER", "")
	t.Setenv("HANDOFF_TOKEN", "")

	if _, _, err := cli("schema", "register", subj, v3); err == nil || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "handoff schema check orders-value FILE") {
		t.Fatalf("register an incompatible change: %v", err)
	}
	must("schema", "register", subj, v2)

	// Avro, with a reference to another subject's record.
	money := writeFile(t, dir, "money.avsc", `{"type":"record","name":"Money","namespace":"shop","fields":[{"name":"cents","type":"long"}]}`)
	order := writeFile(t, dir, "order.avsc", `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"total","type":"shop.Money"}]}`)
	must("schema", "register", "money-value", money)
	out, _ = must("schema", "register", "order-value", order, "--reference", "shop.Money=money-value:1")
	if !strings.Contains(out, "order-value version 1") {
		t.Fatalf("register with a reference: %s", out)
	}
	if _, errs := must("schema", "get", "order-value"); !strings.Contains(errs, "references shop.Money = money-value version 1") || !strings.Contains(errs, "AVRO") {
		t.Fatalf("get with a reference: %s", errs)
	}

	out, errs = must("schema", "list")
	if out != "money-value\norder-value\norders-value\n" || !strings.Contains(errs, "3 subject(s)") {
		t.Fatalf("list: %q %q", out, errs)
	}
	if out, _ := must("schema", "list", "--json"); !strings.Contains(out, `"orders-value"`) {
		t.Fatalf("list --json: %s", out)
	}
	if out, _ := must("schema", "list", subj); out != "1\n2\n" {
		t.Fatalf("list SUBJECT: %q", out)
	}

	// Mistakes, each answered with the next step.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"schema", "get", "no.such", "--server", base, "--token", tok}, "no subject \"no.such\": `handoff schema list` shows the subjects"},
		{[]string{"schema", "check", "no.such", v1, "--version", "1", "--server", base, "--token", tok}, "no subject \"no.such\""},
		{[]string{"schema", "get", subj, "--version", "9", "--server", base, "--token", tok}, "has no version 9: `handoff schema list orders-value` shows its versions"},
		{[]string{"schema", "list", "--server", base}, "give the token with --token or HANDOFF_TOKEN"},
		{[]string{"schema", "list", "--server", base, "--token", "wrong"}, "401"},
		{[]string{"schema", "list", "--registry", base + "/registry"}, "give the token with --token or HANDOFF_REGISTRY_TOKEN"},
		{[]string{"schema", "list", "--registry", base, "--token", tok}, "no schema registry answers at " + base},
		{[]string{"schema", "list", "--server", refusedURL(t)}, "is handoff serve or handoff dev running at http://127.0.0.1:"},
		{[]string{"schema", "list", "--registry", refusedURL(t)}, "is the schema registry running at http://127.0.0.1:"},
		{[]string{"schema", "list"}, "--server URL (a handoff server, or HANDOFF_SERVER) or --registry URL"},
		{[]string{"schema", "list", "--server", base, "--registry", base}, "give --server or --registry, not both"},
		{[]string{"schema", "list", "--server", "localhost:8477"}, "must be the server's http or https URL"},
		{[]string{"schema", "register", subj, v1, "--reference", "Money=money-value", "--server", base}, "must be name=subject:version"},
		{[]string{"schema", "register", subj, v1, "--type", "XML", "--server", base}, "--type"},
		{[]string{"schema", "check", subj, v1, "--version", "0", "--server", base}, "--version \"0\": must be latest or a number >= 1"},
		{[]string{"schema", "get", subj, "--id", "1", "--server", base}, "give SUBJECT or --id, not both"},
		{[]string{"schema", "get", "--id", "999", "--server", base, "--token", tok}, "no schema with id 999"},
		{[]string{"schema", "register", subj, filepath.Join(dir, "missing.json"), "--server", base}, "missing.json"},
	} {
		out, errs, err := opsCLI(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error saying %q\n%s%s", c.args, err, c.want, out, errs)
		}
	}
	// The environment names the server and the token.
	t.Setenv("HANDOFF_SERVER", base)
	t.Setenv("HANDOFF_TOKEN", tok)
	if out, _, err := opsCLI("schema", "list", subj); err != nil || out != "1\n2\n" {
		t.Fatalf("list with HANDOFF_SERVER and HANDOFF_TOKEN: %v %q", err, out)
	}
	t.Setenv("HANDOFF_REGISTRY_URL", base+"/registry")
	if out, _, err := opsCLI("schema", "list", subj); err != nil || out != "1\n2\n" {
		t.Fatalf("list with HANDOFF_REGISTRY_URL (and HANDOFF_TOKEN): %v %q", err, out)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// dlq list --incidents through handoff serve groups the letters as it does
// on the database itself (the same JSON), takes the filters, and with
// --error (which the server does not know) groups the matching letters
// itself.
func TestDLQ_IncidentsThroughServe(t *testing.T) {
	clearOpsEnv(t)
	ctx := context.Background()
	const tok = "incidents-token"
	base, path := startSQLiteServe(t, tok)
	db, err := openDB(ctx, "db", path, dbOpen{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, _ := dlq.New(db.dlqStore())
	add := func(consumer, class, e string) {
		l := &dlq.Letter{Consumer: consumer, Topic: "orders", Class: class, Errors: []string{e}, Attempts: 1,
			Message: handoff.NewMessage("/orders", "order.placed", []byte(`{"order":"o-1"}`))}
		if err := q.Add(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		add("billing", dlq.ClassHandler, "charge: dial tcp 10.0.0.7:443: connect: connection refused")
	}
	add("shipping", dlq.ClassSchema, "total: must be >= 0")

	remote, errs, err := opsCLI("dlq", "list", "--incidents", "--json", "--server", base, "--token", tok)
	if err != nil {
		t.Fatalf("list --incidents --server: %v %s", err, errs)
	}
	local, _, err := opsCLI("dlq", "list", "--incidents", "--json", "--db", path)
	if err != nil {
		t.Fatal(err)
	}
	var in []dlq.Incident
	if err := json.Unmarshal([]byte(remote), &in); err != nil || len(in) != 2 || in[0].Count+in[1].Count != 4 {
		t.Fatalf("incidents: %v %+v\n%s", err, in, remote)
	}
	if remote != local {
		t.Fatalf("--server and --db differ:\n%s\n%s", remote, local)
	}
	out, errs, err := opsCLI("dlq", "list", "--incidents", "--server", base, "--token", tok)
	if err != nil || !strings.Contains(out, "incident 2: ") || !strings.Contains(errs, "4 dead letters in 2 incident(s)") {
		t.Fatalf("list --incidents for people: %v\n%s%s", err, out, errs)
	}
	out, _, err = opsCLI("dlq", "list", "--incidents", "--json", "--consumer", "shipping", "--server", base, "--token", tok)
	if err := json.Unmarshal([]byte(out), &in); err != nil || len(in) != 1 || in[0].Count != 1 || in[0].Consumers[0] != "shipping" {
		t.Fatalf("--incidents --consumer shipping: %v %+v\n%s", err, in, out)
	}
	out, _, err = opsCLI("dlq", "list", "--incidents", "--json", "--error", "REFUSED", "--server", base, "--token", tok)
	if err := json.Unmarshal([]byte(out), &in); err != nil || len(in) != 1 || in[0].Count != 3 {
		t.Fatalf("--incidents --error: %v %+v\n%s", err, in, out)
	}
	if _, _, err := opsCLI("dlq", "list", "--incidents", "--server", base); err == nil || !strings.Contains(err.Error(), "give the token with --token or HANDOFF_TOKEN") {
		t.Fatalf("--incidents without the token: %v", err)
	}
	if _, _, err := opsCLI("dlq", "list", "--incidents", "--server", refusedURL(t)); err == nil || !strings.Contains(err.Error(), "is handoff serve or handoff dev running at") {
		t.Fatalf("--incidents with no server: %v", err)
	}
}

// topology export and show with --server read the graph handoff serve
// holds: declared by its --system, observed from the traces posted to
// /v1/traces. Each export is what GET /topology answers in that format;
// show lists the observed drift, and with --file the owners' findings.
func TestTopologyCLI_ThroughServe(t *testing.T) {
	clearOpsEnv(t)
	sys := writeFile(t, t.TempDir(), "handoff.yaml", `version: 1
system: shop
services:
  - name: checkout
    owner: team-a
    integrations:
      - {kind: sync, protocol: http, to: payments, route: POST /charges}
  - name: payments
    owner: team-b
`)
	const tok = "topology-token"
	base, _ := startSQLiteServe(t, tok, "--system", sys)
	spans := []byte(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},"scopeSpans":[{"spans":[` +
		`{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"orders publish","kind":4,"attributes":[{"key":"messaging.system","value":{"stringValue":"nats"}},{"key":"messaging.destination.name","value":{"stringValue":"orders"}}]},` +
		`{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175","name":"GET","kind":3,"attributes":[{"key":"http.request.method","value":{"stringValue":"GET"}},{"key":"peer.service","value":{"stringValue":"inventory"}}]}` +
		`]}]}]}`)
	if code, body := httpCall(t, "POST", base+"/v1/traces", tok, "application/json", spans); code != http.StatusOK {
		t.Fatalf("post spans: %d %s", code, body)
	}

	cli := func(args ...string) (string, string, error) {
		return opsCLI(append(args, "--server", base, "--token", tok)...)
	}
	for _, format := range []string{"json", "dot", "mermaid"} {
		out, errs, err := cli("topology", "export", "--format", format)
		code, want := httpCall(t, "GET", base+"/topology?format="+format, tok, "", nil)
		if err != nil || code != http.StatusOK || out != want {
			t.Errorf("export --format %s: %v %s\n%s\nwant (%d)\n%s", format, err, errs, out, code, want)
		}
	}
	out, _, err := cli("topology", "export", "--format", "json")
	var doc topology.Document
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	edges := map[string]topology.Edge{}
	for _, e := range doc.Edges {
		edges[e.From+">"+e.To] = e
	}
	if e := edges["checkout>orders"]; e.Observed.Calls != 1 || e.Declared {
		t.Errorf("observed publish: %+v", e)
	}
	if e := edges["checkout>payments"]; !e.Declared || e.Observed.Calls != 0 {
		t.Errorf("declared call: %+v", e)
	}
	if out, _, err := cli("topology", "export", "--format", "svg"); err != nil || !strings.Contains(out, "<svg") || !strings.Contains(out, "inventory") {
		t.Errorf("export --format svg: %v\n%s", err, out)
	}

	out, _, err = cli("topology", "show")
	if err != nil || !strings.Contains(out, "server "+base+": 3 services, 1 topics (no handoff.yaml") ||
		!strings.Contains(out, "observed, not declared: checkout -> inventory (sync)") || !strings.Contains(out, "declared, never observed: checkout -> payments (sync)") {
		t.Errorf("show: %v\n%s", err, out)
	}
	out, _, err = cli("topology", "show", "--file", sys, "--json")
	var shown struct {
		Edges    []topology.Edge
		Findings []topology.Finding
	}
	if err != nil || json.Unmarshal([]byte(out), &shown) != nil || len(shown.Edges) != len(doc.Edges) || shown.Findings == nil {
		t.Errorf("show --file --json: %v\n%s", err, out)
	}
	if out, _, err := cli("topology", "show", "--file", sys); err != nil || !strings.Contains(out, "server "+base+", system shop: 2 services") {
		t.Errorf("show --file: %v\n%s", err, out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"topology", "show", "--server", base}, "give the token with --token or HANDOFF_TOKEN"},
		{[]string{"topology", "export", "--format", "dot", "--server", refusedURL(t)}, "is handoff serve or handoff dev running at http://127.0.0.1:"},
		{[]string{"topology", "export", "--format", "png", "--server", base, "--token", tok}, "--format is json, dot, mermaid or svg"},
		{[]string{"topology", "show", "--server", "127.0.0.1:8477"}, "must be the server's http or https URL"},
		{[]string{"topology", "show", "--server", base + "/registry", "--token", tok}, "this server answers no /topology"},
	} {
		out, errs, err := opsCLI(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error saying %q\n%s%s", c.args, err, c.want, out, errs)
		}
	}
}

// The contract commands through handoff serve's broker (--server, the
// broker at URL/contracts): publish, create an environment, can-i-deploy
// refuses an unverified pact (exit status 1), verify from the broker and
// publish the results, record the deployment, and can-i-deploy agrees; the
// flags stand anywhere, and each mistake says what to do next.
func TestContractCLI_ThroughServe(t *testing.T) {
	clearOpsEnv(t)
	const tok = "contract-token"
	base, _ := startSQLiteServe(t, tok)
	dir := t.TempDir()
	writePact(t, dir, "paid")
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":7,"status":"paid"}`))
	}))
	defer provider.Close()
	cli := func(args ...string) (string, string, error) {
		return opsCLI(append(args, "--server", base, "--token", tok)...)
	}
	must := func(args ...string) string {
		t.Helper()
		out, errs, err := cli(args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s%s", args, err, out, errs)
		}
		return out
	}
	if out := must("contract", "publish", dir, "--consumer-version", "w1", "--branch", "main"); !strings.Contains(out, "published the pacts of web w1 on branch main with orders") {
		t.Fatalf("publish: %s", out)
	}
	must("contract", "create-environment", "--name", "production", "--production")
	out, _, err := cli("contract", "can-i-deploy", "--pacticipant", "web", "--version", "w1", "--to-environment", "production")
	if !errors.Is(err, errNotDeployable) || !strings.Contains(out, "no: web w1 cannot be deployed to production") {
		t.Fatalf("can-i-deploy before verification: %v\n%s", err, out)
	}
	if out := must("contract", "verify", "--provider", "orders", "--provider-url", provider.URL, "--provider-version", "o1",
		"--branch", "main", "--selector", `{"mainBranch":true}`, "--publish"); !strings.Contains(out, "1 passed, 0 failed") {
		t.Fatalf("verify: %s", out)
	}
	must("contract", "record-deployment", "--pacticipant", "orders", "--version", "o1", "--environment", "production")
	out = must("contract", "can-i-deploy", "--json", "--pacticipant", "web", "--version", "w1", "--to-environment", "production")
	var v contract.Verdict
	if err := json.Unmarshal([]byte(out), &v); err != nil || !v.Deployable {
		t.Fatalf("can-i-deploy --json: %v %+v\n%s", err, v, out)
	}

	// A broker in the environment yields to --server on the command line.
	t.Setenv("HANDOFF_BROKER_URL", refusedURL(t))
	if _, _, err := cli("contract", "can-i-deploy", "--pacticipant", "web", "--version", "w1", "--to-environment", "production"); err != nil {
		t.Fatalf("--server with HANDOFF_BROKER_URL set: %v", err)
	}
	t.Setenv("HANDOFF_BROKER_URL", "")
	canI := []string{"contract", "can-i-deploy", "--pacticipant", "web", "--version", "w1", "--to-environment", "production"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{append(canI, "--server", base), "broker answered 401: Unauthorized: a valid token is required (give the token with --token or HANDOFF_TOKEN)"},
		{append(canI, "--server", refusedURL(t)), "is handoff serve or handoff dev running at http://127.0.0.1:"},
		{append(canI, "--broker", refusedURL(t)), "is the contract broker (handoff's or the Pact Broker) running at http://127.0.0.1:"},
		{append(canI, "--server", base, "--broker", base), "give --server or --broker, not both"},
		{canI, "--broker URL (or HANDOFF_BROKER_URL) or --server URL"},
		{[]string{"contract", "publish", dir, "--consumer-version", "w2", "--server", base}, "give the token with --token or HANDOFF_TOKEN"},
	} {
		out, errs, err := opsCLI(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error saying %q\n%s%s", c.args, err, c.want, out, errs)
		}
	}
}

// A token whose scope is too narrow is told so, with the scope needed, by
// each command through the server; schema impact reads the server's
// registry too.
func TestOps_NarrowTokenIsToldTheScopeNeeded(t *testing.T) {
	clearOpsEnv(t)
	dir := t.TempDir()
	tokens := writeFile(t, dir, "tokens", "read:r-tok\nwrite:w-tok\n")
	base, _ := startServe(t, "--db", filepath.Join(dir, "h.db"), "--token-file", tokens)
	v1 := writeFile(t, dir, "v1.json", `{"type":"object","properties":{"id":{"type":"string"}},"additionalProperties":false}`)
	writePact(t, dir, "paid")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"schema", "register", "s-value", v1}, "write scope"},
		{[]string{"contract", "create-environment", "--name", "test"}, "admin scope"},
		{[]string{"dlq", "replay", "01a2467c-0000-7000-8000-000000000000"}, "write scope"},
	} {
		out, errs, err := opsCLI(append(c.args, "--server", base, "--token", "r-tok")...)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "give --token a token of the scope named") {
			t.Errorf("%v with a read token: %v, want it to name the %s\n%s%s", c.args, err, c.want, out, errs)
		}
	}
	if out, errs, err := opsCLI("schema", "register", "s-value", v1, "--server", base, "--token", "w-tok"); err != nil {
		t.Fatalf("register with a write token: %v\n%s%s", err, out, errs)
	}
	out, errs, err := opsCLI("schema", "impact", "s-value", v1, "--server", base, "--token", "r-tok")
	if err != nil || !strings.Contains(out, "subject s-value") || !strings.Contains(out, "compatible") {
		t.Fatalf("impact --server: %v\n%s%s", err, out, errs)
	}
}

// handoff check --server asks the server's registry and broker: the
// schema checkpoint finds the subject registered there, can-i-deploy asks
// its broker; without --server both say none was given.
func TestCheckCLI_ThroughServe(t *testing.T) {
	clearOpsEnv(t)
	const tok = "check-token"
	base, _ := startSQLiteServe(t, tok)
	dir := t.TempDir()
	sys := writeFile(t, dir, "handoff.yaml", `version: 1
system: shop
services:
  - name: checkout
    owner: team-a
    integrations:
      - {kind: async, protocol: nats, direction: publish, topic: orders, subject: orders-value}
topics:
  - {name: orders, owner: team-a, broker: nats, subject: orders-value}
`)
	v1 := writeFile(t, dir, "v1.json", `{"type":"object","properties":{"id":{"type":"string"}},"additionalProperties":false}`)
	if out, errs, err := opsCLI("schema", "register", "orders-value", v1, "--server", base, "--token", tok); err != nil {
		t.Fatalf("register: %v\n%s%s", err, out, errs)
	}
	args := []string{"check", "--file", sys, "--deploy", "checkout=c1", "--to-environment", "production"}
	without, _, _ := opsCLI(args...)
	if !strings.Contains(without, "no registry given") || !strings.Contains(without, "no broker given") {
		t.Fatalf("check without --server:\n%s", without)
	}
	with, errs, _ := opsCLI(append(args, "--server", base, "--token", tok)...)
	if strings.Contains(with, "no registry given") || strings.Contains(with, "no broker given") || strings.Contains(with, "orders-value: not registered") ||
		!strings.Contains(with, "checkout c1: not deployable to production: The pacticipant checkout is unknown to the broker") {
		t.Fatalf("check --server:\n%s%s", with, errs)
	}
}
