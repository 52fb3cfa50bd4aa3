// Package grpc applies handoff's resilience policies to gRPC unary calls.
//
// The client interceptor composes, per attempt, a bulkhead, a breaker and
// adaptive throttling, with retries (and their budget) around them:
//
//	ic, err := grpc.UnaryClientInterceptor(resilient.Policy{Retry: retry.Policy{MaxAttempts: 3, PerTryTimeout: time.Second}, Breaker: br})
//	conn, err := gogrpc.NewClient(target, gogrpc.WithUnaryInterceptor(ic), ...)
//
// It retries on Unavailable and ResourceExhausted, and on DeadlineExceeded
// when a per-try timeout (not the caller's deadline) expired; never on other
// codes. It honours the server's grpc-retry-pushback-ms trailer. Deadlines
// travel by gRPC's own grpc-timeout propagation: the interceptor only
// shortens an attempt's context, it adds no header of its own.
//
// The server interceptor sheds load beyond a number of calls in flight
// (ResourceExhausted with a pushback trailer), refuses calls arriving with
// less than a minimum time left (DeadlineExceeded, without calling the
// handler), and optionally makes calls carrying an idempotency-key metadata
// entry run once per key, replaying the stored response to repeats.
//
// It does not handle streams.
package grpc
