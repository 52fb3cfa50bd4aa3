package grpc_test

import (
	"time"

	gogrpc "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/handoffhq/handoff/adapter/grpc"
	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/resilience"
	"github.com/handoffhq/handoff/retry"
)

// A gRPC client connection whose unary calls go through the resilience
// policies (it dials a service, so it is not run here).
func ExampleUnaryClientInterceptor() {
	target := "dns:///inventory.internal:443"
	br, err := breaker.New("inventory")
	if err != nil {
		panic(err)
	}
	ic, err := grpc.UnaryClientInterceptor(resilience.Policy{Retry: &retry.Policy{MaxAttempts: 3}, Breaker: br, Timeout: time.Second})
	if err != nil {
		panic(err)
	}
	conn, err := gogrpc.NewClient(target, gogrpc.WithUnaryInterceptor(ic), gogrpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
}
