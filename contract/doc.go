// Package contract is consumer-driven contract testing in pure Go, in the
// Pact format: no native library, no cgo.
//
// A consumer's test declares the interactions it relies on and runs its
// real client code against a mock server (or its real message handler
// against an example message); on success the interactions go into a pact
// file that Pact's own tools read too:
//
//	c := contract.NewConsumer(t, "web", "orders")
//	c.UponReceiving("a request for an order").
//		Given("an order exists", contract.Params{"id": 7}).
//		WithRequest("GET", "/orders/7").
//		WillRespondWith(200).
//		JSON(map[string]any{"id": contract.Integer(7), "status": contract.Regex("paid|shipped", "paid")})
//	c.Run(func(baseURL string) error { _, err := client.Order(baseURL, 7); return err })
//
//	c.ExpectsToReceive("an order placed event").
//		WithJSON(map[string]any{"order": contract.Integer(7)}).
//		WithMetadata(map[string]any{"type": "order.placed"}).
//		Handle(consumerHandler)
//
// The provider verifies the pact against its running code, from files or
// from a broker (contract/broker, or the Pact Broker), with provider-state
// hooks and message producers:
//
//	v := &contract.Verifier{Provider: "orders", Handler: api, States: states, Messages: producers}
//	report, err := v.VerifyFiles(ctx, "pacts/web-orders.json")
//	if err := report.Err(); err != nil { t.Fatal(err) } // names interaction, path, expected, actual, matcher
//
// # What it guarantees
//
// The matcher reaches the verdict of every case in the Pact
// specification's V3 and V4 test suites (testdata/pact-specification): JSON
// and XML bodies, headers, query, path, status and message metadata, with
// the matchers type (min/max: eachLike, atLeast, atMost), regex (anchored,
// as the specification's cases require), integer, decimal, number, boolean,
// null, date/time/datetime with Java DateTimeFormatter formats (checked,
// not only shaped: no 30 February), equality, include, values,
// arrayContains, eachKey, eachValue, statusCode, notEmpty, semver and
// contentType, combined with AND or OR, selected by Pact's path weights.
// Requests are matched strictly (no unexpected query parameters or JSON
// keys), responses leniently (a provider may send more). Pact files are
// read in V2, V3 and V4 and written in V3 (HTTP only) or V4 (HTTP and
// messages); attributes handoff does not interpret are written back as
// read. Several tests of one consumer and provider merge into one file,
// also across test binaries (a lock file guards it).
//
// A pending interaction or pact (V4's "pending", or the broker's pending
// and work-in-progress pacts) is verified and reported, but Report.Err
// does not fail on it.
//
// # What it does not do
//
// Synchronous message interactions (gRPC, plugins) are read and written
// back, but not verified. The matcher is not a JSON Schema validator: it
// checks what the consumer wrote down, nothing more. Generators are applied
// where Pact defines them (the mock server's responses, the verifier's
// requests); a Date generator's "expression" is not evaluated (the current
// time is used).
package contract
