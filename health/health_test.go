package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/handoffhq/handoff/health"
)

func TestHandler_NamesTheFailingPart(t *testing.T) {
	down := errors.New("not connected")
	for _, c := range []struct {
		name   string
		checks []health.Check
		code   int
		want   health.Report
	}{
		{"no checks", nil, 200, health.Report{Status: "ok", Checks: map[string]string{}}},
		{"all up", []health.Check{{"database", func(context.Context) error { return nil }}, {"nats", func(context.Context) error { return nil }}},
			200, health.Report{Status: "ok", Checks: map[string]string{"database": "ok", "nats": "ok"}}},
		{"one down", []health.Check{{"database", func(context.Context) error { return nil }}, {"nats", func(context.Context) error { return down }}},
			503, health.Report{Status: "unavailable", Checks: map[string]string{"database": "ok", "nats": "not connected"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			(&health.Handler{Checks: c.checks}).ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
			if rec.Code != c.code {
				t.Fatalf("status %d, want %d", rec.Code, c.code)
			}
			var got health.Report
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.Status != c.want.Status || len(got.Checks) != len(c.want.Checks) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			for k, v := range c.want.Checks {
				if got.Checks[k] != v {
					t.Fatalf("check %s = %q, want %q", k, got.Checks[k], v)
				}
			}
		})
	}
}

// A check that hangs is cut off by the timeout and reported as down.
func TestHandler_HangingCheckTimesOut(t *testing.T) {
	h := &health.Handler{Timeout: 10 * time.Millisecond, Checks: []health.Check{{"db", func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}}}}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d", rec.Code)
	}
}
