package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/internal/httpguard"
	"github.com/handoffhq/handoff/internal/otelsetup"
	"github.com/handoffhq/handoff/metrics"
	"github.com/handoffhq/handoff/relay"
)

// relayMetrics serves a relay's metrics (--metrics-addr): what it
// published (messaging.client.sent.messages and operation.duration, per
// topic), its lag per partition and the partitions it holds
// (handoff.relay.*), and the outbox it reads (handoff.outbox.*). A nil
// *relayMetrics (no --metrics-addr) wraps nothing.
type relayMetrics struct {
	prov *otelsetup.Providers
	m    *metrics.Metrics
	srv  *http.Server
	done chan struct{}
}

// startRelayMetrics serves GET /metrics on addr, without a token (bind it
// to an address only the scraper reaches), and prints its URL.
func startRelayMetrics(ctx context.Context, addr string, outbox relay.Store, stdout io.Writer) (*relayMetrics, error) {
	if addr == "" {
		return nil, nil
	}
	prov, err := otelsetup.Setup(ctx, otelsetup.Config{Service: "handoff-relay"})
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	rm := &relayMetrics{prov: prov, done: make(chan struct{})}
	fail := func(err error) (*relayMetrics, error) {
		rm.close()
		return nil, err
	}
	if rm.m, err = metrics.New(metrics.WithMeterProvider(prov.Metrics.MeterProvider())); err != nil {
		return fail(err)
	}
	if err := rm.m.Outbox("outbox", outbox); err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fail(fmt.Errorf("--metrics-addr: listen on %s: %w", addr, err))
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", prov.Metrics)
	rm.srv = httpguard.NewServer(mux, httpguard.Timeouts{})
	go func() {
		defer close(rm.done)
		rm.srv.Serve(ln)
	}()
	fmt.Fprintf(stdout, "metrics          http://%s/metrics\n", ln.Addr())
	return rm, nil
}

// publisher wraps pub so its publishes are counted and timed, labelled
// with the broker's messaging.system.
func (rm *relayMetrics) publisher(pub handoff.Publisher, brokerURL string) handoff.Publisher {
	if rm == nil {
		return pub
	}
	system, _, _ := strings.Cut(brokerURL, "://")
	switch system {
	case "tls":
		system = "nats"
	case "amqp", "amqps":
		system = "rabbitmq"
	}
	return rm.m.Publisher(pub, system)
}

// options makes the metrics the relay's observer.
func (rm *relayMetrics) options() []relay.Option {
	if rm == nil {
		return nil
	}
	return []relay.Option{relay.WithObserver(rm.m)}
}

func (rm *relayMetrics) close() {
	if rm == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	if rm.srv != nil {
		errs = append(errs, rm.srv.Shutdown(ctx))
		<-rm.done
	}
	if rm.m != nil {
		errs = append(errs, rm.m.Close())
	}
	errs = append(errs, rm.prov.Shutdown(ctx))
	_ = errors.Join(errs...)
}
