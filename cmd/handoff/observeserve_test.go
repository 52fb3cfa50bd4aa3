package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/saga"
)

// scrapeMetrics reads base/metrics with token and parses it as the
// Prometheus text format.
func scrapeMetrics(t *testing.T, base, token string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpCall(t, "GET", base+"/metrics", token, "", nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse as the Prometheus text format: %v", err)
	}
	return fams
}

// series returns the series of family name whose labels include want (nil
// when there is none).
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
next:
	for _, m := range fams[name].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		for k, v := range want {
			if l[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

// createSaga inserts a saga instance the way a coordinator's store does.
func createSaga(t *testing.T, db *sql.DB, id, name string, status saga.Status) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	in := &saga.Instance{ID: id, Name: name, Version: "1", CorrelationID: "c-" + id, Status: status,
		Data: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now}
	if err := postgres.SagaStore(db).Create(ctx, tx, in); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// handoff serve's /metrics, after real traffic (a dead letter written by a
// service, a saga in the shared database, requests to the registry, the
// contract broker and the dead-letter API), parses as the Prometheus text
// format and carries the families a server can see: outbox backlog and
// oldest age, dead letters per consumer and class, sagas by state, and the
// registry's and broker's request rates and latencies, each with bounded
// labels only.
//
// Publish rates and latency and relay lag per partition are handoff
// relay's (TestRelayCmd_ServesMetrics). The families that exist only in a
// user's process (consume rates and handler latency, breaker states,
// bulkhead saturation, retry-budget use, saga events and duration) are
// asserted on a metrics.New instance fed by the library parts, in
// metrics.TestMetrics_ScrapeCarriesEveryFamily and
// metrics.TestMetrics_SagasByEventAndDuration; handoff dev, which runs a
// relay and consumers itself, serves the messaging ones
// (TestDev_ReadyzMetricsAndAlertWebhook).
func TestServe_MetricsCarryEachFamilyWithBoundedLabels(t *testing.T) {
	pg := testenv.PostgresURL(t)
	natsURL, _ := embeddedNATS(t)
	const tok = "metrics-token"
	base, _ := startServe(t, "--db", pg, "--broker", natsURL, "--token", tok)

	ctx := context.Background()
	db, err := postgres.Open(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := dlq.New(postgres.DLQStore(db))
	if err != nil {
		t.Fatal(err)
	}
	l := &dlq.Letter{Consumer: "billing", Topic: "orders", Class: dlq.ClassPermanent, Errors: []string{"card declined"},
		Message: handoff.NewMessage("/orders", "order.placed", []byte(`{"id":1}`))}
	if err := q.Add(ctx, l); err != nil {
		t.Fatal(err)
	}
	createSaga(t, db, "saga-running-1", "order", saga.Running)
	createSaga(t, db, "saga-running-2", "order", saga.Running)
	createSaga(t, db, "saga-stuck-1", "order", saga.Stuck)

	calls := []struct{ method, path, ct, body string }{
		{"POST", "/registry/subjects/orders-value/versions", "application/vnd.schemaregistry.v1+json", `{"schema":"{\"type\":\"string\"}"}`},
		{"GET", "/registry/subjects/orders-value/versions/1", "", ""},
		{"GET", "/registry/subjects/no-such-subject/versions", "", ""},
		{"GET", "/contracts/pacticipants", "", ""},
		{"GET", "/dead-letters", "", ""},
		{"GET", "/dead-letters/" + l.ID, "", ""},
	}
	for _, c := range calls {
		if code, body := httpCall(t, c.method, base+c.path, tok, c.ct, []byte(c.body)); code >= 500 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, code, body)
		}
	}

	fams := scrapeMetrics(t, base, tok)
	gauge := func(name string, labels map[string]string) float64 {
		t.Helper()
		s := series(fams, name, labels)
		if s == nil {
			t.Errorf("%s%v: no such series", name, labels)
			return -1
		}
		if fams[name].GetType() != dto.MetricType_GAUGE {
			t.Errorf("%s: %v, want a gauge", name, fams[name].GetType())
		}
		return s.GetGauge().GetValue()
	}
	if v := gauge("handoff_outbox_pending", map[string]string{"handoff_outbox_name": "outbox"}); v != 0 {
		t.Errorf("outbox pending %v, want 0", v)
	}
	if v := gauge("handoff_outbox_oldest_age_seconds", map[string]string{"handoff_outbox_name": "outbox"}); v != 0 {
		t.Errorf("outbox oldest age %v, want 0 (empty)", v)
	}
	gauge("handoff_outbox_held", map[string]string{"handoff_outbox_name": "outbox"})
	if v := gauge("handoff_dlq_open", map[string]string{"messaging_consumer_group_name": "billing", "handoff_dlq_class": dlq.ClassPermanent}); v != 1 {
		t.Errorf("open dead letters of billing %v, want 1", v)
	}
	if v := gauge("handoff_saga_instances", map[string]string{"handoff_saga_name": "order", "handoff_saga_status": "running"}); v != 2 {
		t.Errorf("running order sagas %v, want 2", v)
	}
	if v := gauge("handoff_saga_instances", map[string]string{"handoff_saga_name": "order", "handoff_saga_status": "stuck"}); v != 1 {
		t.Errorf("stuck order sagas %v, want 1", v)
	}
	for route, n := range map[string]uint64{"/registry/": 3, "/contracts/": 1, "/dead-letters": 2} {
		var got uint64
		for _, s := range fams["http_server_request_duration_seconds"].GetMetric() {
			for _, p := range s.GetLabel() {
				if p.GetName() == "http_route" && p.GetValue() == route {
					got += s.GetHistogram().GetSampleCount()
				}
			}
		}
		if got != n {
			t.Errorf("requests to %s: %d counted, want %d", route, got, n)
		}
	}
	if fams["http_server_request_duration_seconds"].GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("http_server_request_duration_seconds: %v, want a histogram", fams["http_server_request_duration_seconds"].GetType())
	}
	if s := series(fams, "http_server_request_duration_seconds", map[string]string{"http_route": "/registry/", "http_request_method": "POST"}); s == nil {
		t.Error("no registry POST series")
	}

	// Bounded labels: handoff's families carry only these label names,
	// and no value is a path, an id or an error text.
	allowed := map[string]bool{"handoff_outbox_name": true, "messaging_consumer_group_name": true, "handoff_dlq_class": true,
		"handoff_saga_name": true, "handoff_saga_status": true, "http_route": true, "http_request_method": true,
		"http_response_status_code": true, "le": true, "otel_scope_name": true, "otel_scope_version": true,
		"otel_scope_schema_url": true}
	for name, f := range fams {
		if !strings.HasPrefix(name, "handoff_") && !strings.HasPrefix(name, "http_server_") && !strings.HasPrefix(name, "messaging_") {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, p := range s.GetLabel() {
				k, v := p.GetName(), p.GetValue()
				if !allowed[k] {
					t.Errorf("%s: label %s=%q is not one of the bounded labels", name, k, v)
				}
				if strings.Contains(v, "orders-value") || strings.Contains(v, l.ID) || strings.Contains(v, "saga-") || strings.Contains(v, "declined") {
					t.Errorf("%s: unbounded label value %s=%q", name, k, v)
				}
			}
		}
	}
}

// alertLog collects what a webhook receives, in order.
type alertLog struct {
	mu  sync.Mutex
	got []map[string]any
}

func (a *alertLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var m map[string]any
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.got = append(a.got, m)
	a.mu.Unlock()
}

// statuses returns the statuses key was delivered with, in order.
func (a *alertLog) statuses(key string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, m := range a.got {
		if m["key"] == key {
			out = append(out, m["status"].(string))
		}
	}
	return out
}

// waitStatuses polls until key has been delivered with want (in order),
// failing at the deadline or at a delivery beyond it.
func (a *alertLog) waitStatuses(t *testing.T, stderr *syncBuffer, key string, want ...string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got := a.statuses(key)
		if strings.Join(got, ",") == strings.Join(want, ",") {
			return
		}
		if len(got) > len(want) || time.Now().After(deadline) {
			t.Fatalf("%s: delivered %v, want %v\nserver log:\n%s", key, got, want, stderr.String())
		}
	}
}

// handoff serve on PostgreSQL raises, from the database alone (no hook, as
// after a crash), a stuck saga, an old outbox backlog and outbox rows no
// relay leases: each reaches the configured webhook over real HTTP as one
// firing alert, stays deduplicated while the others clear (each clearing
// takes a round of the checks), and is resolved once its condition
// clears. The 5-second bound is asserted in fake time in package alert
// (TestStuckSagas_FiresWithinFiveSecondsOnceAndResolves,
// TestUnleased_FiresPastGraceAndResolves,
// TestManager_BacklogAlertWithinFiveSecondsDedupedAndResolved).
func TestServe_AlertsReachWebhookOnceAndResolve(t *testing.T) {
	pg := testenv.PostgresURL(t)
	hooks := &alertLog{}
	hook := httptest.NewServer(hooks)
	defer hook.Close()
	_, stderr := startServe(t, "--db", pg, "--token", "alert-token", "--alert-webhook", hook.URL,
		"--alert-backlog", "10m", "--alert-no-lease", "30s")

	ctx := context.Background()
	db, err := postgres.Open(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	createSaga(t, db, "saga-ok", "order", saga.Running)
	createSaga(t, db, "saga-stuck", "order", saga.Stuck)
	// A row committed an hour ago on partition 2, which no relay has ever
	// leased: past the backlog threshold and the no-lease grace.
	if _, err := db.ExecContext(ctx, `INSERT INTO handoff_outbox (topic, partition_no, message_id, envelope, created_at)
		VALUES ('orders', 2, 'm-old', $1, now() - interval '1 hour')`, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	hooks.waitStatuses(t, stderr, "saga_stuck/order", "firing")
	hooks.waitStatuses(t, stderr, "outbox_backlog/outbox", "firing")
	hooks.waitStatuses(t, stderr, "relay_no_lease/outbox", "firing")
	for _, want := range []string{"alert: saga order has stuck instances", "alert: outbox outbox: the oldest of 1 pending rows",
		"alert: outbox outbox: 1 partitions have had pending rows and no relay lease"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("not logged: %q", want)
		}
	}

	// A relay takes the lease: the no-lease alert resolves; the others
	// hold, and are not sent again.
	if _, err := db.ExecContext(ctx, `INSERT INTO handoff_outbox_leases (partition_no, owner, expires_at)
		VALUES (2, 'relay-a', now() + interval '1 hour')`); err != nil {
		t.Fatal(err)
	}
	hooks.waitStatuses(t, stderr, "relay_no_lease/outbox", "firing", "resolved")
	// An operator aborts the stuck saga.
	if _, err := db.ExecContext(ctx, `UPDATE handoff_saga SET status = 'aborted', ended_at = $1 WHERE id = 'saga-stuck'`,
		time.Now().UnixMicro()); err != nil {
		t.Fatal(err)
	}
	hooks.waitStatuses(t, stderr, "saga_stuck/order", "firing", "resolved")
	// The relay publishes the row.
	if _, err := db.ExecContext(ctx, `DELETE FROM handoff_outbox WHERE message_id = 'm-old'`); err != nil {
		t.Fatal(err)
	}
	hooks.waitStatuses(t, stderr, "outbox_backlog/outbox", "firing", "resolved")
	for _, key := range []string{"saga_stuck/order", "relay_no_lease/outbox", "outbox_backlog/outbox"} {
		if got := hooks.statuses(key); len(got) != 2 {
			t.Errorf("%s: delivered %v, want firing then resolved, once each", key, got)
		}
	}
}

// handoff relay alerts when it holds no outbox partition: with one
// partition and two relays, the second holds none, and past
// --alert-no-lease its relay_no_lease alert reaches the webhook (once);
// when the first stops and the second takes the partition, it resolves.
func TestRelayCmd_AlertsWhenItHoldsNoLease(t *testing.T) {
	pg := testenv.PostgresURL(t)
	natsURL, _ := embeddedNATS(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hooks := &alertLog{}
	hook := httptest.NewServer(hooks)
	defer hook.Close()

	startRelay := func(owner string, extra ...string) (stop func(), stderr *syncBuffer) {
		rctx, cancel := context.WithCancel(ctx)
		stderr = &syncBuffer{}
		done := make(chan error, 1)
		go func() {
			done <- run(rctx, append([]string{"relay", "--db", pg, "--broker", natsURL, "--partitions", "1", "--owner", owner,
				"--lease-ttl", "3s", "--poll-max", "50ms"}, extra...), nil, &syncBuffer{}, stderr)
		}()
		stopped := false
		stop = func() {
			if stopped {
				return
			}
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("relay %s: %v\n%s", owner, err, stderr.String())
			}
		}
		t.Cleanup(stop)
		return stop, stderr
	}
	holds := func(owner string) bool {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM handoff_outbox_leases WHERE owner = $1 AND expires_at > now()`, owner).Scan(&n); err != nil {
			return false // the relay has not made its tables yet
		}
		return n > 0
	}
	stopA, _ := startRelay("relay-a")
	for deadline := time.Now().Add(30 * time.Second); !holds("relay-a"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("relay-a took no lease")
		}
	}
	_, stderrB := startRelay("relay-b", "--alert-webhook", hook.URL, "--alert-no-lease", "1s")
	hooks.waitStatuses(t, stderrB, "relay_no_lease/relay-b", "firing")
	if !strings.Contains(stderrB.String(), "relay relay-b has held no outbox partition") {
		t.Errorf("the alert is not in relay-b's log:\n%s", stderrB.String())
	}
	if holds("relay-b") {
		t.Fatal("relay-b holds a lease while alerting that it holds none")
	}
	stopA()
	hooks.waitStatuses(t, stderrB, "relay_no_lease/relay-b", "firing", "resolved")
	if !holds("relay-b") {
		t.Error("relay_no_lease resolved but relay-b holds no lease")
	}
}

// handoff relay --metrics-addr serves /metrics: after it published what an
// outbox writer committed, the scrape parses and carries the publish rate
// and latency per topic (labelled with the broker's system), the relay's
// lag per partition, the partitions it holds, and the outbox backlog.
func TestRelayCmd_ServesMetrics(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "svc.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlite.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	w, _ := outbox.New(sqlite.OutboxStore(db))
	tx, _ := db.Begin()
	for i := range 3 {
		m := handoff.NewMessage("/orders", "order.placed", []byte(`{}`))
		m.PartitionKey = fmt.Sprint("order-", i)
		if err := w.Add(ctx, tx, "orders", m); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	url, _ := embeddedNATS(t)
	rctx, stop := context.WithCancel(ctx)
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(rctx, []string{"relay", "--db", path, "--broker", url, "--poll-max", "50ms", "--metrics-addr", "127.0.0.1:0"}, nil, &out, &errb)
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("relay: %v\n%s", err, errb.String())
		}
	}()
	var metricsURL string
	for deadline := time.Now().Add(30 * time.Second); metricsURL == ""; time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(out.String(), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "metrics" {
				metricsURL = f[1]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay printed no metrics URL: %q %q", out.String(), errb.String())
		}
	}
	base := strings.TrimSuffix(metricsURL, "/metrics")
	var fams map[string]*dto.MetricFamily
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		fams = scrapeMetrics(t, base, "")
		sent := series(fams, "messaging_client_sent_messages_total", map[string]string{"messaging_destination_name": "orders", "messaging_system": "nats"})
		if sent.GetCounter().GetValue() == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sent messages never reached 3: %v\n%s", sent, errb.String())
		}
	}
	if series(fams, "messaging_client_operation_duration_seconds", map[string]string{"messaging_destination_name": "orders"}) == nil {
		t.Error("no publish latency of orders")
	}
	var lagged uint64
	for _, s := range fams["handoff_relay_lag_seconds"].GetMetric() {
		part := ""
		for _, l := range s.GetLabel() {
			if l.GetName() == "handoff_relay_partition" {
				part = l.GetValue()
			}
		}
		if part == "" {
			t.Errorf("a relay lag series without its partition: %v", s)
		}
		lagged += s.GetHistogram().GetSampleCount()
	}
	if lagged == 0 {
		t.Error("no relay lag recorded")
	}
	if s := series(fams, "handoff_relay_partitions", nil); s == nil || s.GetGauge().GetValue() < 1 {
		t.Errorf("partitions held: %v", s)
	}
	if series(fams, "handoff_outbox_pending", map[string]string{"handoff_outbox_name": "outbox"}) == nil {
		t.Error("no outbox backlog")
	}
}
