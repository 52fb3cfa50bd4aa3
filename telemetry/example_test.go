package telemetry_test

import (
	"context"
	"fmt"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/telemetry"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// A publisher that starts a producer span per message and injects its trace
// context into the message; on the other side, Extract continues the trace.
func ExamplePublisher() {
	defer otel.SetTracerProvider(otel.GetTracerProvider())
	otel.SetTracerProvider(sdktrace.NewTracerProvider()) // the application's SDK
	ctx := context.Background()
	broker, _ := memory.NewBroker()
	var pub handoff.Publisher = broker
	msg := handoff.NewMessage("/orders", "order.placed", []byte(`{"order":"7"}`))

	pub = telemetry.Publisher(pub)      // "send <topic>" producer spans, trace context injected
	_ = pub.Publish(ctx, "orders", msg) // msg carries traceparent now
	ctx = telemetry.Extract(ctx, msg)   // the consumer runtime does this for you
	fmt.Println(trace.SpanContextFromContext(ctx).IsRemote())
	// Output: true
}
