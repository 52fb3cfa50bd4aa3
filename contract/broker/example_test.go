package broker_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/contract"
	"github.com/handoffhq/handoff/contract/broker"
)

// A consumer publishes its pact, the provider publishes its verification
// result, the provider version is deployed, and can-i-deploy answers for
// the consumer with a typed reason.
func Example() {
	b, _ := broker.New(memory.NewContractStore(), broker.WithToken("t"), broker.WithOpenReads(true))
	srv := httptest.NewServer(b)
	defer srv.Close()
	ctx := context.Background()
	c := &contract.BrokerClient{BaseURL: srv.URL, Token: "t"}

	pact := &contract.Pact{Consumer: "web", Provider: "orders", Interactions: []*contract.Interaction{{Type: contract.TypeHTTP,
		Description: "a request for order 7", Request: &contract.Request{Method: "GET", Path: "/orders/7"}, Response: &contract.Response{Status: 200}}}}
	c.PublishContracts(ctx, contract.PublishRequest{Pacticipant: "web", Version: "1.4.0", Branch: "main", Pacts: []*contract.Pact{pact}})

	_, links, _ := c.FetchPact(ctx, "/pacts/provider/orders/consumer/web/version/1.4.0")
	c.PublishVerification(ctx, links["pb:publish-verification-results"], contract.VerificationResult{Success: true, ProviderVersion: "2.0.1"})
	c.CreateEnvironment(ctx, "production", true)

	v, _ := c.CanIDeploy(ctx, "web", "1.4.0", "production")
	fmt.Println(v.Deployable, v.Reasons[0].Code+":", v.Reasons[0].Text)

	c.RecordDeployment(ctx, "orders", "2.0.1", "production", "", false)
	v, _ = c.CanIDeploy(ctx, "web", "1.4.0", "production")
	fmt.Println(v.Deployable, v.Reasons[0].Code+":", v.Reasons[0].Text)
	// Output:
	// false no-verification: There is no verified pact between version 1.4.0 of web and the version of orders in production: orders is not there
	// true verified: The pact between version 1.4.0 of web and version 2.0.1 of orders has been verified
}

// Scoped tokens: a CI pipeline's write token may publish pacts but not
// create environments, which needs the admin token.
func ExampleWithScopedToken() {
	b, err := broker.New(memory.NewContractStore(), broker.WithScopedToken("write", "ci"), broker.WithToken("platform"))
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(b)
	defer srv.Close()
	ctx := context.Background()
	ci := &contract.BrokerClient{BaseURL: srv.URL, Token: "ci"}
	admin := &contract.BrokerClient{BaseURL: srv.URL, Token: "platform"}

	fmt.Println("ci:", ci.CreateEnvironment(ctx, "production", true))
	fmt.Println("platform:", admin.CreateEnvironment(ctx, "production", true))
	fmt.Println("ci tags:", ci.PutTag(ctx, "web", "1.4.0", "prod"))
	// Output:
	// ci: contract: broker answered 403: this request needs a token with the admin scope; the token given has the write scope
	// platform: <nil>
	// ci tags: <nil>
}
