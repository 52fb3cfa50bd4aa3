package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// handoff dev serves /readyz and /metrics on its one port, its metrics
// parse as the Prometheus text format and carry the demo's flow, and the
// demo's first dead letter reaches a configured webhook as an alert (and
// the log).
func TestDev_ReadyzMetricsAndAlertWebhook(t *testing.T) {
	alerts := make(chan map[string]any, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a map[string]any
		if err := json.NewDecoder(r.Body).Decode(&a); err == nil {
			alerts <- a
		}
	}))
	defer hook.Close()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--demo-interval", "100ms",
			"--alert-webhook", hook.URL}, nil, stdout, stderr)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev: %v", err)
		}
	}()
	urls := map[string]string{}
	for deadline := time.Now().Add(30 * time.Second); urls["metrics"] == ""; {
		if time.Now().After(deadline) {
			t.Fatalf("no URLs; stdout %q stderr %q", stdout.String(), stderr.String())
		}
		select {
		case err := <-done:
			t.Fatalf("dev exited: %v; stderr %q", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		sc := bufio.NewScanner(strings.NewReader(stdout.String()))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 2 {
				urls[f[0]] = f[1]
			}
		}
	}
	get := func(u string) (int, string) {
		t.Helper()
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, body := get(urls["ready"])
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %s", code, body)
		}
	}
	select {
	case a := <-alerts:
		if a["key"] != "dead_letter/demo-shipping" || a["status"] != "firing" {
			t.Fatalf("alert: %v", a)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no alert reached the webhook; stderr %q", stderr.String())
	}
	if !strings.Contains(stderr.String(), "alert: consumer demo-shipping has dead letters") {
		t.Errorf("alert not logged: %q", stderr.String())
	}
	var fams map[string]bool
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, body := get(urls["metrics"])
		if code != 200 {
			t.Fatalf("/metrics: %d", code)
		}
		p := expfmt.NewTextParser(model.LegacyValidation)
		mf, err := p.TextToMetricFamilies(strings.NewReader(body))
		if err != nil {
			t.Fatalf("/metrics does not parse: %v", err)
		}
		fams = map[string]bool{}
		for n := range mf {
			fams[n] = true
		}
		if fams["messaging_client_consumed_messages_total"] && fams["messaging_client_sent_messages_total"] && fams["handoff_relay_lag_seconds"] && fams["messaging_process_duration_seconds"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks the demo's flow: %v", fams)
		}
	}
	for _, n := range []string{"handoff_outbox_pending", "handoff_outbox_oldest_age_seconds", "handoff_dlq_open",
		"messaging_process_duration_seconds", "http_server_request_duration_seconds", "handoff_relay_partitions"} {
		if !fams[n] {
			t.Errorf("/metrics lacks %s", n)
		}
	}
}
