// Package grpc applies handoff's resilience policies to gRPC unary calls:
// it is a thin adapter over package resilience, whose Policy composes them
// (retry → bulkhead → breaker → throttle → timeout) for HTTP and gRPC alike.
//
//	ic, err := grpc.UnaryClientInterceptor(resilience.Policy{Retry: &retry.Policy{MaxAttempts: 3}, Breaker: br, Timeout: time.Second})
//	conn, err := gogrpc.NewClient(target, gogrpc.WithUnaryInterceptor(ic), ...)
//
// Its [Classify] maps status codes to what the policies learn: it retries
// on Unavailable and ResourceExhausted, and on DeadlineExceeded when the
// per-try timeout (not the caller's deadline) expired; never on other
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
