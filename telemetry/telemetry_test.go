package telemetry_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/telemetry"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// A trace started by the producer continues, unbroken, in the consumer's
// process span on the other side of the broker.
func TestTraceCrossesTheBroker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		b, _ := memory.NewBroker()
		defer b.Close()
		pub := telemetry.Publisher(b, telemetry.WithTracerProvider(tp), telemetry.WithSystem("memory"))

		letters, _ := dlq.New(memory.NewDLQStore())
		var handlerSpan trace.SpanContext
		c, err := consumer.New(b, "orders", "g", handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
			handlerSpan = trace.SpanContextFromContext(ctx)
			return nil
		}), letters, consumer.WithTracerProvider(tp))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- c.Run(ctx) }()

		rctx, root := tp.Tracer("test").Start(context.Background(), "place order")
		m := handoff.NewMessage("/orders", "order.placed", []byte(`{}`))
		if err := pub.Publish(rctx, "orders", m); err != nil {
			t.Fatal(err)
		}
		root.End()
		synctest.Wait()
		cancel()
		<-done

		var send, process sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			switch s.Name() {
			case "send orders":
				send = s
			case "process orders":
				process = s
			}
		}
		if send == nil || process == nil {
			t.Fatalf("spans %v: want send and process", rec.Ended())
		}
		if send.SpanKind() != trace.SpanKindProducer || process.SpanKind() != trace.SpanKindConsumer {
			t.Fatalf("kinds %v, %v", send.SpanKind(), process.SpanKind())
		}
		tid := root.SpanContext().TraceID()
		if send.SpanContext().TraceID() != tid || process.SpanContext().TraceID() != tid || handlerSpan.TraceID() != tid {
			t.Fatalf("trace broken: root %s, send %s, process %s, handler %s", tid, send.SpanContext().TraceID(),
				process.SpanContext().TraceID(), handlerSpan.TraceID())
		}
		if process.Parent().SpanID() != send.SpanContext().SpanID() {
			t.Fatalf("process span's parent %s, want the send span %s", process.Parent().SpanID(), send.SpanContext().SpanID())
		}
	})
}

// A message written under another trace (an outbox write) keeps its own
// context and the publish span links to it.
func TestPublisherLinksMessagesCreatedElsewhere(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	b, _ := memory.NewBroker()
	defer b.Close()
	m := handoff.NewMessage("/orders", "order.placed", []byte(`{}`))
	m.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if err := telemetry.Publisher(b, telemetry.WithTracerProvider(tp)).Publish(context.Background(), "orders", m); err != nil {
		t.Fatal(err)
	}
	spans := rec.Ended()
	if len(spans) != 1 || len(spans[0].Links()) != 1 || spans[0].Links()[0].SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("publish span does not link the write's context: %+v", spans)
	}
	if m.TraceParent != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Fatalf("the message's own trace context was overwritten: %s", m.TraceParent)
	}
}
