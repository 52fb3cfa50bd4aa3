// Package topologyotel feeds a topology graph from a service's own
// OpenTelemetry SDK: Processor is a span processor that turns every ended
// client, producer and consumer span into an observed edge, as
// topology.Observations does for OTLP exports.
//
//	g := topology.New()
//	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(topologyotel.New(g, nil)))
//
// Where the server side of a call ends in the same process (tests, a
// monolith being split), the client span is joined to it and the callee is
// the server's service.name; otherwise the callee is the client span's
// peer.service, the resolver's name for server.address, or the address.
//
// It lives apart from package topology because it links the OpenTelemetry
// SDK, which core packages never do.
package topologyotel

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoffhq/handoff/topology"
)

// maxPending bounds the server spans kept for a client span to join.
const maxPending = 4096

// Processor is an sdktrace.SpanProcessor recording edges into a graph.
type Processor struct {
	g       *topology.Graph
	resolve topology.Resolver

	mu sync.Mutex
	// servers holds ended server spans by their parent (a client span
	// that usually ends after them).
	servers map[string]topology.Span
}

var _ sdktrace.SpanProcessor = (*Processor)(nil)

// New returns a processor recording into g; resolve may be nil.
func New(g *topology.Graph, resolve topology.Resolver) *Processor {
	return &Processor{g: g, resolve: resolve, servers: map[string]topology.Span{}}
}

// OnStart does nothing.
func (p *Processor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd records the span's edge.
func (p *Processor) OnEnd(s sdktrace.ReadOnlySpan) {
	sp := Span(s)
	spans := []topology.Span{sp}
	switch sp.Kind {
	case topology.KindServer:
		if sp.ParentSpanID != "" {
			p.mu.Lock()
			if len(p.servers) >= maxPending {
				clear(p.servers)
			}
			p.servers[sp.TraceID+"/"+sp.ParentSpanID] = sp
			p.mu.Unlock()
		}
		return
	case topology.KindClient:
		key := sp.TraceID + "/" + sp.SpanID
		p.mu.Lock()
		if srv, ok := p.servers[key]; ok {
			spans = append(spans, srv)
			delete(p.servers, key)
		}
		p.mu.Unlock()
	}
	_, _ = p.g.ObserveSpans(spans, p.resolve)
}

// Shutdown does nothing.
func (p *Processor) Shutdown(context.Context) error { return nil }

// ForceFlush does nothing: edges are recorded as spans end.
func (p *Processor) ForceFlush(context.Context) error { return nil }

// Span converts an SDK span to the graph's view of it.
func Span(s sdktrace.ReadOnlySpan) topology.Span {
	sp := topology.Span{
		TraceID: s.SpanContext().TraceID().String(), SpanID: s.SpanContext().SpanID().String(),
		Kind: kind(s.SpanKind()), Name: s.Name(), Start: s.StartTime(), End: s.EndTime(),
		Error: s.Status().Code == codes.Error, Attrs: map[string]string{},
	}
	if p := s.Parent(); p.IsValid() {
		sp.ParentSpanID = p.SpanID().String()
	}
	if r := s.Resource(); r != nil {
		if v, ok := r.Set().Value("service.name"); ok {
			sp.Service = v.AsString()
		}
	}
	for _, a := range s.Attributes() {
		sp.Attrs[string(a.Key)] = value(a.Value)
	}
	return sp
}

func value(v attribute.Value) string {
	if v.Type() == attribute.STRING {
		return v.AsString()
	}
	return v.Emit()
}

func kind(k trace.SpanKind) topology.SpanKind {
	switch k {
	case trace.SpanKindServer:
		return topology.KindServer
	case trace.SpanKindClient:
		return topology.KindClient
	case trace.SpanKindProducer:
		return topology.KindProducer
	case trace.SpanKindConsumer:
		return topology.KindConsumer
	case trace.SpanKindInternal:
		return topology.KindInternal
	}
	return topology.KindUnspecified
}
