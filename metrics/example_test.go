package metrics_test

import (
	"net/http"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/bulkhead"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/metrics"
	"github.com/handoffhq/handoff/relay"
	"github.com/handoffhq/handoff/retry"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Where each part of handoff hands its measurements to one Metrics. It
// needs a relay store and a dead-letter queue on a database, so it is not
// run here.
func Example() {
	mp := sdkmetric.NewMeterProvider() // the application's SDK, or package metrics/prom's
	sub, _ := memory.NewBroker()
	var (
		pub          handoff.Publisher = sub
		store        relay.Store       // postgres.RelayStore(db), sqlite's or mysql's
		q            *dlq.Queue        // dlq.New(postgres.DLQStore(db))
		h            handoff.Handler
		b            []*breaker.Breaker
		bh           []*bulkhead.Bulkhead
		budget       *retry.Budget
		reg          http.Handler // registry.NewServer(...)
		mux          = http.NewServeMux()
		topic, group = "orders", "billing"
	)

	m, _ := metrics.New(metrics.WithMeterProvider(mp))
	pub = m.Publisher(pub, "nats")                                  // messaging.client.sent.messages, messaging.client.operation.duration
	consumer.New(sub, topic, group, h, q, consumer.WithObserver(m)) // messaging.client.consumed.messages, messaging.process.duration
	relay.New(store, pub, relay.WithObserver(m))                    // handoff.relay.lag per partition, handoff.relay.partitions, handoff.relay.errors
	m.Outbox("main", store)                                         // handoff.outbox.pending, .oldest.age, .held
	m.DeadLetters(q)                                                // handoff.dlq.open per consumer and class
	m.Breakers(b...)
	m.Bulkheads(bh...)
	m.Budget("payments", budget)
	mux.Handle("/registry/", m.Handler("/registry/", reg)) // http.server.request.duration
}
