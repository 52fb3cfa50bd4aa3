package resiliencehttp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/handoffhq/handoff/resilience"
	"github.com/handoffhq/handoff/resiliencehttp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestServer_DeadlineFromHeader(t *testing.T) {
	tests := []struct {
		name     string
		header   string
		opts     []resiliencehttp.ServerOption
		wantCode int
		wantLeft time.Duration // 0: no deadline expected
		called   bool
	}{
		{"header sets deadline", "1500", nil, 200, 1500 * time.Millisecond, true},
		{"no header no deadline", "", nil, 200, 0, true},
		{"bounded by max", "60000", []resiliencehttp.ServerOption{resiliencehttp.WithMaxTimeout(2 * time.Second)}, 200, 2 * time.Second, true},
		{"max applies without header", "", []resiliencehttp.ServerOption{resiliencehttp.WithMaxTimeout(3 * time.Second)}, 200, 3 * time.Second, true},
		{"default without header", "", []resiliencehttp.ServerOption{resiliencehttp.WithDefaultTimeout(time.Second)}, 200, time.Second, true},
		{"expired refused", "0", nil, http.StatusGatewayTimeout, 0, false},
		{"too little left refused", "40", []resiliencehttp.ServerOption{resiliencehttp.WithMinTimeLeft(50 * time.Millisecond)}, http.StatusGatewayTimeout, 0, false},
		{"malformed", "soon", nil, http.StatusBadRequest, 0, false},
		{"negative", "-5", nil, http.StatusBadRequest, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, err := resiliencehttp.NewServer(tt.opts...)
				if err != nil {
					t.Fatal(err)
				}
				called := false
				var left time.Duration
				h := s.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					called = true
					if dl, ok := r.Context().Deadline(); ok {
						left = time.Until(dl)
					}
				}))
				req := httptest.NewRequest("GET", "/", nil)
				if tt.header != "" {
					req.Header.Set(resiliencehttp.HeaderTimeout, tt.header)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != tt.wantCode || called != tt.called || left != tt.wantLeft {
					t.Fatalf("code %d called %v left %v; want %d %v %v", rec.Code, called, left, tt.wantCode, tt.called, tt.wantLeft)
				}
			})
		})
	}
}

func TestServer_ShedsOverLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		s, err := resiliencehttp.NewServer(resiliencehttp.WithMaxInFlight(2), resiliencehttp.WithShedRetryAfter(1500*time.Millisecond),
			resiliencehttp.WithServerMeterProvider(mp))
		if err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		h := s.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
		for range 2 {
			go h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		}
		synctest.Wait()
		if n := s.InFlight(); n != 2 {
			t.Fatalf("InFlight = %d, want 2", n)
		}
		ctx, span := tp.Tracer("t").Start(context.Background(), "server")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil).WithContext(ctx))
		span.End()
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "2" {
			t.Fatalf("third request: %d Retry-After %q; want 503 and 2", rec.Code, rec.Header().Get("Retry-After"))
		}
		close(release)
		synctest.Wait()
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("after drain: %d, want 200", rec.Code)
		}
		if !hasEvent(sr.Ended(), resilience.EventNameShed) {
			t.Fatal("no shed span event")
		}
		if got := counterSum(t, reader, "resilient.server.shed"); got != 1 {
			t.Fatalf("resilient.server.shed = %d, want 1", got)
		}
	})
}

func hasEvent(spans []sdktrace.ReadOnlySpan, name string) bool {
	for _, s := range spans {
		for _, e := range s.Events() {
			if e.Name == name {
				return true
			}
		}
	}
	return false
}

// counterSum returns the sum of an int64 counter over all attribute sets.
func counterSum(t testing.TB, r *sdkmetric.ManualReader, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range s.DataPoints {
					n += dp.Value
				}
			}
		}
	}
	return n
}

// counterSumWhere sums an int64 counter over the data points carrying attr.
func counterSumWhere(t testing.TB, r *sdkmetric.ManualReader, name string, attr attribute.KeyValue) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				for _, dp := range s.DataPoints {
					if v, ok := dp.Attributes.Value(attr.Key); ok && v == attr.Value {
						n += dp.Value
					}
				}
			}
		}
	}
	return n
}

// gaugeState returns the breaker state reported for dep.
func gaugeState(t testing.TB, r *sdkmetric.ManualReader, dep string) string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == "resilient.breaker.state" {
				for _, dp := range g.DataPoints {
					if v, _ := dp.Attributes.Value(resilience.AttrDependency); v.AsString() == dep {
						s, _ := dp.Attributes.Value(resilience.AttrBreakerState)
						return s.AsString()
					}
				}
			}
		}
	}
	return ""
}
