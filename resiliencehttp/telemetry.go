package resiliencehttp

import (
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/handoffhq/handoff/resilience"
)

// The telemetry vocabulary (scope, span event names, attribute keys) is
// package resilience's, shared with adapter/grpc.
const (
	ScopeName    = resilience.ScopeName
	AttrHTTPCode = attribute.Key("http.response.status_code")
)

// outcome names a failed attempt on the attempts counter: "status" for a
// retryable status (5xx, 429), "error" for no response.
func outcome(err error) (string, []attribute.KeyValue) {
	var se *StatusError
	if errors.As(err, &se) {
		return "status", []attribute.KeyValue{AttrHTTPCode.Int(se.StatusCode)}
	}
	return "error", nil
}

// tracing is the tracer of a Transport and whether spans are worth starting:
// with the global provider and no SDK installed (it is still the global
// package's own delegate), every span would be a non-recording one made at
// the cost of two allocations; the request's context already carries the
// caller's span for propagation, so none is started.
type tracing struct {
	tracer   trace.Tracer
	explicit bool                 // WithTracerProvider: always start spans
	unset    trace.TracerProvider // the global delegate, while no provider is set
}

func newTracing(tp trace.TracerProvider) tracing {
	if tp != nil {
		return tracing{tracer: tp.Tracer(ScopeName), explicit: true}
	}
	global := otel.GetTracerProvider()
	t := tracing{tracer: global.Tracer(ScopeName)}
	if isGlobalDelegate(global) {
		t.unset = global
	}
	return t
}

// on reports whether to start spans: always with an explicit provider; with
// the global one, once a provider has been set (the global delegate then
// forwards to it).
func (t tracing) on() bool {
	return t.explicit || t.unset == nil || otel.GetTracerProvider() != t.unset
}
