package contract_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/contract"
)

// ordersClient is the web service's client of the orders API.
type ordersClient struct{}

// Order gets order id from the orders API at baseURL.
func (ordersClient) Order(baseURL string, id int) (*http.Response, error) {
	resp, err := http.Get(fmt.Sprintf("%s/orders/%d", baseURL, id))
	if err != nil {
		return nil, err
	}
	return resp, resp.Body.Close()
}

// The consumer's side, in its tests: an HTTP interaction and a message
// interaction, each run against the consumer's real code (a test function,
// so it is not run here).
func ExampleNewConsumer() {
	client := ordersClient{}
	consumerHandler := handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error { return nil })

	testOrdersPact := func(t *testing.T) {
		c := contract.NewConsumer(t, "web", "orders")
		c.UponReceiving("a request for an order").
			Given("an order exists", contract.Params{"id": 7}).
			WithRequest("GET", "/orders/7").
			WillRespondWith(200).
			JSON(map[string]any{"id": contract.Integer(7), "status": contract.Regex("paid|shipped", "paid")})
		c.Run(func(baseURL string) error { _, err := client.Order(baseURL, 7); return err })

		c.ExpectsToReceive("an order placed event").
			WithJSON(map[string]any{"order": contract.Integer(7)}).
			WithMetadata(map[string]any{"type": "order.placed"}).
			Handle(consumerHandler)
	}
	_ = testOrdersPact
}

// The provider's side, in its tests: the pact file verified against the
// running handler, with provider states and message producers (a test
// function, so it is not run here).
func ExampleVerifier_VerifyFiles() {
	ctx := context.Background()
	var (
		api       http.Handler                        // the provider's real handler
		states    map[string]contract.StateHandler    // by state name
		producers map[string]contract.MessageProducer // by interaction description
	)
	testPacts := func(t *testing.T) {
		v := &contract.Verifier{Provider: "orders", Handler: api, States: states, Messages: producers}
		report, err := v.VerifyFiles(ctx, "pacts/web-orders.json")
		if err != nil {
			t.Fatal(err)
		}
		if err := report.Err(); err != nil {
			t.Fatal(err)
		} // names interaction, path, expected, actual, matcher
	}
	_ = testPacts
}
