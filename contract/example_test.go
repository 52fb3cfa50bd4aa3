package contract_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/handoffhq/handoff/contract"
)

// A provider verifies a consumer's pact against its http.Handler, with a
// provider-state hook; a failure names the interaction, the place, what was
// expected and got, and the matcher.
func ExampleVerifier() {
	pact, _ := contract.Parse([]byte(`{
	  "consumer": {"name": "web"}, "provider": {"name": "orders"},
	  "interactions": [{
	    "description": "a request for order 7",
	    "providerStates": [{"name": "order 7 exists"}],
	    "request": {"method": "GET", "path": "/orders/7"},
	    "response": {"status": 200, "headers": {"Content-Type": "application/json"},
	      "body": {"id": 7, "total": 12.5},
	      "matchingRules": {"body": {"$.total": {"matchers": [{"match": "decimal"}]}}}}
	  }],
	  "metadata": {"pactSpecification": {"version": "3.0.0"}}}`))
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":7,"total":"12.50"}`))
	})
	v := &contract.Verifier{Provider: "orders", Handler: api, States: map[string]contract.StateHandler{
		"order 7 exists": func(ctx context.Context, s contract.StateChange) (map[string]any, error) { return nil, nil },
	}}
	report, _ := v.Verify(context.Background(), pact)
	fmt.Println(report.Err())
	// Output:
	// contract: 1 interaction(s) failed verification
	//   web → orders: "a request for order 7" given "order 7 exists"
	//     body $.total: expected a decimal number, got "12.50" (matcher: decimal)
}
