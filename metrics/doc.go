// Package metrics records handoff's metrics through the OpenTelemetry
// metric API, named and labelled per the OpenTelemetry semantic conventions
// (messaging, HTTP) where they have a name, and handoff.* or resilient.*
// where they do not. Every label is bounded: topics, groups, dead-letter
// classes, partitions, dependency and route names that the deployment
// configures, never message ids, paths or error texts.
//
//	m, _ := metrics.New(metrics.WithMeterProvider(mp))
//	pub = m.Publisher(pub, "nats")                                  // messaging.client.sent.messages, messaging.client.operation.duration
//	consumer.New(sub, topic, group, h, q, consumer.WithObserver(m)) // messaging.client.consumed.messages, messaging.process.duration
//	relay.New(store, pub, relay.WithObserver(m))                    // handoff.relay.lag per partition, handoff.relay.partitions, handoff.relay.errors
//	m.Outbox("main", store)                                         // handoff.outbox.pending, .oldest.age, .held
//	m.DeadLetters(q)                                                // handoff.dlq.open per consumer and class
//	m.Breakers(b...)
//	m.Bulkheads(bh...)
//	m.Budget("payments", budget)
//	mux.Handle("/registry/", m.Handler("/registry/", reg)) // http.server.request.duration
//
// It links the OpenTelemetry API only. Package metrics/prom serves the
// result as Prometheus /metrics (names as Prometheus translates them:
// messaging_client_sent_messages_total, handoff_outbox_oldest_age_seconds,
// ...); an OTLP exporter serves it just as well.
//
// [Metrics.Sagas] adds handoff.saga.instances, the unfinished sagas by saga
// name and status, read from a SQL saga store's CountsByName (handoff serve
// serves it); ended sagas are counted as they end by ObserveSaga.
//
// The gauges are read when the provider collects: an outbox's Stats is one
// query per scrape; the dead-letter store is read at most once per
// WithDeadLetterInterval, in pages, up to 100,000 open letters; the saga
// store at most once per WithSagaInterval.
package metrics
