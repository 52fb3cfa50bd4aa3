package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/contract"
	"github.com/handoffhq/handoff/contract/broker"
)

const token = "s3cret"

// harness drives a broker through its HTTP API with handoff's client.
type harness struct {
	t   testing.TB
	srv *httptest.Server
	c   *contract.BrokerClient
	ctx context.Context
}

func newHarness(t testing.TB, store broker.Store) *harness {
	t.Helper()
	b, err := broker.New(store, broker.WithToken(token), broker.WithOpenReads(true))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(b)
	t.Cleanup(srv.Close)
	return &harness{t: t, srv: srv, c: &contract.BrokerClient{BaseURL: srv.URL, Token: token}, ctx: context.Background()}
}

// pact builds a pact whose content is set by its interactions'
// descriptions: the same descriptions give the same content.
func pact(consumer, provider string, descriptions ...string) *contract.Pact {
	p := &contract.Pact{Consumer: consumer, Provider: provider, Spec: contract.V3}
	for _, d := range descriptions {
		p.Interactions = append(p.Interactions, &contract.Interaction{Type: contract.TypeHTTP, Description: d,
			Request: &contract.Request{Method: "GET", Path: "/" + strings.ReplaceAll(d, " ", "-")}, Response: &contract.Response{Status: 200}})
	}
	return p
}

func (h *harness) publish(consumer, version, branch, provider string, descriptions ...string) {
	h.t.Helper()
	_, err := h.c.PublishContracts(h.ctx, contract.PublishRequest{Pacticipant: consumer, Version: version, Branch: branch,
		Pacts: []*contract.Pact{pact(consumer, provider, descriptions...)}})
	if err != nil {
		h.t.Fatalf("publish %s %s: %v", consumer, version, err)
	}
}

// verify publishes a verification result of consumer's pact at
// consumerVersion by provider at providerVersion (on branch).
func (h *harness) verify(provider, providerVersion, branch, consumer, consumerVersion string, success bool) {
	h.t.Helper()
	if branch != "" {
		if err := h.c.PutBranchVersion(h.ctx, provider, branch, providerVersion); err != nil {
			h.t.Fatal(err)
		}
	}
	_, links, err := h.c.FetchPact(h.ctx, "/pacts/provider/"+provider+"/consumer/"+consumer+"/version/"+consumerVersion)
	if err != nil {
		h.t.Fatalf("fetch pact: %v", err)
	}
	if err := h.c.PublishVerification(h.ctx, links["pb:publish-verification-results"], contract.VerificationResult{Success: success, ProviderVersion: providerVersion}); err != nil {
		h.t.Fatalf("publish verification: %v", err)
	}
}

func (h *harness) env(name string) {
	h.t.Helper()
	if err := h.c.CreateEnvironment(h.ctx, name, name == "production"); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) deploy(pacticipant, version, env string) {
	h.t.Helper()
	if err := h.c.RecordDeployment(h.ctx, pacticipant, version, env, "", false); err != nil {
		h.t.Fatalf("record deployment of %s %s to %s: %v", pacticipant, version, env, err)
	}
}

func (h *harness) release(pacticipant, version, env string) {
	h.t.Helper()
	if err := h.c.RecordDeployment(h.ctx, pacticipant, version, env, "", true); err != nil {
		h.t.Fatalf("record release: %v", err)
	}
}

func (h *harness) canIDeploy(p, v, env string) *contract.Verdict {
	h.t.Helper()
	verdict, err := h.c.CanIDeploy(h.ctx, p, v, env)
	if err != nil {
		h.t.Fatal(err)
	}
	return verdict
}

func codes(v *contract.Verdict) string {
	var out []string
	for _, r := range v.Reasons {
		out = append(out, r.Code)
	}
	return strings.Join(out, ",")
}

// TestCanIDeploy is the can-i-deploy table: each case builds a broker's
// history through the HTTP API and asks one question.
func TestCanIDeploy(t *testing.T) { eachStore(t, testCanIDeploy) }

func testCanIDeploy(t *testing.T, newStore func(*testing.T) broker.Store) {
	cases := []struct {
		name       string
		setup      func(h *harness)
		p, v, env  string
		deployable bool
		codes      string
	}{
		{
			name: "consumer: verified by the provider version in the environment",
			setup: func(h *harness) {
				h.publish("web", "w1", "main", "orders", "get order")
				h.verify("orders", "o1", "main", "web", "w1", true)
				h.deploy("orders", "o1", "production")
			},
			p: "web", v: "w1", env: "production", deployable: true, codes: "verified",
		},
		{
			name: "consumer: the provider is not in the environment yet",
			setup: func(h *harness) {
				h.publish("web", "w1", "main", "orders", "get order")
				h.verify("orders", "o1", "main", "web", "w1", true)
				h.deploy("orders", "o1", "test")
			},
			p: "web", v: "w1", env: "production", deployable: false, codes: "no-verification",
		},
		{
			name: "consumer: the version in the environment never verified the pact",
			setup: func(h *harness) {
				h.publish("web", "w1", "main", "orders", "get order")
				h.verify("orders", "o2", "main", "web", "w1", true)
				h.publish("web", "w0", "main", "orders", "old")
				h.verify("orders", "o1", "main", "web", "w0", true)
				h.deploy("orders", "o1", "production")
			},
			p: "web", v: "w1", env: "production", deployable: false, codes: "no-verification",
		},
		{
			name: "consumer: the verification failed",
			setup: func(h *harness) {
				h.publish("web", "w1", "main", "orders", "get order")
				h.verify("orders", "o1", "main", "web", "w1", true)
				h.publish("web", "w2", "main", "orders", "get order", "cancel order")
				h.verify("orders", "o1", "main", "web", "w2", false)
				h.deploy("orders", "o1", "production")
			},
			p: "web", v: "w2", env: "production", deployable: false, codes: "pending",
		},
		{
			name: "consumer: the verification failed and the pact was not pending",
			setup: func(h *harness) {
				h.publish("web", "w1", "main", "orders", "get order")
				h.verify("orders", "o1", "main", "web", "w1", true)
				h.verify("orders", "o2", "main", "web", "w1", false)
				h.deploy("orders", "o2", "production")
			},
			p: "web", v: "w1", env: "production", deployable: false, codes: "verification-failed",
		},
		{
			name: "consumer: the latest result of a provider version counts",
			setup: func(h *harness) {
				h.publish("web", "w1", "main", "orders", "get order")
				h.verify("orders", "o1", "main", "web", "w1", false)
				h.verify("orders", "o1", "main", "web", "w1", true)
				h.deploy("orders", "o1", "production")
			},
			p: "web", v: "w1", env: "production", deployable: true, codes: "verified",
		},
		{
			name: "consumer: identical content published again is already verified",
			setup: func(h *harness) {
				h.publish("web", "w1", "main", "orders", "get order")
				h.verify("orders", "o1", "main", "web", "w1", true)
				h.publish("web", "w2", "main", "orders", "get order")
				h.deploy("orders", "o1", "production")
			},
			p: "web", v: "w2", env: "production", deployable: true, codes: "verified",
		},
		{
			name: "consumer: a redeployment replaces the version there",
			setup: func(h *harness) {
				h.publish("web", "w1", "main", "orders", "get order")
				h.verify("orders", "o1", "main", "web", "w1", true)
				h.verify("orders", "o2", "main", "web", "w1", false)
				h.deploy("orders", "o2", "production")
				h.deploy("orders", "o1", "production")
			},
			p: "web", v: "w1", env: "production", deployable: true, codes: "verified",
		},
		{
			name: "consumer: every released provider version must verify",
			setup: func(h *harness) {
				h.publish("app", "a1", "main", "api", "list")
				h.verify("api", "1.0", "main", "app", "a1", true)
				h.verify("api", "2.0", "main", "app", "a1", false)
				h.release("api", "1.0", "production")
				h.release("api", "2.0", "production")
			},
			p: "app", v: "a1", env: "production", deployable: false, codes: "verification-failed,verified",
		},
		{
			name: "provider: verified the pact of the consumer version there",
			setup: func(h *harness) {
				h.publish("web", "w1", "main", "orders", "get order")
				h.deploy("web", "w1", "production")
				h.verify("orders", "o3", "main", "web", "w1", true)
			},
			p: "orders", v: "o3", env: "production", deployable: true, codes: "verified",
		},
		{
			name: "provider: never verified the pact of the consumer version there",
			setup: func(h *harness) {
				h.publish("web", "w1", "main", "orders", "get order")
				h.deploy("web", "w1", "production")
				h.verify("orders", "o2", "main", "web", "w1", true)
				if err := h.c.PutBranchVersion(h.ctx, "orders", "feat", "o3"); err != nil {
					h.t.Fatal(err)
				}
			},
			p: "orders", v: "o3", env: "production", deployable: false, codes: "no-verification",
		},
		{
			name: "provider: a consumer not in the environment does not hold it up",
			setup: func(h *harness) {
				h.publish("web", "w1", "main", "orders", "get order")
				h.deploy("web", "w1", "test")
				h.verify("orders", "o3", "main", "web", "w1", false)
			},
			p: "orders", v: "o3", env: "production", deployable: true, codes: "no-dependencies",
		},
		{
			name: "provider and consumer at once",
			setup: func(h *harness) {
				h.publish("web", "w1", "main", "orders", "get order")
				h.publish("orders", "o3", "main", "payments", "charge")
				h.verify("orders", "o3", "main", "web", "w1", true)
				h.verify("payments", "p1", "main", "orders", "o3", true)
				h.deploy("web", "w1", "production")
				h.deploy("payments", "p1", "production")
			},
			p: "orders", v: "o3", env: "production", deployable: true, codes: "verified,verified",
		},
		{
			name:  "unknown version",
			setup: func(h *harness) { h.publish("web", "w1", "main", "orders", "get order") },
			p:     "web", v: "w9", env: "production", deployable: false, codes: "version-not-found",
		},
		{
			name:  "unknown environment",
			setup: func(h *harness) { h.publish("web", "w1", "main", "orders", "get order") },
			p:     "web", v: "w1", env: "staging", deployable: false, codes: "environment-not-found",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, newStore(t))
			h.env("production")
			h.env("test")
			tc.setup(h)
			got := h.canIDeploy(tc.p, tc.v, tc.env)
			if got.Deployable != tc.deployable || codes(got) != tc.codes {
				t.Fatalf("can-i-deploy %s %s to %s = %v [%s], want %v [%s]\nreasons: %+v", tc.p, tc.v, tc.env,
					got.Deployable, codes(got), tc.deployable, tc.codes, got.Reasons)
			}
			for _, r := range got.Reasons {
				if r.Text == "" {
					t.Errorf("reason %s without text", r.Code)
				}
			}
		})
	}
}

func forVerification(t *testing.T, h *harness, provider string, req contract.ForVerificationRequest) map[string]contract.PactToVerify {
	t.Helper()
	ps, err := h.c.PactsForVerification(h.ctx, provider, req)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]contract.PactToVerify{}
	for _, p := range ps {
		pact, _, err := h.c.FetchPact(h.ctx, p.Href)
		if err != nil {
			t.Fatal(err)
		}
		key := pact.Consumer + ":" + pact.Interactions[len(pact.Interactions)-1].Description
		out[key] = p
	}
	return out
}

// TestPactsForVerification covers selectors, deduplication, pending and
// work-in-progress pacts.
func TestPactsForVerification(t *testing.T) { eachStore(t, testPactsForVerification) }

func testPactsForVerification(t *testing.T, newStore func(*testing.T) broker.Store) {
	h := newHarness(t, newStore(t))
	h.env("production")
	h.publish("web", "w1", "main", "orders", "a")
	h.publish("web", "w2", "main", "orders", "a", "b")
	h.publish("web", "w3", "feat-x", "orders", "a", "b", "x")
	h.publish("app", "a1", "main", "orders", "a", "list")
	h.deploy("web", "w1", "production")

	got := forVerification(t, h, "orders", contract.ForVerificationRequest{
		Selectors: []contract.Selector{{MainBranch: true}, {DeployedOrReleased: true}}, ProviderVersionBranch: "main", IncludePendingStatus: true})
	if len(got) != 3 {
		t.Fatalf("got %d pacts, want web main (w2), web deployed (w1), app main: %v", len(got), got)
	}
	for _, k := range []string{"web:b", "web:a", "app:list"} {
		p, ok := got[k]
		if !ok {
			t.Fatalf("missing %s in %v", k, got)
		}
		if !p.Pending {
			t.Errorf("%s: pending = false before any verification", k)
		}
		if len(p.Notices) < 2 || !strings.Contains(p.Notices[0].Text, "being verified because") || !strings.Contains(p.Notices[1].Text, "pending") {
			t.Errorf("%s: notices %v", k, p.Notices)
		}
	}
	if !strings.Contains(got["web:a"].Description, "deployed") {
		t.Errorf("w1's reason %q does not say deployed", got["web:a"].Description)
	}

	// Verified from main: no longer pending for main.
	h.verify("orders", "o1", "main", "web", "w2", true)
	got = forVerification(t, h, "orders", contract.ForVerificationRequest{Selectors: []contract.Selector{{MainBranch: true}},
		ProviderVersionBranch: "main", IncludePendingStatus: true})
	if got["web:b"].Pending {
		t.Error("web w2 still pending for main after a successful verification from main")
	}
	if !got["app:list"].Pending {
		t.Error("app a1 not pending though never verified")
	}
	// A provider feature branch created after that verification: not
	// pending either (the main branch verified it before the branch).
	got = forVerification(t, h, "orders", contract.ForVerificationRequest{Selectors: []contract.Selector{{MainBranch: true}},
		ProviderVersionBranch: "feat-new", IncludePendingStatus: true})
	if got["web:b"].Pending {
		t.Error("web w2 pending for a new provider branch though main verified it")
	}
	// A branch selector and a matching branch select the feature pact.
	got = forVerification(t, h, "orders", contract.ForVerificationRequest{Selectors: []contract.Selector{{MatchingBranch: true}},
		ProviderVersionBranch: "feat-x"})
	if _, ok := got["web:x"]; !ok || len(got) != 1 {
		t.Errorf("matchingBranch feat-x: %v", got)
	}

	// Work in progress: the feature pact, not selected, pending: included.
	since := time.Now().Add(-time.Hour)
	got = forVerification(t, h, "orders", contract.ForVerificationRequest{Selectors: []contract.Selector{{MainBranch: true}},
		ProviderVersionBranch: "main", IncludePendingStatus: true, IncludeWIPPactsSince: since.Format(time.RFC3339)})
	wip, ok := got["web:x"]
	if !ok || !wip.WIP || !wip.Pending {
		t.Fatalf("WIP pact: %+v (ok %v)", wip, ok)
	}
	// Once the provider's main verified it successfully, it is no longer WIP.
	h.verify("orders", "o2", "main", "web", "w3", true)
	got = forVerification(t, h, "orders", contract.ForVerificationRequest{Selectors: []contract.Selector{{MainBranch: true}},
		ProviderVersionBranch: "main", IncludePendingStatus: true, IncludeWIPPactsSince: since.Format(time.RFC3339)})
	if _, ok := got["web:x"]; ok {
		t.Error("a pact verified by main is still listed as work in progress")
	}
	// Since a date after the publications: none is WIP.
	got = forVerification(t, h, "orders", contract.ForVerificationRequest{Selectors: []contract.Selector{{MainBranch: true}},
		ProviderVersionBranch: "feat-y", IncludeWIPPactsSince: time.Now().Add(time.Hour).Format(time.RFC3339)})
	for k, p := range got {
		if p.WIP {
			t.Errorf("%s is WIP though published before the date", k)
		}
	}
}

// TestVerifyBroker_PendingDoesNotFailTheBuild runs handoff's verifier
// against the broker: a failing pending pact leaves the provider's build
// green, its failed result is published, and the consumer cannot deploy
// with reason "pending".
func TestVerifyBroker_PendingDoesNotFailTheBuild(t *testing.T) {
	eachStore(t, testVerifyBrokerPending)
}

func testVerifyBrokerPending(t *testing.T, newStore func(*testing.T) broker.Store) {
	h := newHarness(t, newStore(t))
	h.env("production")
	h.publish("web", "w1", "main", "orders", "get-order")
	provider := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	v := &contract.Verifier{Provider: "orders", Handler: provider}
	src := contract.BrokerSource{Client: h.c, Selectors: []contract.Selector{{MainBranch: true}}, ProviderVersion: "o1", ProviderBranch: "main",
		IncludePending: true, Publish: true}
	rep, err := v.VerifyBroker(h.ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].OK() || !rep.Results[0].Pending {
		t.Fatalf("results: %+v", rep.Results)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("a pending pact failed the build: %v", err)
	}
	h.deploy("orders", "o1", "production")
	verdict := h.canIDeploy("web", "w1", "production")
	if verdict.Deployable || codes(verdict) != contract.ReasonPending {
		t.Fatalf("verdict %+v", verdict)
	}

	// Fixed provider: verifies, result published, the consumer can deploy.
	v.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	src.ProviderVersion = "o2"
	rep, err = v.VerifyBroker(h.ctx, src)
	if err != nil || rep.Err() != nil {
		t.Fatal(err, rep.Err())
	}
	h.deploy("orders", "o2", "production")
	if verdict := h.canIDeploy("web", "w1", "production"); !verdict.Deployable {
		t.Fatalf("verdict %+v", verdict)
	}
	// Now the pact is no longer pending for main: a broken provider fails
	// the build.
	v.Handler = provider
	src.ProviderVersion = "o3"
	rep, err = v.VerifyBroker(h.ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Err() == nil {
		t.Fatal("a non-pending failing pact did not fail the build")
	}
}

// TestBroker_TokenOnMutatingRoutes: every mutating route refuses a
// request without the token, with 401; reads pass when open.
func TestBroker_TokenOnMutatingRoutes(t *testing.T) {
	h := newHarness(t, memory.NewContractStore())
	h.env("production")
	h.publish("web", "w1", "main", "orders", "a")
	for _, rt := range []struct{ method, path, body string }{
		{"POST", "/contracts/publish", `{}`},
		{"PUT", "/pacts/provider/orders/consumer/web/version/9", `{}`},
		{"POST", "/pacts/provider/orders/consumer/web/pact-version/x/verification-results", `{}`},
		{"POST", "/pacticipants", `{"name":"x"}`},
		{"PUT", "/pacticipants/web", `{}`},
		{"PATCH", "/pacticipants/web", `{}`},
		{"PUT", "/pacticipants/web/versions/w1", `{}`},
		{"PUT", "/pacticipants/web/branches/b/versions/w1", `{}`},
		{"PUT", "/pacticipants/web/versions/w1/tags/t", `{}`},
		{"POST", "/pacticipants/web/versions/w1/deployed-versions/environment/x", `{}`},
		{"POST", "/pacticipants/web/versions/w1/released-versions/environment/x", `{}`},
		{"POST", "/environments", `{"name":"x"}`},
	} {
		for _, auth := range []string{"", "Bearer wrong"} {
			req, _ := http.NewRequest(rt.method, h.srv.URL+rt.path, strings.NewReader(rt.body))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s with %q: %d, want 401", rt.method, rt.path, auth, resp.StatusCode)
			}
		}
	}
	for _, path := range []string{"/", "/pacticipants", "/environments", "/can-i-deploy?pacticipant=web&version=w1&environment=production"} {
		resp, err := http.Get(h.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	// Basic auth with the token as the password is accepted (Pact's CLIs).
	req, _ := http.NewRequest("PUT", h.srv.URL+"/pacticipants/web/versions/w1/tags/prod", strings.NewReader("{}"))
	req.SetBasicAuth("anyone", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("basic auth: %d", resp.StatusCode)
	}
}

// TestBroker_BadRequestsNameTheField: decoders refuse bad bodies with 400
// naming the field, and store nothing.
func TestBroker_BadRequestsNameTheField(t *testing.T) {
	store := memory.NewContractStore()
	h := newHarness(t, store)
	for _, tc := range []struct{ method, path, body, field string }{
		{"POST", "/contracts/publish", `{"pacticipantVersionNumber":"1","contracts":[]}`, "pacticipantName"},
		{"POST", "/contracts/publish", `{"pacticipantName":"web","pacticipantVersionNumber":"1","contracts":[]}`, "contracts"},
		{"POST", "/contracts/publish", `{"pacticipantName":"web","pacticipantVersionNumber":"1","contracts":[{"content":"!!"}]}`, "contracts[0].content"},
		{"POST", "/contracts/publish", `{"pacticipantName":"web","pacticipantVersionNumber":"1","contracts":[{"content":"e30="}]}`, "contracts[0].content"},
		{"POST", "/contracts/publish", `{"pacticipantName":"web","pacticipantVersionNumber":1}`, "pacticipantVersionNumber"},
		{"POST", "/environments", `{"name":"a b"}`, "name"},
		{"POST", "/pacts/provider/orders/for-verification", `{"consumerVersionSelectors":[{}]}`, "consumerVersionSelectors[0]"},
		{"POST", "/pacts/provider/orders/for-verification", `{"includeWipPactsSince":"yesterday","providerVersionBranch":"main"}`, "includeWipPactsSince"},
	} {
		req, _ := http.NewRequest(tc.method, h.srv.URL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Errors map[string][]string `json:"errors"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 400 || len(body.Errors[tc.field]) == 0 {
			t.Errorf("%s %s %s: %d %v, want 400 naming %s", tc.method, tc.path, tc.body, resp.StatusCode, body.Errors, tc.field)
		}
	}
	if ps, _ := store.Pacticipants(context.Background()); len(ps) != 0 {
		t.Errorf("bad requests stored pacticipants: %v", ps)
	}
}

// TestMatrix_PactBrokerQuery answers the query Pact's CLI sends for
// can-i-deploy, in the Pact Broker's answer shape.
func TestMatrix_PactBrokerQuery(t *testing.T) {
	h := newHarness(t, memory.NewContractStore())
	h.env("production")
	h.publish("web", "w1", "main", "orders", "a")
	h.verify("orders", "o1", "main", "web", "w1", true)
	h.deploy("orders", "o1", "production")
	resp, err := http.Get(h.srv.URL + "/matrix?q%5B%5D%5Bpacticipant%5D=web&q%5B%5D%5Bversion%5D=w1&latestby=cvpv&environment=production")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/hal+json") {
		t.Errorf("content type %q", ct)
	}
	var m struct {
		Summary struct {
			Deployable *bool
			Reason     string
			Success    int
		}
		Matrix []struct {
			Consumer struct {
				Name    string
				Version struct{ Number string }
			}
			Provider struct {
				Name    string
				Version struct{ Number string }
			}
			VerificationResult *struct{ Success bool }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.Summary.Deployable == nil || !*m.Summary.Deployable || m.Summary.Success != 1 || len(m.Matrix) != 1 ||
		m.Matrix[0].Provider.Version.Number != "o1" || m.Matrix[0].VerificationResult == nil || !m.Matrix[0].VerificationResult.Success {
		t.Fatalf("matrix answer: %+v", m)
	}
	// Two explicit versions, no environment.
	resp2, err := http.Get(h.srv.URL + "/matrix?q[][pacticipant]=web&q[][version]=w1&q[][pacticipant]=orders&q[][version]=o1&latestby=cvpv")
	if err != nil {
		t.Fatal(err)
	}
	v, err := parseBody(resp2)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Deployable || len(v.Matrix) != 1 {
		t.Fatalf("two-version matrix: %+v", v)
	}
}

func parseBody(resp *http.Response) (*contract.Verdict, error) {
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, raw)
	}
	return contract.ParseMatrix(raw)
}

func TestRecordDeployment_UnknownEnvironment(t *testing.T) {
	h := newHarness(t, memory.NewContractStore())
	h.publish("web", "w1", "main", "orders", "a")
	err := h.c.RecordDeployment(h.ctx, "web", "w1", "nowhere", "", false)
	if !errors.Is(err, contract.ErrEnvironmentNotFound) {
		t.Fatalf("err = %v", err)
	}
}
