package deploy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/bulkhead"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/metrics"
	"github.com/handoffhq/handoff/metrics/prom"
	"github.com/handoffhq/handoff/relay"
	"github.com/handoffhq/handoff/resilience"
	"github.com/handoffhq/handoff/retry"
	"github.com/handoffhq/handoff/saga"
)

type sagaCounts struct{}

func (sagaCounts) CountsByName(context.Context) ([]saga.Count, error) {
	return []saga.Count{{Name: "s", Status: saga.Stuck, Sagas: 1}}, nil
}

type stats struct{}

func (stats) Stats(context.Context) (relay.Stats, error) {
	return relay.Stats{Pending: 1, Oldest: time.Now()}, nil
}

// served returns the metric names handoff's /metrics serves (histograms
// with their _bucket, _sum and _count series), each family fed once.
func served(t *testing.T) map[string]bool {
	t.Helper()
	exp, err := prom.New(prom.WithoutRuntime())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exp.Shutdown(context.Background()) })
	mp := exp.MeterProvider()
	m, err := metrics.New(metrics.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	broker, _ := memory.NewBroker()
	_ = m.Publisher(broker, "memory").Publish(ctx, "t")
	m.Observe(consumer.Outcome{Topic: "t", Group: "g", Result: consumer.DeadLettered, Class: "handler", Duration: time.Millisecond})
	m.ObserveRelay(relay.Event{Partitions: []int{1}, PartitionLag: map[int]time.Duration{1: time.Millisecond}})
	m.ObserveRelay(relay.Event{Err: context.Canceled})
	br, _ := breaker.New("b")
	bh, _ := bulkhead.New("b", 1)
	bu, _ := retry.NewBudget(0.1)
	store := memory.NewDLQStore()
	if _, err := store.Add(ctx, &dlq.Letter{ID: "01a2467c-27de-78fb-893c-c81ef738fe90", Consumer: "g", Class: "handler",
		Message: handoff.NewMessage("/t", "x", nil)}); err != nil {
		t.Fatal(err)
	}
	if err := errorsJoin(m.Outbox("main", stats{}), m.DeadLetters(store), m.Breakers(br), m.Bulkheads(bh), m.Budget("b", bu)); err != nil {
		t.Fatal(err)
	}
	m.Handler("/x", http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	tel, err := resilience.NewTelemetry("b", resilience.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	tel.Observe(ctx, resilience.Event{Kind: resilience.EventBudgetExhausted})
	m.ObserveSaga(&saga.Instance{Name: "s", CreatedAt: time.Now().Add(-time.Second), EndedAt: time.Now()},
		[]saga.Event{{Kind: saga.EvCompleted}})
	if err := m.Sagas(sagaCounts{}); err != nil {
		t.Fatal(err)
	}

	rec := httptest.NewRecorder()
	exp.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for n, f := range fams {
		names[n] = true
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				names[l.GetName()] = true
			}
		}
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[n+s] = true
			}
		}
	}
	return names
}

func errorsJoin(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

var metricName = regexp.MustCompile(`\b(?:handoff|messaging|resilient|http_server)_[a-z0-9_]+\b`)

// checkNames fails for each metric an expression names that handoff does
// not serve (label names, also served, pass).
func checkNames(t *testing.T, where, expr string, names map[string]bool) {
	t.Helper()
	for _, n := range metricName.FindAllString(expr, -1) {
		if !names[n] {
			t.Errorf("%s: %s is not a metric or label handoff serves", where, n)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert  string            `yaml:"alert"`
			Record string            `yaml:"record"`
			Expr   string            `yaml:"expr"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// promtool returns promtool's path, skipping (or, under
// HANDOFF_TEST_REQUIRE=1, failing) when it is not installed (Debian:
// apt-get install prometheus).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("HANDOFF_TEST_REQUIRE") == "1" {
			t.Fatal("promtool not found (apt-get install prometheus)")
		}
		t.Skip("promtool not found (apt-get install prometheus); the structural checks ran")
	}
	return p
}

// The alert rules parse, every rule has a severity, name only served
// metrics, pass `promtool check rules`, and fire as their unit tests say
// (`promtool test rules`).
func TestAlertRules(t *testing.T) {
	raw, err := os.ReadFile("prometheus/handoff-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		t.Fatal(err)
	}
	names := served(t)
	n := 0
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Expr == "" {
				t.Errorf("group %s: rule %d: alert and expr must be set", g.Name, n)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			checkNames(t, r.Alert, r.Expr, names)
		}
	}
	if n < 5 {
		t.Fatalf("%d rules, want at least 5", n)
	}
	pt := promtool(t)
	if out, err := exec.Command(pt, "check", "rules", "prometheus/handoff-rules.yml").CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	cmd := exec.Command(pt, "test", "rules", "handoff-rules.test.yml")
	cmd.Dir = "prometheus"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

type dashboard struct {
	UID, Title    string
	SchemaVersion int `json:"schemaVersion"`
	Panels        []struct {
		ID      int                       `json:"id"`
		Type    string                    `json:"type"`
		Title   string                    `json:"title"`
		GridPos *struct{ H, W, X, Y int } `json:"gridPos"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// The dashboard is Grafana JSON with a uid, unique panel ids, a position
// for each panel and PromQL targets naming only served metrics; each
// target (its Grafana variables filled in) passes promtool's PromQL parser
// as a recording rule.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("grafana/handoff.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 30 || len(d.Panels) < 10 {
		t.Fatalf("dashboard: uid %q title %q schemaVersion %d panels %d", d.UID, d.Title, d.SchemaVersion, len(d.Panels))
	}
	names := served(t)
	ids := map[int]bool{}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 || len(p.Targets) == 0 {
			t.Errorf("panel %q: needs a gridPos and targets", p.Title)
		}
		for _, tg := range p.Targets {
			checkNames(t, p.Title, tg.Expr, names)
			e := strings.NewReplacer("$__rate_interval", "5m", "$job", ".*").Replace(tg.Expr)
			q, _ := json.Marshal(e)
			rules.WriteString("      - record: dashboard:panel_" + tg.RefID + "\n        expr: " + string(q) + "\n")
		}
	}
	pt := promtool(t)
	f := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(f, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(pt, "check", "rules", f).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules on the dashboard's queries: %v\n%s", err, out)
	}
}
