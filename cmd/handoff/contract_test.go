package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/contract"
	"github.com/handoffhq/handoff/contract/broker"
)

func writePact(t *testing.T, dir string, status string) string {
	t.Helper()
	p := &contract.Pact{Consumer: "web", Provider: "orders", Spec: contract.V3, Interactions: []*contract.Interaction{{
		Type: contract.TypeHTTP, Description: "a request for order 7", ProviderStates: []contract.ProviderState{{Name: "order 7 exists"}},
		Request:  &contract.Request{Method: "GET", Path: "/orders/7"},
		Response: &contract.Response{Status: 200, Headers: contract.Headers{"Content-Type": {"application/json"}}, Body: contract.Body{Present: true, ContentType: "application/json", Content: []byte(`{"id":7,"status":"` + status + `"}`)}},
	}}}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "web-orders.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, nil, &out, &errb)
	return out.String() + errb.String(), err
}

// The CI flow through the CLI: publish, verify from the broker (with state
// set-up over HTTP) and publish results, record a deployment, ask
// can-i-deploy; exit codes fit for CI.
func TestContractCLI(t *testing.T) {
	b, err := broker.New(memory.NewContractStore(), broker.WithToken("tok"), broker.WithOpenReads(true))
	if err != nil {
		t.Fatal(err)
	}
	bsrv := httptest.NewServer(b)
	defer bsrv.Close()
	t.Setenv("HANDOFF_BROKER_URL", bsrv.URL)
	t.Setenv("HANDOFF_BROKER_TOKEN", "tok")

	dir := t.TempDir()
	writePact(t, dir, "paid")
	out, err := runCLI(t, "contract", "publish", "--consumer-version", "w1", "--branch", "main", dir)
	if err != nil || !strings.Contains(out, "published the pacts of web w1 on branch main with orders") {
		t.Fatalf("publish: %v\n%s", err, out)
	}

	var states []string
	status := "paid"
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_state" {
			var s struct{ State, Action string }
			json.NewDecoder(r.Body).Decode(&s)
			states = append(states, s.Action+" "+s.State)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":7,"status":"` + status + `"}`))
	}))
	defer provider.Close()

	verify := func(version string) (string, error) {
		return runCLI(t, "contract", "verify", "--provider", "orders", "--provider-url", provider.URL, "--state-url", provider.URL+"/_state",
			"--provider-version", version, "--branch", "main", "--selector", `{"mainBranch":true}`, "--include-pending", "--publish")
	}
	out, err = verify("o1")
	if err != nil || !strings.Contains(out, "1 passed, 0 failed") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	if strings.Join(states, ",") != "setup order 7 exists,teardown order 7 exists" {
		t.Fatalf("state calls: %v", states)
	}

	if _, err := runCLI(t, "contract", "record-deployment", "--pacticipant", "orders", "--version", "o1", "--environment", "production"); err == nil ||
		!strings.Contains(err.Error(), "create-environment") {
		t.Fatalf("record-deployment to an unknown environment: %v", err)
	}
	if out, err := runCLI(t, "contract", "create-environment", "--name", "production", "--production"); err != nil {
		t.Fatalf("create-environment: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "contract", "record-deployment", "--pacticipant", "orders", "--version", "o1", "--environment", "production"); err != nil {
		t.Fatalf("record-deployment: %v\n%s", err, out)
	}
	out, err = runCLI(t, "contract", "can-i-deploy", "--pacticipant", "web", "--version", "w1", "--to-environment", "production")
	if err != nil || !strings.Contains(out, "yes: web w1 can be deployed to production") || !strings.Contains(out, "verified") {
		t.Fatalf("can-i-deploy: %v\n%s", err, out)
	}

	// A provider version that breaks the pact: verify exits non-zero (the
	// pact is no longer pending), and the consumer cannot deploy next to it.
	status = "lost"
	out, err = verify("o2")
	if !errors.Is(err, errVerificationFailed) || !strings.Contains(out, `body $.status: expected "paid", got "lost"`) {
		t.Fatalf("verify a broken provider: %v\n%s", err, out)
	}
	runCLI(t, "contract", "record-deployment", "--pacticipant", "orders", "--version", "o2", "--environment", "production")
	out, err = runCLI(t, "contract", "can-i-deploy", "--json", "--pacticipant", "web", "--version", "w1", "--to-environment", "production")
	if !errors.Is(err, errNotDeployable) {
		t.Fatalf("can-i-deploy: err %v\n%s", err, out)
	}
	var v contract.Verdict
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if v.Deployable || len(v.Reasons) != 1 || v.Reasons[0].Code != contract.ReasonVerificationFailed || v.Reasons[0].ProviderVersion != "o2" {
		t.Fatalf("verdict %+v", v)
	}

	// Files verified directly, without a broker.
	out, err = runCLI(t, "contract", "verify", "--json", "--provider", "orders", "--provider-url", provider.URL, filepath.Join(dir, "web-orders.json"))
	if !errors.Is(err, errVerificationFailed) || !strings.Contains(out, `"success": false`) {
		t.Fatalf("verify file --json: %v\n%s", err, out)
	}

	// Usage errors.
	if _, err := runCLI(t, "contract", "can-i-deploy", "--pacticipant", "web"); err == nil {
		t.Error("can-i-deploy without a version succeeded")
	}
	if _, err := runCLI(t, "contract", "nope"); err == nil {
		t.Error("an unknown subcommand succeeded")
	}
}

// handoff contract broker serves the broker on SQLite and stops on cancel.
func TestContractBrokerServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"contract", "broker", "--db", filepath.Join(t.TempDir(), "b.db"), "--addr", "127.0.0.1:0", "--token", "t"}, nil, stdout, stderr)
	}()
	base := ""
	deadline := time.Now().Add(30 * time.Second)
	for base == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no URL printed; stdout %q stderr %q", stdout.String(), stderr.String())
		}
		select {
		case err := <-done:
			t.Fatalf("broker exited early: %v; stderr %q", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		sc := bufio.NewScanner(strings.NewReader(stdout.String()))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "contract" && f[1] == "broker" {
				base = f[2]
			}
		}
	}
	res, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/hal+json") {
		t.Fatalf("index: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	res, err = http.Post(base+"/environments", "application/json", strings.NewReader(`{"name":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("create environment without token: %d", res.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
