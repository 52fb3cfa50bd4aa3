// Package pactjs_test runs Pact's own tooling (the npm packages
// @pact-foundation/pact, with its verifier and pact_ffi, and
// @pact-foundation/pact-cli, the Rust broker client and verifier) against
// handoff: they verify pact files handoff wrote, handoff verifies pact
// files they wrote, and they publish to and fetch from handoff's broker.
//
// The npm project is in this directory (package.json and its lockfile).
// Without node the tests skip, saying so (under CI they fail); with node
// but no node_modules they run "npm ci" first.
package pactjs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/contract"
	"github.com/handoffhq/handoff/contract/broker"
	"github.com/handoffhq/handoff/internal/testenv"
)

var npmOnce sync.Once
var npmErr error

// node returns the node binary, installing the npm project if needed.
func node(t *testing.T) string {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		msg := "node is not installed: Pact's JavaScript tooling cannot run (install Node 20+; the tests then run npm ci in contract/pactjs)"
		if os.Getenv("CI") != "" || testenv.Require() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	npmOnce.Do(func() {
		if _, err := os.Stat(filepath.Join("node_modules", "@pact-foundation", "pact")); err == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund").CombinedOutput()
		if err != nil {
			npmErr = fmt.Errorf("npm ci in contract/pactjs: %v\n%s", err, out)
		}
	})
	if npmErr != nil {
		t.Fatal(npmErr)
	}
	return nodeBin
}

func runNode(t *testing.T, env []string, script string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node(t), script)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func pactCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	node(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join("node_modules", ".bin", "pact"), args...)
	cmd.Env = append(os.Environ(), "PACT_DO_NOT_TRACK=true", "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// provider is a real HTTP provider: orders over a store that the state
// endpoint fills.
type provider struct {
	mu     sync.Mutex
	orders map[string]string // id → status
	broken bool
	states []string
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.URL.Path == "/_state" {
		var s struct {
			State  string
			Action string
			Params map[string]any
		}
		json.NewDecoder(r.Body).Decode(&s)
		p.states = append(p.states, s.Action+" "+s.State)
		if s.Action == "teardown" {
			p.orders = map[string]string{}
			return
		}
		p.orders["4711"] = "paid"
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":4711}`))
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/orders/")
	status, ok := p.orders[id]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if p.broken {
		status = "lost"
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	fmt.Fprintf(w, `{"id":%s,"status":%q,"total":99.5,"items":[{"sku":"A-1","qty":2},{"sku":"B-22","qty":1}]}`, id, status)
}

func newProvider(t *testing.T) (*provider, *httptest.Server) {
	p := &provider{orders: map[string]string{}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv
}

// handoffPact writes a pact with handoff's consumer DSL, as spec.
func handoffPact(t *testing.T, dir string, spec contract.Spec) string {
	c := contract.NewConsumer(t, "web", "orders", contract.WithPactDir(dir), contract.WithSpec(spec))
	c.UponReceiving("a request for an order").
		Given("an order exists", contract.Params{"status": "paid"}).
		WithRequest("GET", contract.FromProviderState("/orders/${id}", "/orders/7")).
		Header("Accept", "application/json").
		WillRespondWith(200).
		Header("Content-Type", contract.Regex(`application/json.*`, "application/json")).
		JSON(map[string]any{
			"id":     contract.Integer(7),
			"status": contract.Regex("pending|paid|shipped", "paid"),
			"total":  contract.Decimal(12.5),
			"items":  contract.EachLike(map[string]any{"sku": contract.Like("A-1"), "qty": contract.Integer(1)}, 1),
		})
	c.Run(func(base string) error {
		req, _ := http.NewRequest("GET", base+"/orders/7", nil)
		req.Header.Set("Accept", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		return nil
	})
	if t.Failed() {
		t.FailNow()
	}
	return c.PactPath()
}

// TestPactJSVerifiesHandoffPact: Pact's JavaScript verifier verifies the
// V3 and V4 files handoff writes against a real provider, provider-state
// values included, and fails a provider that broke them.
func TestPactJSVerifiesHandoffPact(t *testing.T) {
	node(t)
	for _, spec := range []contract.Spec{contract.V3, contract.V4} {
		t.Run(fmt.Sprintf("V%d", spec), func(t *testing.T) {
			path := handoffPact(t, t.TempDir(), spec)
			p, srv := newProvider(t)
			env := []string{"PACT_FILES=" + path, "PROVIDER_URL=" + srv.URL, "STATE_URL=" + srv.URL + "/_state"}
			out, err := runNode(t, env, "verify.mjs")
			if err != nil {
				b, _ := os.ReadFile(path)
				t.Fatalf("Pact JS did not verify handoff's pact: %v\n%s\npact:\n%s", err, out, b)
			}
			p.mu.Lock()
			states := strings.Join(p.states, ",")
			p.broken = true
			p.mu.Unlock()
			if !strings.Contains(states, "setup an order exists") {
				t.Errorf("the state hook was not called: %q", states)
			}
			out, err = runNode(t, env, "verify.mjs")
			if err == nil {
				t.Fatalf("Pact JS verified a broken provider:\n%s", out)
			}
			if !strings.Contains(out, "lost") && !strings.Contains(out, "status") {
				t.Errorf("Pact JS's failure does not name the mismatch:\n%s", out)
			}
		})
	}
}

// TestHandoffVerifiesPactJSPact: a V4 pact written by Pact JS (HTTP and an
// asynchronous message) is read, round-tripped, and verified by handoff.
func TestHandoffVerifiesPactJSPact(t *testing.T) {
	dir := t.TempDir()
	out, err := runNode(t, []string{"PACT_DIR=" + dir}, "consumer.mjs")
	if err != nil {
		t.Fatalf("Pact JS consumer test: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "jsweb-orders.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pact, err := contract.Parse(b)
	if err != nil {
		t.Fatalf("parse Pact JS's file: %v\n%s", err, b)
	}
	if pact.Spec != contract.V4 || len(pact.Interactions) != 2 {
		t.Fatalf("spec %v, %d interactions", pact.Spec, len(pact.Interactions))
	}
	// Round trip: what handoff writes reads back the same.
	again, err := pact.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := contract.Parse(again); err != nil {
		t.Fatalf("re-read: %v\n%s", err, again)
	}

	p, _ := newProvider(t)
	event := func(ctx context.Context, r contract.MessageRequest) (*handoff.Message, error) {
		return handoff.NewMessage("/orders", "order.placed", []byte(`{"order":4711,"total":12.5,"placedAt":"2024-06-01T08:30:00Z"}`)), nil
	}
	v := &contract.Verifier{Provider: "orders", Handler: p,
		States: map[string]contract.StateHandler{"an order exists": func(ctx context.Context, s contract.StateChange) (map[string]any, error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			if s.Setup {
				p.orders["4711"] = "paid"
			} else {
				p.orders = map[string]string{}
			}
			return nil, nil
		}},
		Messages: map[string]contract.MessageProducer{"an order placed event from js": event},
	}
	rep, err := v.VerifyFiles(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("handoff did not verify Pact JS's pact:\n%v\npact:\n%s", err, b)
	}
	p.mu.Lock()
	p.broken = true
	p.mu.Unlock()
	v.Messages["an order placed event from js"] = func(ctx context.Context, r contract.MessageRequest) (*handoff.Message, error) {
		return handoff.NewMessage("/orders", "order.placed", []byte(`{"order":"4711","total":12.5,"placedAt":"yesterday"}`)), nil
	}
	rep, err = v.VerifyFiles(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprint(rep.Err())
	for _, want := range []string{`body $.status: "lost" does not match regex`, `body $.order: expected an integer, got "4711"`, `body $.placedAt`} {
		if !strings.Contains(msg, want) {
			t.Errorf("failure lacks %q:\n%s", want, msg)
		}
	}
}

// TestPactCLIAgainstHandoffBroker: Pact's CLI publishes to handoff's
// broker, Pact's verifier fetches pacts from it (pending status and all)
// and publishes results, and Pact's can-i-deploy and record-deployment
// work against it.
func TestPactCLIAgainstHandoffBroker(t *testing.T) {
	node(t)
	const tok = "pact-tok"
	b, err := broker.New(memory.NewContractStore(), broker.WithToken(tok), broker.WithOpenReads(true))
	if err != nil {
		t.Fatal(err)
	}
	bs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if os.Getenv("DEBUG_BROKER") == "" {
			b.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		b.ServeHTTP(rec, r)
		t.Logf("broker: %s %s → %d %.300s", r.Method, r.URL, rec.Code, rec.Body.String())
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	defer bs.Close()
	brokerArgs := []string{"-b", bs.URL, "-k", tok}
	cli := func(args ...string) string {
		t.Helper()
		out, err := pactCLI(t, append(args, brokerArgs...)...)
		if err != nil {
			t.Fatalf("pact %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	dir := t.TempDir()
	handoffPact(t, dir, contract.V3)
	cli("broker", "publish", dir, "--consumer-app-version", "w1", "--branch", "main")
	cli("broker", "create-environment", "--name", "production", "--production")

	p, srv := newProvider(t)
	u, _ := url.Parse(srv.URL)
	host, port, _ := net.SplitHostPort(u.Host)
	verify := func(version string) (string, error) {
		return pactCLI(t, "verifier", "--broker-url", bs.URL, "-t", tok, "--provider-name", "orders", "--hostname", host, "--port", port,
			"--state-change-url", srv.URL+"/_state", "--publish", "--provider-version", version, "--provider-branch", "main",
			"--consumer-version-selectors", `{"mainBranch":true}`, "--enable-pending")
	}
	if out, err := verify("o1"); err != nil {
		t.Fatalf("pact verifier against handoff's broker: %v\n%s", err, out)
	}
	cli("broker", "record-deployment", "--pacticipant", "orders", "--version", "o1", "--environment", "production")
	out := cli("broker", "can-i-deploy", "--pacticipant", "web", "--version", "w1", "--to-environment", "production")
	if !strings.Contains(out, "Computer says yes") {
		t.Fatalf("can-i-deploy:\n%s", out)
	}
	// handoff's client sees the result Pact's verifier published.
	verdict, err := (&contract.BrokerClient{BaseURL: bs.URL}).CanIDeploy(context.Background(), "web", "w1", "production")
	if err != nil || !verdict.Deployable || verdict.Reasons[0].ProviderVersion != "o1" {
		t.Fatalf("verdict %+v, %v", verdict, err)
	}

	// A provider version that breaks the (no longer pending) pact fails
	// Pact's verifier; deployed, it blocks the consumer.
	p.mu.Lock()
	p.broken = true
	p.mu.Unlock()
	if out, err := verify("o2"); err == nil {
		t.Fatalf("pact verifier passed a broken provider:\n%s", out)
	}
	cli("broker", "record-deployment", "--pacticipant", "orders", "--version", "o2", "--environment", "production")
	out, err = pactCLI(t, append([]string{"broker", "can-i-deploy", "--pacticipant", "web", "--version", "w1", "--to-environment", "production"}, brokerArgs...)...)
	if err == nil || !strings.Contains(out, "Computer says no") {
		t.Fatalf("can-i-deploy after a failed verification: %v\n%s", err, out)
	}
	// Without the token, Pact's CLI cannot publish.
	out, err = pactCLI(t, "broker", "publish", dir, "--consumer-app-version", "w2", "-b", bs.URL)
	if err == nil {
		t.Fatalf("published without a token:\n%s", out)
	}
}
