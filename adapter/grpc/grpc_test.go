package grpc_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	resgrpc "github.com/handoffhq/handoff/adapter/grpc"
	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/idempotency"
	"github.com/handoffhq/handoff/resilience"
	"github.com/handoffhq/handoff/retry"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	gogrpc "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// health is the test service: Check answers with the function under test.
type health struct {
	healthpb.UnimplementedHealthServer
	calls atomic.Int32
	check func(ctx context.Context, n int, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error)
}

func (h *health) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	n := int(h.calls.Add(1))
	return h.check(ctx, n, req)
}

func serving() *healthpb.HealthCheckResponse {
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}
}

// dial starts a server with the given interceptor over bufconn and returns a
// Health client whose connection uses the client interceptor ci.
func dial(t *testing.T, h *health, ci gogrpc.UnaryClientInterceptor, si gogrpc.UnaryServerInterceptor) healthpb.HealthClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	var sopts []gogrpc.ServerOption
	if si != nil {
		sopts = append(sopts, gogrpc.UnaryInterceptor(si))
	}
	srv := gogrpc.NewServer(sopts...)
	healthpb.RegisterHealthServer(srv, h)
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	copts := []gogrpc.DialOption{
		gogrpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		gogrpc.WithTransportCredentials(insecure.NewCredentials()),
	}
	if ci != nil {
		copts = append(copts, gogrpc.WithUnaryInterceptor(ci))
	}
	conn, err := gogrpc.NewClient("passthrough:///bufnet", copts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

func interceptor(t *testing.T, p resilience.Policy, opts ...resgrpc.ClientOption) gogrpc.UnaryClientInterceptor {
	t.Helper()
	ci, err := resgrpc.UnaryClientInterceptor(p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ci
}

func fast(n int) *retry.Policy {
	return &retry.Policy{MaxAttempts: n, Backoff: retry.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond}}
}

func TestClient_RetriesOnlyTransientCodes(t *testing.T) {
	tests := []struct {
		name      string
		codes     []codes.Code // per call; OK ends
		perTry    time.Duration
		wantCalls int
		wantCode  codes.Code
	}{
		{"unavailable retried", []codes.Code{codes.Unavailable, codes.Unavailable, codes.OK}, 0, 3, codes.OK},
		{"resource exhausted retried", []codes.Code{codes.ResourceExhausted, codes.OK}, 0, 2, codes.OK},
		{"invalid argument not retried", []codes.Code{codes.InvalidArgument, codes.OK}, 0, 1, codes.InvalidArgument},
		{"internal not retried", []codes.Code{codes.Internal, codes.OK}, 0, 1, codes.Internal},
		{"not found not retried", []codes.Code{codes.NotFound, codes.OK}, 0, 1, codes.NotFound},
		{"exhausted keeps last code", []codes.Code{codes.Unavailable, codes.Unavailable, codes.Unavailable, codes.OK}, 0, 3, codes.Unavailable},
		{"per-try deadline retried", []codes.Code{codes.DeadlineExceeded, codes.OK}, 100 * time.Millisecond, 2, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &health{check: func(ctx context.Context, n int, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
				c := tt.codes[n-1]
				if c == codes.DeadlineExceeded {
					<-ctx.Done() // hang until the per-try timeout
					return nil, status.FromContextError(ctx.Err()).Err()
				}
				if c != codes.OK {
					return nil, status.Error(c, "injected")
				}
				return serving(), nil
			}}
			client := dial(t, h, interceptor(t, resilience.Policy{Retry: fast(3), Timeout: tt.perTry}), nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code %v (%v), want %v", got, err, tt.wantCode)
			}
			if n := int(h.calls.Load()); n != tt.wantCalls {
				t.Fatalf("server saw %d calls, want %d", n, tt.wantCalls)
			}
		})
	}
}

func TestClient_CallerDeadlineNotRetried(t *testing.T) {
	h := &health{check: func(ctx context.Context, _ int, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}}
	client := dial(t, h, interceptor(t, resilience.Policy{Retry: fast(3)}), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if n := h.calls.Load(); n != 1 {
		t.Fatalf("server saw %d calls after the caller's deadline, want 1", n)
	}
}

func TestClient_PushbackHonoured(t *testing.T) {
	for _, tt := range []struct {
		pushback  string
		wantCalls int32
	}{{"1", 2}, {"-1", 1}, {"soon", 1}} {
		h := &health{check: func(ctx context.Context, n int, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
			if n == 1 {
				gogrpc.SetTrailer(ctx, metadata.Pairs(resgrpc.MetadataPushback, tt.pushback))
				return nil, status.Error(codes.Unavailable, "busy")
			}
			return serving(), nil
		}}
		client := dial(t, h, interceptor(t, resilience.Policy{Retry: fast(3)}), nil)
		client.Check(context.Background(), &healthpb.HealthCheckRequest{})
		if n := h.calls.Load(); n != tt.wantCalls {
			t.Fatalf("pushback %q: %d calls, want %d", tt.pushback, n, tt.wantCalls)
		}
	}
}

func TestClient_BreakerOpens(t *testing.T) {
	h := &health{check: func(context.Context, int, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
		return nil, status.Error(codes.Unavailable, "down")
	}}
	br, err := breaker.New("health", breaker.WithCountWindow(4), breaker.WithMinimumCalls(4), breaker.WithOpenDuration(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	client := dial(t, h, interceptor(t, resilience.Policy{Breaker: br}), nil)
	for range 10 {
		client.Check(context.Background(), &healthpb.HealthCheckRequest{})
	}
	if n := h.calls.Load(); n != 4 {
		t.Fatalf("server saw %d calls, want 4 before the breaker opened", n)
	}
	_, err = client.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Unavailable || br.State() != breaker.Open || h.calls.Load() != 4 {
		t.Fatalf("err = %v, breaker %v, %d calls; want Unavailable from the open breaker, nothing sent", err, br.State(), h.calls.Load())
	}
}

func TestDeadlinePropagatesThroughGRPC(t *testing.T) {
	var got time.Time
	h := &health{check: func(ctx context.Context, _ int, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
		got, _ = ctx.Deadline()
		return serving(), nil
	}}
	client := dial(t, h, interceptor(t, resilience.Policy{Timeout: 300 * time.Millisecond}), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	// The server's deadline is the attempt's (300ms), not the caller's 5s.
	if got.IsZero() || got.After(start.Add(300*time.Millisecond+50*time.Millisecond)) {
		t.Fatalf("server deadline %v after start, want ≤ the 300ms per-try timeout", got.Sub(start))
	}
}

func TestServer_ShedsAndRefusesExpired(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	h := &health{check: func(ctx context.Context, _ int, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
		if req.Service == "block" {
			entered <- struct{}{}
			<-release
		}
		return serving(), nil
	}}
	si, err := resgrpc.UnaryServerInterceptor(resgrpc.WithMaxInFlight(1, 250*time.Millisecond), resgrpc.WithMinTimeLeft(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	client := dial(t, h, nil, si)
	var wg sync.WaitGroup
	wg.Go(func() { client.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "block"}) })
	<-entered
	var trailer metadata.MD
	_, err = client.Check(context.Background(), &healthpb.HealthCheckRequest{}, gogrpc.Trailer(&trailer))
	if status.Code(err) != codes.ResourceExhausted || trailer.Get(resgrpc.MetadataPushback)[0] != "250" {
		t.Fatalf("second call: %v, trailer %v; want ResourceExhausted with pushback 250", err, trailer)
	}
	close(release)
	wg.Wait()

	before := h.calls.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = client.Check(ctx, &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.DeadlineExceeded || h.calls.Load() != before {
		t.Fatalf("call with 50ms left: %v, handler calls %d→%d; want DeadlineExceeded without the handler", err, before, h.calls.Load())
	}
}

func TestServer_IdempotencyKey(t *testing.T) {
	mw, err := idempotency.New(new(idempotency.MemoryStore))
	if err != nil {
		t.Fatal(err)
	}
	si, err := resgrpc.UnaryServerInterceptor(resgrpc.WithIdempotency(mw, nil))
	if err != nil {
		t.Fatal(err)
	}
	h := &health{check: func(_ context.Context, n int, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
		if req.Service == "bad" {
			return nil, status.Error(codes.InvalidArgument, "no such service")
		}
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_ServingStatus(n)}, nil
	}}
	client := dial(t, h, nil, si)
	withKey := metadata.AppendToOutgoingContext(context.Background(), resgrpc.MetadataIdempotencyKey, "k1")
	r1, err := client.Check(withKey, &healthpb.HealthCheckRequest{Service: "pay"})
	if err != nil {
		t.Fatal(err)
	}
	var trailer metadata.MD
	r2, err := client.Check(withKey, &healthpb.HealthCheckRequest{Service: "pay"}, gogrpc.Trailer(&trailer))
	if err != nil {
		t.Fatal(err)
	}
	if r1.Status != r2.Status || h.calls.Load() != 1 || trailer.Get("idempotent-replayed")[0] != "true" {
		t.Fatalf("repeat: %v vs %v, %d handler calls, trailer %v; want the replay", r1.Status, r2.Status, h.calls.Load(), trailer)
	}
	_, err = client.Check(withKey, &healthpb.HealthCheckRequest{Service: "other"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("same key, different request: %v, want InvalidArgument", err)
	}
	// A non-transient error is stored and replayed too.
	bad := metadata.AppendToOutgoingContext(context.Background(), resgrpc.MetadataIdempotencyKey, "k2")
	for range 2 {
		if _, err := client.Check(bad, &healthpb.HealthCheckRequest{Service: "bad"}); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("err = %v, want InvalidArgument", err)
		}
	}
	if n := h.calls.Load(); n != 2 {
		t.Fatalf("handler ran %d times, want 2", n)
	}
	// Without a key the call is not deduplicated.
	client.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "pay"})
	if n := h.calls.Load(); n != 3 {
		t.Fatalf("handler ran %d times, want 3", n)
	}
}

func TestClient_RecordsRetryEventsAndMetrics(t *testing.T) {
	h := &health{check: func(_ context.Context, n int, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
		if n == 1 {
			return nil, status.Error(codes.Unavailable, "blip")
		}
		return serving(), nil
	}}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	client := dial(t, h, interceptor(t, resilience.Policy{Retry: fast(3)}, resgrpc.WithName("health"), resgrpc.WithMeterProvider(mp)), nil)
	ctx, span := tp.Tracer("t").Start(context.Background(), "caller")
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	span.End()
	found := false
	for _, e := range sr.Ended()[0].Events() {
		found = found || e.Name == resilience.EventNameRetry
	}
	if !found {
		t.Fatal("no retry event on the caller's span")
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var attempts int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "resilient.client.attempts" {
				for _, dp := range s.DataPoints {
					attempts += dp.Value
				}
			}
		}
	}
	if attempts != 2 {
		t.Fatalf("resilient.client.attempts = %d, want 2", attempts)
	}
}
