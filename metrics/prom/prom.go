// Package prom serves handoff's metrics in the Prometheus exposition format:
// an OpenTelemetry SDK MeterProvider whose reader is the OpenTelemetry
// Prometheus exporter, and the /metrics handler over its registry.
//
// handoff's packages record through the OpenTelemetry metric API only
// (package metrics, resilience, resiliencehttp); this package is where the
// SDK and the Prometheus client come in, so a service that exports OTLP
// instead never links them. Names follow the OpenTelemetry conventions and
// are translated the way Prometheus's own OTLP ingestion does: dots become
// underscores, the unit is appended (messaging.process.duration →
// messaging_process_duration_seconds) and counters end in _total.
//
//	exp, _ := prom.New()
//	m, _ := metrics.New(metrics.WithMeterProvider(exp.MeterProvider()))
//	mux.Handle("GET /metrics", exp)
package prom

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// Exporter is a MeterProvider whose metrics are served by ServeHTTP.
type Exporter struct {
	reg *prometheus.Registry
	mp  *metric.MeterProvider
	h   http.Handler
}

// Option configures [New].
type Option func(*config)

type config struct {
	res     *resource.Resource
	runtime bool
}

// WithResource sets the OpenTelemetry resource (service.name and so on),
// served as the target_info metric.
func WithResource(r *resource.Resource) Option { return func(c *config) { c.res = r } }

// WithoutRuntime leaves out the Go runtime and process collectors (go_*,
// process_*), which are served by default.
func WithoutRuntime() Option { return func(c *config) { c.runtime = false } }

// New returns an exporter with its own Prometheus registry.
func New(opts ...Option) (*Exporter, error) {
	c := config{runtime: true}
	for _, o := range opts {
		o(&c)
	}
	reg := prometheus.NewRegistry()
	if c.runtime {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("prom: %w", err)
	}
	mopts := []metric.Option{metric.WithReader(exp)}
	if c.res != nil {
		mopts = append(mopts, metric.WithResource(c.res))
	}
	return &Exporter{
		reg: reg,
		mp:  metric.NewMeterProvider(mopts...),
		h:   promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}),
	}, nil
}

// MeterProvider is the provider to create instruments on.
func (e *Exporter) MeterProvider() *metric.MeterProvider { return e.mp }

// Registry is the Prometheus registry served; register other collectors on it.
func (e *Exporter) Registry() *prometheus.Registry { return e.reg }

// ServeHTTP serves the metrics in the exposition format the scraper asks
// for (text, or OpenMetrics).
func (e *Exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) { e.h.ServeHTTP(w, r) }

// Shutdown stops the meter provider.
func (e *Exporter) Shutdown(ctx context.Context) error { return e.mp.Shutdown(ctx) }
