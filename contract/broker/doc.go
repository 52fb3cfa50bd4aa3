// Package broker is a contract broker: it stores pacts and verification
// results, knows which versions are deployed or released in which
// environment, and answers can-i-deploy. It speaks the Pact Broker's HTTP
// API (HAL resources), so Pact's own CLIs and verifiers publish to it and
// fetch from it, and so does handoff's contract.BrokerClient.
//
//	b, err := broker.New(postgres.ContractStore(db), broker.WithToken(token))
//	http.Handle("/", b)
//
// Routes: the index (GET /), POST /contracts/publish, PUT and GET
// /pacts/provider/{p}/consumer/{c}/version/{v}, GET …/pact-version/{sha},
// POST …/pact-version/{sha}/verification-results,
// /pacts/provider/{p}/for-verification (consumer version selectors,
// pending status, work-in-progress pacts), /pacticipants/…, branches,
// tags, /environments, deployed-versions and released-versions, /matrix
// and /can-i-deploy. Every route needs the token (bearer, or the password
// of basic auth), reads none with WithOpenReads(true). WithScopedToken
// gives tokens that may only read, or read and publish (pacts, results,
// deployments), while admin tokens may also create environments and
// pacticipants.
//
// # can-i-deploy
//
// A version may go to an environment when every pact it published is
// verified successfully by each version of its provider deployed or
// released there, and when it verified successfully the pact of each
// consumer version there. A provider that is not there fails a consumer
// (it needs it); a consumer that is not there does not hold up a provider.
// The answer carries typed reasons (contract.Reason*): verified,
// no-verification, verification-failed, pending (it failed while the pact
// was pending: the provider's build passed, the consumer cannot deploy),
// version-not-found, environment-not-found, no-dependencies. Verification
// results belong to a pact's content, so a consumer version that publishes
// unchanged content is already verified.
//
// A pact is pending for a provider branch until a provider version on
// that branch verified it successfully (or another branch did before this
// branch existed), as in the Pact Broker.
//
// Not here: webhooks, labels, the UI, the Pact Broker's older tag-only
// routes beyond what its clients use, deleting data.
package broker
