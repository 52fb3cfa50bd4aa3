package topologyotel_test

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoffhq/handoff/topology"
	"github.com/handoffhq/handoff/topology/topologyotel"
)

// A service's own tracer provider feeds the graph: each ended client span
// is an observed call.
func ExampleNew() {
	g := topology.New()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(topologyotel.New(g, nil)))
	defer tp.Shutdown(context.Background())

	_, span := tp.Tracer("checkout").Start(context.Background(), "POST /charges",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("peer.service", "payment"), attribute.String("http.request.method", "POST")))
	span.End()
	for _, e := range g.Edges() {
		fmt.Println("to", e.To, e.Kind, e.Observed.Calls)
	}
	// Output:
	// to payment sync 1
}
