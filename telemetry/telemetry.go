// Package telemetry carries OpenTelemetry trace context inside handoff
// messages and records spans per the OpenTelemetry messaging semantic
// conventions, using only the OpenTelemetry API: the SDK, exporters and
// propagator setup are the application's choice (the global providers by
// default).
//
// The trace context travels in the message itself (the CloudEvents
// distributed-tracing extension: traceparent and tracestate), so a trace
// crosses any broker, the outbox table and the dead-letter store unbroken.
//
//	pub = telemetry.Publisher(pub)            // "send <topic>" producer spans, trace context injected
//	ctx = telemetry.Extract(ctx, msg)         // the consumer runtime does this for you
package telemetry

import (
	"context"

	"github.com/handoffhq/handoff"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of handoff's spans and metrics.
const ScopeName = "github.com/handoffhq/handoff"

// Attribute keys of the OpenTelemetry messaging conventions.
const (
	AttrSystem          = attribute.Key("messaging.system")
	AttrDestination     = attribute.Key("messaging.destination.name")
	AttrOperationType   = attribute.Key("messaging.operation.type")
	AttrOperationName   = attribute.Key("messaging.operation.name")
	AttrMessageID       = attribute.Key("messaging.message.id")
	AttrConversationID  = attribute.Key("messaging.message.conversation_id")
	AttrBodySize        = attribute.Key("messaging.message.body.size")
	AttrConsumerGroup   = attribute.Key("messaging.consumer.group.name")
	AttrBatchCount      = attribute.Key("messaging.batch.message_count")
	AttrDeliveryAttempt = attribute.Key("handoff.delivery.attempt")
	AttrPartitionKey    = attribute.Key("handoff.partition_key")
)

var tc = propagation.TraceContext{}

// carrier adapts a message's trace attributes to a TextMapCarrier.
type carrier struct{ m *handoff.Message }

func (c carrier) Get(k string) string {
	switch k {
	case "traceparent":
		return c.m.TraceParent
	case "tracestate":
		return c.m.TraceState
	}
	return ""
}

func (c carrier) Set(k, v string) {
	switch k {
	case "traceparent":
		c.m.TraceParent = v
	case "tracestate":
		c.m.TraceState = v
	}
}

func (c carrier) Keys() []string { return []string{"traceparent", "tracestate"} }

// Inject writes the span context of ctx into msg's traceparent and tracestate,
// unless msg already carries a trace context (its creation context wins).
func Inject(ctx context.Context, msg *handoff.Message) {
	if msg.TraceParent != "" {
		return
	}
	tc.Inject(ctx, carrier{msg})
}

// Extract returns ctx with the remote span context carried by msg, if any.
func Extract(ctx context.Context, msg *handoff.Message) context.Context {
	if msg.TraceParent == "" {
		return ctx
	}
	return tc.Extract(ctx, carrier{msg})
}

// SpanContext returns the span context carried by msg (invalid if none).
func SpanContext(msg *handoff.Message) trace.SpanContext {
	return trace.SpanContextFromContext(Extract(context.Background(), msg))
}

// Option configures instrumentation.
type Option func(*config)

type config struct {
	tp     trace.TracerProvider
	system string
}

// WithTracerProvider sets the TracerProvider (default: otel.GetTracerProvider()).
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// WithSystem sets messaging.system (e.g. "nats", "kafka", "rabbitmq").
func WithSystem(s string) Option { return func(c *config) { c.system = s } }

func newConfig(opts []Option) config {
	c := config{system: "handoff"}
	for _, o := range opts {
		o(&c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	return c
}

// Tracer returns handoff's tracer from the configured provider.
func Tracer(opts ...Option) trace.Tracer {
	c := newConfig(opts)
	return c.tp.Tracer(ScopeName)
}

type publisher struct {
	next   handoff.Publisher
	tracer trace.Tracer
	system string
}

// Publisher wraps pub so each Publish records a "send <topic>" producer span
// and each message without a trace context gets one: the message's creation
// context is that span, so the consumer's process span joins the same trace.
func Publisher(pub handoff.Publisher, opts ...Option) handoff.Publisher {
	c := newConfig(opts)
	return &publisher{next: pub, tracer: c.tp.Tracer(ScopeName), system: c.system}
}

// Check passes the wrapped publisher's Check through (relay.Checker), so
// a relay still sees whether its broker is reachable; nil when the wrapped
// publisher has none.
func (p *publisher) Check(ctx context.Context) error {
	if c, ok := p.next.(interface{ Check(context.Context) error }); ok {
		return c.Check(ctx)
	}
	return nil
}

func (p *publisher) Publish(ctx context.Context, topic string, msgs ...*handoff.Message) error {
	attrs := []attribute.KeyValue{
		AttrSystem.String(p.system),
		AttrDestination.String(topic),
		AttrOperationType.String("send"),
		AttrOperationName.String("send"),
	}
	if len(msgs) == 1 {
		attrs = append(attrs, AttrMessageID.String(msgs[0].ID), AttrBodySize.Int(len(msgs[0].Data)))
	} else {
		attrs = append(attrs, AttrBatchCount.Int(len(msgs)))
	}
	ctx, span := p.tracer.Start(ctx, "send "+topic, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	defer span.End()
	for _, m := range msgs {
		if m.TraceParent != "" {
			// Created under another context: link it.
			if sc := SpanContext(m); sc.IsValid() {
				span.AddLink(trace.Link{SpanContext: sc})
			}
			continue
		}
		Inject(ctx, m)
	}
	err := p.next.Publish(ctx, topic, msgs...)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}
