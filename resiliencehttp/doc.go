// Package resiliencehttp keeps a slow or failing dependency from taking its
// callers down, for HTTP: the HTTP adapter of package resilience, whose
// Policy composes the retry, bulkhead, breaker and throttle policies (in one
// order, with one classification per attempt) for HTTP and gRPC alike. It
// has a client [Transport] applying a [Policy] per dependency (the core
// policy, plus hedging and a fallback, which deal with responses), a server
// middleware [Server] for deadlines and load shedding, a YAML [Config], and
// OpenTelemetry spans, events and metrics for all of it.
//
// The minimal call sequence, client side (ExampleNewTransport runs one):
//
//	budget, _ := retry.NewBudget(0.1)
//	br, _ := breaker.New("payments")
//	tr, _ := resiliencehttp.NewTransport(nil, resiliencehttp.WithPolicy("payments.internal:8443", resiliencehttp.Policy{
//		Policy: resilience.Policy{Retry: &retry.Policy{MaxAttempts: 3, MinAttemptTime: 50 * time.Millisecond, Budget: budget},
//			Breaker: br, Timeout: time.Second},
//	}))
//	client := &http.Client{Transport: tr}
//
// or from a file: cfg, err := resiliencehttp.LoadConfig(f); tr, err := cfg.Transport(nil).
// Server side:
//
//	srv, _ := resiliencehttp.NewServer(resiliencehttp.WithMaxTimeout(10*time.Second), resiliencehttp.WithMaxInFlight(200))
//	http.ListenAndServe(addr, srv.Wrap(mux))
//
// # What it guarantees
//
//   - The caller's deadline travels: the Transport sends the time left as
//     Request-Timeout (milliseconds; see [HeaderTimeout]), each attempt's
//     timeout is min(per-try timeout, time left), and a Server makes it the
//     handler's context deadline, refusing (504) work whose time is up. With
//     retry.Policy.MinAttemptTime no attempt starts without the time it needs,
//     so a service near the end of its budget does not call further down.
//   - Only safe requests are repeated: retries and hedges happen for
//     idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE, TRACE) and for
//     requests carrying an Idempotency-Key (see package idempotency for the
//     server side); hedges only for GET and HEAD. Bodies are replayed through
//     GetBody or buffered up to a limit; a larger body is sent once.
//   - Retries do not multiply load: 5xx, 429 and connection errors are
//     retried with jittered backoff, Retry-After is honoured, and a shared
//     retry.Budget caps retries at a fraction of requests.
//   - Failed attempts' response bodies are drained and closed; when retries
//     run out on a 5xx or 429 the caller gets that last response, not an error.
//
// # Telemetry
//
// Each RoundTrip is a span ("resilient <dependency>") with one client span
// per attempt carrying resilience.AttrAttempt and W3C trace context injected
// into the request. Retries, exhausted budgets, breaker and bulkhead
// rejections, throttling, hedges, fallbacks and shedding are span events
// (resilience.EventName* constants) and counters; the breaker state is a
// gauge. Only the OpenTelemetry API is used: the SDK is the application's
// choice. With the global tracer provider and no SDK installed, no span is
// started, and the happy path allocates nothing of its own.
//
// # What it does not do
//
// It does not retry streams or non-idempotent requests without a key, does
// not subtract network transit from the propagated deadline, and does not
// coordinate policy state across processes: each process has its own
// breaker, budget and throttle per dependency. For gRPC, see adapter/grpc.
package resiliencehttp
