package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"net/http/httptest"

	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/contract"
	"github.com/handoffhq/handoff/contract/broker"
	"github.com/handoffhq/handoff/registry"
	"github.com/handoffhq/handoff/schema"
)

// handoff check end to end on the fixed sample: a live registry and broker,
// and the `go test -json` report of a real run of the consumers'
// duplicate-delivery tests. It passes; without the test report, the
// idempotency checkpoint fails with its owners, exit 1, in the table,
// --json and JUnit XML.
func TestCheckCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	ctx := context.Background()
	report := filepath.Join(t.TempDir(), "tests.json")
	cmd := exec.Command(goBin, "test", "-json", "-count=1", "./check/testdata/consumers")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go test -json: %v\n%s", err, out)
	}
	os.WriteFile(report, out, 0o644)

	reg := sampleRegistry(t) // order.placed-value v1, the full order
	rc, _ := registry.NewClient(reg)
	for sub, text := range map[string]string{"payment.settled-value": `{"type":"object","properties":{"payment_id":{"type":"string"},"amount":{"type":"number"}}}`,
		"ledger.posted-value": `{"type":"object","properties":{"entry_id":{"type":"string"},"amount":{"type":"number"}}}`} {
		if err := rc.SetConfig(ctx, sub, schema.Backward); err != nil {
			t.Fatal(err)
		}
		if _, err := rc.Register(ctx, sub, registry.SchemaSpec{Type: schema.JSON, Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := broker.New(memory.NewContractStore(), broker.WithOpenReads(true))
	if err != nil {
		t.Fatal(err)
	}
	bs := httptest.NewServer(b)
	t.Cleanup(bs.Close)
	bc := &contract.BrokerClient{BaseURL: bs.URL}
	for _, p := range [][2]string{{"gateway", "order"}, {"order", "payment"}, {"payment", "fraud"}, {"shipping", "order"}, {"ledger", "payment"}} {
		pact := &contract.Pact{Consumer: p[0], Provider: p[1], Spec: contract.V3, Interactions: []*contract.Interaction{{
			Type: contract.TypeHTTP, Description: "a call", Request: &contract.Request{Method: "GET", Path: "/"}, Response: &contract.Response{Status: 200}}}}
		if _, err := bc.PublishContracts(ctx, contract.PublishRequest{Pacticipant: p[0], Version: "1", Pacts: []*contract.Pact{pact}}); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join("..", "..", "check", "testdata", "fixed", "handoff.yaml")
	junit := filepath.Join(t.TempDir(), "check.xml")
	outS, err := runCLI(t, "check", "--file", file, "--registry", reg, "--broker", bs.URL, "--tests", report, "--junit", junit)
	if err != nil {
		t.Fatalf("fixed sample: %v\n%s", err, outS)
	}
	if !strings.HasPrefix(row(outS, "duplicate-delivery-tested"), "duplicate-delivery-tested PASS 0 - 2 consumers, 2 with") || !strings.HasSuffix(strings.TrimSpace(outS), "PASS") {
		t.Fatalf("table:\n%s", outS)
	}

	outS, err = runCLI(t, "check", "--file", file, "--registry", reg, "--broker", bs.URL, "--junit", junit)
	if !errors.Is(err, errCheckFailed) {
		t.Fatalf("without a test report: err = %v\n%s", err, outS)
	}
	if !strings.HasPrefix(row(outS, "duplicate-delivery-tested"), "duplicate-delivery-tested FAIL 2 team-finance, team-logistics no test report") {
		t.Fatalf("table:\n%s", outS)
	}
	x, _ := os.ReadFile(junit)
	if !strings.Contains(string(x), `<testcase name="duplicate-delivery-tested" classname="handoff.check.sample">`) || !strings.Contains(string(x), `failures="1"`) {
		t.Fatalf("junit:\n%s", x)
	}
	outS, _ = runCLI(t, "check", "--json", "--file", file, "--registry", reg, "--broker", bs.URL)
	var rep struct {
		Passed      bool
		Checkpoints []struct{ ID, Status string }
	}
	if err := json.Unmarshal([]byte(outS), &rep); err != nil || rep.Passed || len(rep.Checkpoints) != 9 {
		t.Fatalf("--json: %v %+v\n%s", err, rep, outS)
	}
	for _, args := range [][]string{
		{"check", "--file", filepath.Join(t.TempDir(), "none.yaml")},
		{"check", "--file", file, "--openapi", "only-one"},
		{"check", "--file", file, "--deploy", "order"},
		{"check", "--file", file, "extra"},
	} {
		if out, err := runCLI(t, args...); err == nil || errors.Is(err, errCheckFailed) {
			t.Errorf("%v: err = %v\n%s", args, err, out)
		}
	}
}

// row returns the table row of a checkpoint with its spacing collapsed.
func row(out, id string) string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == id {
			return strings.Join(f, " ")
		}
	}
	return ""
}
