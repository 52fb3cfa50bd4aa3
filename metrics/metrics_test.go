package metrics_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/bulkhead"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/metrics"
	"github.com/handoffhq/handoff/metrics/prom"
	"github.com/handoffhq/handoff/relay"
	"github.com/handoffhq/handoff/retry"
)

type stats relay.Stats

func (s stats) Stats(context.Context) (relay.Stats, error) { return relay.Stats(s), nil }

type tee struct {
	next consumer.Observer
	ch   chan consumer.Outcome
}

func (t tee) Observe(o consumer.Outcome) { t.next.Observe(o); t.ch <- o }

// Scrape returns the parsed exposition of the exporter, served over HTTP.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("exposition does not parse: %v", err)
	}
	return fams
}

func labels(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

// find returns the value of the series of family name whose labels include
// want, failing when there is none.
func find(t *testing.T, fams map[string]*dto.MetricFamily, name string, typ dto.MetricType, want map[string]string) *dto.Metric {
	t.Helper()
	f := fams[name]
	if f == nil {
		var names []string
		for n := range fams {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Fatalf("family %s missing; have %s", name, strings.Join(names, " "))
	}
	if f.GetType() != typ {
		t.Errorf("%s: type %v, want %v", name, f.GetType(), typ)
	}
next:
	for _, m := range f.GetMetric() {
		l := labels(m)
		for k, v := range want {
			if l[k] != v {
				continue next
			}
		}
		return m
	}
	t.Fatalf("%s: no series with labels %v", name, want)
	return nil
}

// Every family the issue names is served, parses as the Prometheus text
// format, and carries the values fed through the public entry points: a
// real consumer on the in-memory broker, a relay event, an outbox's stats,
// a dead-letter store, a breaker, a bulkhead, a retry budget and an HTTP
// handler.
func TestMetrics_ScrapeCarriesEveryFamily(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exp, err := prom.New()
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(context.Background())
	m, err := metrics.New(metrics.WithMeterProvider(exp.MeterProvider()))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	broker, _ := memory.NewBroker()
	store := memory.NewDLQStore()
	q, _ := dlq.New(store)
	seen := make(chan consumer.Outcome, 10)
	c, err := consumer.New(broker, "orders", "shipping", handoff.HandlerFunc(func(ctx context.Context, msg *handoff.Message) error {
		if string(msg.Data) == `"bad"` {
			return handoff.Permanent(errors.New("refused"))
		}
		return nil
	}), q, consumer.WithObserver(tee{m, seen}))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	pub := m.Publisher(broker, "memory")
	for _, d := range []string{`"good"`, `"bad"`} {
		if err := pub.Publish(ctx, "orders", handoff.NewMessage("/test", "order.placed", []byte(d))); err != nil {
			t.Fatal(err)
		}
	}
	<-seen
	<-seen

	m.ObserveRelay(relay.Event{Published: 3, Partitions: []int{0, 3}, Pending: -1,
		PartitionLag: map[int]time.Duration{3: 40 * time.Millisecond}})
	if err := m.Outbox("main", stats{Pending: 7, Oldest: time.Now().Add(-90 * time.Second), Held: 1}); err != nil {
		t.Fatal(err)
	}
	if err := m.DeadLetters(q); err != nil {
		t.Fatal(err)
	}
	br, _ := breaker.New("payments", breaker.WithCountWindow(2), breaker.WithMinimumCalls(2), breaker.WithFailureRate(50))
	for range 2 {
		_ = br.Do(ctx, func(context.Context) error { return errors.New("down") })
	}
	bh, _ := bulkhead.New("inventory", 4)
	if !bh.TryAcquire() {
		t.Fatal("bulkhead full")
	}
	budget, _ := retry.NewBudget(0.1)
	if err := errors.Join(m.Breakers(br), m.Bulkheads(bh), m.Budget("payments", budget)); err != nil {
		t.Fatal(err)
	}
	api := m.Handler("/registry/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}))
	api.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/registry/subjects/x", nil))
	api.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("BREW", "/registry/", nil))

	fams := scrape(t, exp)
	sent := find(t, fams, "messaging_client_sent_messages_total", dto.MetricType_COUNTER,
		map[string]string{"messaging_destination_name": "orders", "messaging_system": "memory"})
	if v := sent.GetCounter().GetValue(); v != 2 {
		t.Errorf("sent: %v, want 2", v)
	}
	find(t, fams, "messaging_client_operation_duration_seconds", dto.MetricType_HISTOGRAM, map[string]string{"messaging_destination_name": "orders"})
	acked := find(t, fams, "messaging_client_consumed_messages_total", dto.MetricType_COUNTER,
		map[string]string{"messaging_consumer_group_name": "shipping", "handoff_outcome": "acked"})
	dead := find(t, fams, "messaging_client_consumed_messages_total", dto.MetricType_COUNTER,
		map[string]string{"handoff_outcome": "dead_lettered", "handoff_dlq_class": dlq.ClassPermanent})
	if acked.GetCounter().GetValue() != 1 || dead.GetCounter().GetValue() != 1 {
		t.Errorf("consumed: acked %v, dead-lettered %v; want 1 and 1", acked.GetCounter().GetValue(), dead.GetCounter().GetValue())
	}
	find(t, fams, "messaging_process_duration_seconds", dto.MetricType_HISTOGRAM, map[string]string{"messaging_consumer_group_name": "shipping"})
	lag := find(t, fams, "handoff_relay_lag_seconds", dto.MetricType_HISTOGRAM, map[string]string{"handoff_relay_partition": "3"})
	if lag.GetHistogram().GetSampleCount() != 1 {
		t.Errorf("relay lag count %d, want 1", lag.GetHistogram().GetSampleCount())
	}
	if v := find(t, fams, "handoff_relay_partitions", dto.MetricType_GAUGE, nil).GetGauge().GetValue(); v != 2 {
		t.Errorf("relay partitions %v, want 2", v)
	}
	if v := find(t, fams, "handoff_outbox_pending", dto.MetricType_GAUGE, map[string]string{"handoff_outbox_name": "main"}).GetGauge().GetValue(); v != 7 {
		t.Errorf("pending %v, want 7", v)
	}
	find(t, fams, "handoff_outbox_held", dto.MetricType_GAUGE, map[string]string{"handoff_outbox_name": "main"})
	if v := find(t, fams, "handoff_outbox_oldest_age_seconds", dto.MetricType_GAUGE, nil).GetGauge().GetValue(); v < 90 || v > 3600 {
		t.Errorf("oldest age %v, want about 90", v)
	}
	if v := find(t, fams, "handoff_dlq_open", dto.MetricType_GAUGE,
		map[string]string{"messaging_consumer_group_name": "shipping", "handoff_dlq_class": dlq.ClassPermanent}).GetGauge().GetValue(); v != 1 {
		t.Errorf("open letters %v, want 1", v)
	}
	if v := find(t, fams, "resilient_breaker_state", dto.MetricType_GAUGE,
		map[string]string{"resilient_dependency": "payments", "resilient_breaker_state": "open"}).GetGauge().GetValue(); v != 1 {
		t.Errorf("breaker open = %v, want 1", v)
	}
	find(t, fams, "resilient_breaker_rejected_total", dto.MetricType_COUNTER, map[string]string{"resilient_dependency": "payments"})
	if v := find(t, fams, "resilient_bulkhead_in_flight", dto.MetricType_GAUGE, map[string]string{"resilient_dependency": "inventory"}).GetGauge().GetValue(); v != 1 {
		t.Errorf("bulkhead in flight %v, want 1", v)
	}
	find(t, fams, "resilient_bulkhead_limit", dto.MetricType_GAUGE, map[string]string{"resilient_dependency": "inventory"})
	find(t, fams, "resilient_bulkhead_queued", dto.MetricType_GAUGE, nil)
	find(t, fams, "resilient_bulkhead_rejected_total", dto.MetricType_COUNTER, nil)
	find(t, fams, "resilient_retry_budget_tokens", dto.MetricType_GAUGE, map[string]string{"resilient_dependency": "payments"})
	find(t, fams, "http_server_request_duration_seconds", dto.MetricType_HISTOGRAM,
		map[string]string{"http_route": "/registry/", "http_request_method": "GET", "http_response_status_code": "404"})
	find(t, fams, "http_server_request_duration_seconds", dto.MetricType_HISTOGRAM,
		map[string]string{"http_request_method": "_OTHER"})
	find(t, fams, "go_goroutines", dto.MetricType_GAUGE, nil)

	// Bounded cardinality: no label carries a message id, a path or an error text.
	for name, f := range fams {
		for _, s := range f.GetMetric() {
			for k, v := range labels(s) {
				if strings.Contains(v, "subjects/x") || strings.Contains(v, "refused") || k == "messaging_message_id" {
					t.Errorf("%s: unbounded label %s=%q", name, k, v)
				}
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
