package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff/alert"
	"github.com/handoffhq/handoff/internal/otelsetup"
	"github.com/handoffhq/handoff/metrics"
)

// observeFlags are the observability flags of dev (and serve).
type observeFlags struct {
	traces, endpoint, webhook, format, routingKey string
	backlog                                       time.Duration
	noLease                                       time.Duration // serve and relay (registerDB)
}

func (f *observeFlags) register(fs *flag.FlagSet, defaultTraces string) {
	fs.StringVar(&f.traces, "traces", defaultTraces, "trace exporter: none, stdout (to <data-dir>/traces.jsonl in dev) or otlp")
	fs.StringVar(&f.endpoint, "otlp-endpoint", "", "OTLP/HTTP collector base URL for --traces otlp (default: the OTEL_EXPORTER_OTLP_* variables)")
	f.registerAlerts(fs)
}

// registerAlerts registers the alert flags (handoff relay has these only).
func (f *observeFlags) registerAlerts(fs *flag.FlagSet) {
	fs.StringVar(&f.webhook, "alert-webhook", "", "URL alerts are posted to (besides the log)")
	fs.StringVar(&f.format, "alert-format", "json", "body format of --alert-webhook: json, slack or pagerduty")
	fs.StringVar(&f.routingKey, "alert-routing-key", "", "PagerDuty routing key, for --alert-format pagerduty")
	fs.DurationVar(&f.backlog, "alert-backlog", 5*time.Minute, "alert when the oldest outbox row is older than this")
}

// observability is what dev mounts: metrics (/metrics), readiness
// (/readyz), traces and alerts.
type observability struct {
	prov    *otelsetup.Providers
	metrics *metrics.Metrics
	alerts  *alert.Manager
	ready   atomic.Bool
	flags   observeFlags
	log     *slog.Logger
	closers []io.Closer
}

func newObservability(ctx context.Context, f observeFlags, dataDir string, log *slog.Logger, alertOpts ...alert.Option) (*observability, error) {
	o := &observability{flags: f, log: log}
	cfg := otelsetup.Config{Service: "handoff", Traces: f.traces, Endpoint: f.endpoint}
	if f.traces == otelsetup.TracesStdout {
		tf, err := os.OpenFile(filepath.Join(dataDir, "traces.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, fmt.Errorf("--traces stdout: %w", err)
		}
		o.closers = append(o.closers, tf)
		cfg.Stdout = tf
	}
	prov, err := otelsetup.Setup(ctx, cfg)
	if err != nil {
		o.close()
		return nil, fmt.Errorf("--traces/--otlp-endpoint: %w", err)
	}
	o.prov = prov
	if o.metrics, err = metrics.New(metrics.WithMeterProvider(prov.Metrics.MeterProvider())); err != nil {
		o.close()
		return nil, err
	}
	notifiers, err := f.notifiers()
	if err != nil {
		o.close()
		return nil, err
	}
	if o.alerts, err = alert.New(notifiers, append(alertOpts, alert.WithLogger(log))...); err != nil {
		o.close()
		return nil, err
	}
	return o, nil
}

// notifiers returns the webhook of --alert-webhook (none without it),
// after checking the alert flags.
func (f observeFlags) notifiers() ([]alert.Notifier, error) {
	if f.backlog <= 0 {
		return nil, fmt.Errorf("--alert-backlog %v: must be > 0", f.backlog)
	}
	if f.webhook == "" {
		return nil, nil
	}
	w, err := alert.NewWebhook(f.webhook, alert.Format(f.format), alert.WithRoutingKey(f.routingKey))
	if err != nil {
		return nil, fmt.Errorf("--alert-webhook: %w", err)
	}
	return []alert.Notifier{w}, nil
}

func (o *observability) close() {
	if o.prov != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := o.prov.Shutdown(ctx); err != nil {
			o.log.Warn("otel: shutdown", "err", err)
		}
	}
	if o.metrics != nil {
		o.metrics.Close()
	}
	for _, c := range o.closers {
		c.Close()
	}
}

// mount serves /metrics and /readyz: 503 {"status":"starting"} until the
// parts have started, then the health check's answer.
func (o *observability) mount(mux *http.ServeMux, health http.Handler) {
	mux.Handle("GET /metrics", o.prov.Metrics)
	mux.Handle("GET /readyz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !o.ready.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]string{"status": "starting"})
			return
		}
		health.ServeHTTP(w, r)
	}))
}
