// Package otelsetup wires the OpenTelemetry SDK for the handoff binary: a
// tracer provider exporting over OTLP/HTTP (or to stdout in dev, or
// nowhere), the W3C trace-context propagator, a meter provider served as
// Prometheus /metrics (package metrics/prom), and a slog logger that
// carries trace ids. Libraries use only the API; this is the one place the
// SDK is set up, and it sets the global providers.
package otelsetup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/handoffhq/handoff/metrics/prom"
	"github.com/handoffhq/handoff/telemetry"
)

// Trace exporters.
const (
	TracesNone   = "none"
	TracesStdout = "stdout"
	TracesOTLP   = "otlp"
)

// Config selects the exporters. Its zero value exports no traces and serves
// metrics.
type Config struct {
	Service  string    // service.name (default "handoff")
	Traces   string    // none (default), stdout or otlp
	Endpoint string    // otlp: the collector's base URL, e.g. http://127.0.0.1:4318 (default: OTEL_EXPORTER_OTLP_* variables, else the exporter's default)
	Stdout   io.Writer // stdout: where spans go, one JSON object each
	Sampler  float64   // fraction of new traces sampled, 0 < f <= 1 (0: 1); a sampled parent is always followed
}

// Providers are the SDK providers Setup made.
type Providers struct {
	Tracer  *sdktrace.TracerProvider
	Metrics *prom.Exporter
}

// Setup builds the providers and makes them the global ones. Errors name
// the Config field and the rule.
func Setup(ctx context.Context, c Config) (*Providers, error) {
	if c.Service == "" {
		c.Service = "handoff"
	}
	if c.Sampler < 0 || c.Sampler > 1 {
		return nil, fmt.Errorf("otel: sampler %v: must be between 0 and 1", c.Sampler)
	}
	if c.Sampler == 0 {
		c.Sampler = 1
	}
	res := resource.NewWithAttributes("", attribute.String("service.name", c.Service))
	var exp sdktrace.SpanExporter
	var err error
	switch c.Traces {
	case "", TracesNone:
	case TracesStdout:
		w := c.Stdout
		if w == nil {
			return nil, errors.New("otel: traces stdout: a writer must be given")
		}
		exp, err = stdouttrace.New(stdouttrace.WithWriter(w))
	case TracesOTLP:
		var opts []otlptracehttp.Option
		if c.Endpoint != "" {
			u, perr := url.Parse(c.Endpoint)
			if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("otel: endpoint %q: must be an http or https URL", c.Endpoint)
			}
			opts = append(opts, otlptracehttp.WithEndpointURL(u.JoinPath("/v1/traces").String()))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	default:
		return nil, fmt.Errorf("otel: traces %q: must be none, stdout or otlp", c.Traces)
	}
	if err != nil {
		return nil, fmt.Errorf("otel: traces %s: %w", c.Traces, err)
	}
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.Sampler)))}
	if exp != nil {
		topts = append(topts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(topts...)
	mexp, err := prom.New(prom.WithResource(res))
	if err != nil {
		return nil, fmt.Errorf("otel: metrics: %w", err)
	}
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mexp.MeterProvider())
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return &Providers{Tracer: tp, Metrics: mexp}, nil
}

// Shutdown flushes and stops the providers.
func (p *Providers) Shutdown(ctx context.Context) error {
	return errors.Join(p.Tracer.Shutdown(ctx), p.Metrics.Shutdown(ctx))
}

// Logger returns a text logger to w at level whose records carry trace_id
// and span_id when logged with a context inside a span.
func Logger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})))
}
