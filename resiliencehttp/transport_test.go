package resiliencehttp_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/bulkhead"
	"github.com/handoffhq/handoff/fallback"
	"github.com/handoffhq/handoff/hedge"
	"github.com/handoffhq/handoff/resilience"
	"github.com/handoffhq/handoff/resiliencehttp"
	"github.com/handoffhq/handoff/retry"
	"github.com/handoffhq/handoff/throttle"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// fakeBase is an in-memory dependency: it answers with the function given,
// records each request's body and headers, and needs no socket (so tests can
// run in synctest bubbles).
type fakeBase struct {
	mu      sync.Mutex
	calls   int
	bodies  []string
	headers []http.Header
	answer  func(n int, r *http.Request) (*http.Response, error)
}

func (f *fakeBase) RoundTrip(r *http.Request) (*http.Response, error) {
	var body string
	if r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		body = string(b)
	}
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.bodies = append(f.bodies, body)
	f.headers = append(f.headers, r.Header.Clone())
	f.mu.Unlock()
	return f.answer(n, r)
}

func (f *fakeBase) Calls() int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls }

func respond(code int, body string, hdr ...string) *http.Response {
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Set(hdr[i], hdr[i+1])
	}
	return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(strings.NewReader(body))}
}

func fastRetry(attempts int) *retry.Policy {
	return &retry.Policy{MaxAttempts: attempts, Backoff: retry.Backoff{Initial: time.Millisecond, Max: 10 * time.Millisecond}}
}

func newTransport(t testing.TB, base http.RoundTripper, p resiliencehttp.Policy, opts ...resiliencehttp.TransportOption) *resiliencehttp.Transport {
	t.Helper()
	tr, err := resiliencehttp.NewTransport(base, append([]resiliencehttp.TransportOption{resiliencehttp.WithPolicy("dep", p),
		resiliencehttp.WithRoute(func(*http.Request) string { return "dep" })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func do(t testing.TB, tr http.RoundTripper, ctx context.Context, method, body string, hdr ...string) (*http.Response, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://dep.test/x", rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return tr.RoundTrip(req)
}

func TestTransport_RetryRules(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		hdr       []string
		answers   []int // status per call; 0 = connection error
		wantCalls int
		wantCode  int // 0: error expected
	}{
		{"GET 503 retried then ok", "GET", nil, []int{503, 503, 200}, 3, 200},
		{"GET 429 retried", "GET", nil, []int{429, 200}, 2, 200},
		{"GET connection error retried", "GET", nil, []int{0, 200}, 2, 200},
		{"GET 404 not retried", "GET", nil, []int{404, 200}, 1, 404},
		{"GET 400 not retried", "GET", nil, []int{400}, 1, 400},
		{"PUT 500 retried", "PUT", nil, []int{500, 204}, 2, 204},
		{"DELETE retried", "DELETE", nil, []int{502, 204}, 2, 204},
		{"POST 503 not retried", "POST", nil, []int{503, 200}, 1, 503},
		{"POST connection error not retried", "POST", nil, []int{0, 200}, 1, 0},
		{"PATCH not retried", "PATCH", nil, []int{503, 200}, 1, 503},
		{"POST with Idempotency-Key retried", "POST", []string{"Idempotency-Key", "k1"}, []int{503, 0, 201}, 3, 201},
		{"exhausted returns last response", "GET", nil, []int{503, 503, 503, 200}, 3, 503},
		{"exhausted on errors returns error", "GET", nil, []int{0, 0, 0, 200}, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &fakeBase{answer: func(n int, r *http.Request) (*http.Response, error) {
					code := tt.answers[n-1]
					if code == 0 {
						return nil, errors.New("connection reset by peer")
					}
					return respond(code, "body "+http.StatusText(code)), nil
				}}
				tr := newTransport(t, base, resiliencehttp.Policy{Policy: resilience.Policy{Retry: fastRetry(3)}})
				resp, err := do(t, tr, context.Background(), tt.method, "payload", tt.hdr...)
				if tt.wantCode == 0 {
					if err == nil {
						t.Fatalf("got %d, want an error", resp.StatusCode)
					}
				} else {
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != tt.wantCode || string(b) != "body "+http.StatusText(tt.wantCode) {
						t.Fatalf("got %d %q, want %d", resp.StatusCode, b, tt.wantCode)
					}
				}
				if c := base.Calls(); c != tt.wantCalls {
					t.Fatalf("dependency saw %d calls, want %d", c, tt.wantCalls)
				}
				for i, b := range base.bodies {
					if b != "payload" {
						t.Fatalf("attempt %d sent body %q, want the original", i+1, b)
					}
				}
			})
		})
	}
}

// onceReader is a body without GetBody: the transport must buffer it.
type onceReader struct{ io.Reader }

func (onceReader) Close() error { return nil }

func TestTransport_BuffersBodyWithoutGetBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &fakeBase{answer: func(n int, r *http.Request) (*http.Response, error) {
			if n == 1 {
				return respond(503, ""), nil
			}
			return respond(200, "ok"), nil
		}}
		tr := newTransport(t, base, resiliencehttp.Policy{Policy: resilience.Policy{Retry: fastRetry(3)}})
		req, _ := http.NewRequest("PUT", "http://dep.test/x", onceReader{strings.NewReader("replay me")})
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if base.Calls() != 2 || base.bodies[0] != "replay me" || base.bodies[1] != "replay me" {
			t.Fatalf("calls %d bodies %q", base.Calls(), base.bodies)
		}

		// A body above the buffer limit is streamed once, without retries.
		base.calls, base.bodies = 0, nil
		tr = newTransport(t, base, resiliencehttp.Policy{Policy: resilience.Policy{Retry: fastRetry(3)}}, resiliencehttp.WithMaxBufferedBody(4))
		req, _ = http.NewRequest("PUT", "http://dep.test/x", onceReader{strings.NewReader("too long to buffer")})
		resp, err = tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if base.Calls() != 1 || base.bodies[0] != "too long to buffer" || resp.StatusCode != 503 {
			t.Fatalf("calls %d bodies %q status %d; want one streamed attempt", base.Calls(), base.bodies, resp.StatusCode)
		}
	})
}

func TestTransport_DeadlineHeaderAndPerTryTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var attemptLeft []time.Duration
		base := &fakeBase{answer: func(n int, r *http.Request) (*http.Response, error) {
			dl, _ := r.Context().Deadline()
			attemptLeft = append(attemptLeft, time.Until(dl))
			if n == 1 {
				<-r.Context().Done() // a hung attempt: the per-try timeout ends it
				return nil, r.Context().Err()
			}
			return respond(200, "ok"), nil
		}}
		p := resiliencehttp.Policy{Policy: resilience.Policy{Retry: &retry.Policy{MaxAttempts: 3,
			Backoff: retry.Backoff{Initial: 100 * time.Millisecond, NoJitter: true}}, Timeout: 300 * time.Millisecond}}
		tr := newTransport(t, base, p)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := do(t, tr, ctx, "GET", "")
		if err != nil {
			t.Fatal(err)
		}
		// The body stays readable after RoundTrip returned (the per-try
		// context is cancelled only at Close).
		if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "ok" {
			t.Fatalf("body %q %v", b, err)
		}
		resp.Body.Close()
		got := []string{base.headers[0].Get(resiliencehttp.HeaderTimeout), base.headers[1].Get(resiliencehttp.HeaderTimeout)}
		// Attempt 1: min(1s, 300ms). Attempt 2 starts at 400ms: min(600ms, 300ms).
		if got[0] != "300" || got[1] != "300" || attemptLeft[0] != 300*time.Millisecond {
			t.Fatalf("Request-Timeout headers %v, attempt deadlines %v", got, attemptLeft)
		}

		// Near the caller's deadline the attempt gets only what is left.
		base.calls, base.headers, attemptLeft = 1, nil, nil // next answers are 200
		ctx2, cancel2 := context.WithTimeout(context.Background(), 120*time.Millisecond)
		defer cancel2()
		resp, err = do(t, tr, ctx2, "GET", "")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if h := base.headers[0].Get(resiliencehttp.HeaderTimeout); h != "120" {
			t.Fatalf("Request-Timeout = %s, want 120", h)
		}
	})
}

func TestTransport_NoAttemptWithoutEnoughTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &fakeBase{answer: func(int, *http.Request) (*http.Response, error) { return respond(200, ""), nil }}
		p := resiliencehttp.Policy{Policy: resilience.Policy{Retry: &retry.Policy{MaxAttempts: 3, MinAttemptTime: 200 * time.Millisecond}}}
		tr := newTransport(t, base, p)
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		_, err := do(t, tr, ctx, "GET", "")
		if !errors.Is(err, retry.ErrInsufficientTime) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrInsufficientTime", err)
		}
		if base.Calls() != 0 {
			t.Fatalf("dependency called %d times with too little time left", base.Calls())
		}
	})
}

func TestTransport_RetryAfterHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var at []time.Time
		base := &fakeBase{answer: func(n int, r *http.Request) (*http.Response, error) {
			at = append(at, time.Now())
			if n == 1 {
				return respond(503, "", "Retry-After", "2"), nil
			}
			return respond(200, ""), nil
		}}
		tr := newTransport(t, base, resiliencehttp.Policy{Policy: resilience.Policy{Retry: fastRetry(3)}})
		resp, err := do(t, tr, context.Background(), "GET", "")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if len(at) != 2 || at[1].Sub(at[0]) != 2*time.Second {
			t.Fatalf("second attempt after %v, want the 2s of Retry-After", at[1].Sub(at[0]))
		}
		// A hint above MaxRetryAfter ends the retries with the server's answer.
		base.calls = 0
		p := fastRetry(3)
		p.MaxRetryAfter = time.Second
		tr = newTransport(t, &fakeBase{answer: func(int, *http.Request) (*http.Response, error) {
			return respond(503, "", "Retry-After", "30"), nil
		}}, resiliencehttp.Policy{Policy: resilience.Policy{Retry: p}})
		resp, err = do(t, tr, context.Background(), "GET", "")
		if err != nil || resp.StatusCode != 503 {
			t.Fatalf("got %v %v, want the 503", resp, err)
		}
		resp.Body.Close()
	})
}

// TestTransport_RetryStormPrevented: with the dependency down, the load the
// clients put on it stays within (1 + budget ratio) of the offered load
// (plus the bucket's initial burst), where plain retries would triple it.
func TestTransport_RetryStormPrevented(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &fakeBase{answer: func(int, *http.Request) (*http.Response, error) { return respond(503, "down"), nil }}
		const ratio, burst, offered = 0.1, 5, 1000
		budget, err := retry.NewBudget(ratio, retry.WithMaxTokens(burst))
		if err != nil {
			t.Fatal(err)
		}
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		p := fastRetry(3)
		p.Budget = budget
		tr := newTransport(t, base, resiliencehttp.Policy{Policy: resilience.Policy{Retry: p}}, resiliencehttp.WithMeterProvider(mp))
		var wg sync.WaitGroup
		for range 10 { // ten concurrent clients
			wg.Go(func() {
				for range offered / 10 {
					resp, err := do(t, tr, context.Background(), "GET", "")
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
		load := base.Calls()
		if limit := int(offered*(1+ratio)) + burst; load > limit {
			t.Fatalf("dependency saw %d calls for %d offered, want ≤ %d", load, offered, limit)
		}
		if load < offered {
			t.Fatalf("dependency saw %d calls, fewer than the %d offered", load, offered)
		}
		if n := counterSum(t, reader, "resilient.client.budget_exhausted"); n == 0 {
			t.Fatal("no budget_exhausted metric recorded")
		}
		t.Logf("offered %d, dependency load %d (%.3fx)", offered, load, float64(load)/offered)
	})
}

func TestTransport_BreakerOpensAndStopsCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down atomic.Bool
		down.Store(true)
		base := &fakeBase{answer: func(int, *http.Request) (*http.Response, error) {
			if down.Load() {
				return nil, errors.New("connection refused")
			}
			return respond(200, ""), nil
		}}
		br, err := breaker.New("dep", breaker.WithCountWindow(10), breaker.WithMinimumCalls(5),
			breaker.WithOpenDuration(10*time.Second), breaker.WithHalfOpenProbes(1))
		if err != nil {
			t.Fatal(err)
		}
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		tr := newTransport(t, base, resiliencehttp.Policy{Policy: resilience.Policy{Breaker: br}},
			resiliencehttp.WithTracerProvider(tp), resiliencehttp.WithMeterProvider(mp))
		for range 20 {
			do(t, tr, context.Background(), "GET", "")
		}
		if c := base.Calls(); c != 5 {
			t.Fatalf("dependency saw %d calls, want 5 (then the breaker opened)", c)
		}
		_, err = do(t, tr, context.Background(), "GET", "")
		if !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("err = %v, want breaker.ErrOpen", err)
		}
		if !hasEvent(sr.Ended(), resilience.EventNameBreakerRejected) || !hasEvent(sr.Ended(), resilience.EventNameBreakerState) {
			t.Fatal("no breaker rejection or state change span event")
		}
		if got := gaugeState(t, reader, "dep"); got != "open" {
			t.Fatalf("resilient.breaker.state = %q, want open", got)
		}
		if n := counterSumWhere(t, reader, "resilient.client.rejected", resilience.AttrReason.String("breaker")); n != 16 {
			t.Fatalf("rejected{reason=breaker} = %d, want 16", n)
		}
		// After the open duration a probe goes through and closes it.
		down.Store(false)
		time.Sleep(10 * time.Second)
		resp, err := do(t, tr, context.Background(), "GET", "")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if br.State() != breaker.Closed {
			t.Fatalf("breaker %v after a good probe, want closed", br.State())
		}
	})
}

func TestTransport_BulkheadSheds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		base := &fakeBase{answer: func(int, *http.Request) (*http.Response, error) {
			<-release
			return respond(200, ""), nil
		}}
		bh, err := bulkhead.New("dep", 2)
		if err != nil {
			t.Fatal(err)
		}
		tr := newTransport(t, base, resiliencehttp.Policy{Policy: resilience.Policy{Bulkhead: bh}})
		for range 2 {
			go func() {
				if resp, err := do(t, tr, context.Background(), "GET", ""); err == nil {
					resp.Body.Close()
				}
			}()
		}
		synctest.Wait()
		if _, err := do(t, tr, context.Background(), "GET", ""); !errors.Is(err, bulkhead.ErrFull) {
			t.Fatalf("third concurrent call: %v, want bulkhead.ErrFull", err)
		}
		close(release)
		synctest.Wait()
		if base.Calls() != 2 {
			t.Fatalf("dependency saw %d calls, want 2", base.Calls())
		}
	})
}

func TestTransport_FallbackServesLastGood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down atomic.Bool
		base := &fakeBase{answer: func(int, *http.Request) (*http.Response, error) {
			if down.Load() {
				return respond(503, "down"), nil
			}
			return respond(200, "fresh price 42", "Content-Type", "text/plain"), nil
		}}
		fb, err := fallback.New[string, *resiliencehttp.CachedResponse](nil, fallback.WithCache(10, time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		tr := newTransport(t, base, resiliencehttp.Policy{Policy: resilience.Policy{Retry: fastRetry(2)}, Fallback: fb}, resiliencehttp.WithTracerProvider(tp))
		get := func() (int, string, http.Header) {
			resp, err := do(t, tr, context.Background(), "GET", "")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b), resp.Header
		}
		if code, body, _ := get(); code != 200 || body != "fresh price 42" {
			t.Fatalf("healthy: %d %q", code, body)
		}
		down.Store(true)
		time.Sleep(30 * time.Second)
		code, body, h := get()
		if code != 200 || body != "fresh price 42" || h.Get(resiliencehttp.HeaderFallback) != "cache" || h.Get("Age") != "30" {
			t.Fatalf("down: %d %q %v; want the cached response, 30s old", code, body, h)
		}
		if !hasEvent(sr.Ended(), resilience.EventNameFallback) {
			t.Fatal("no fallback span event")
		}
		// Past the maximum staleness the dependency's own answer comes back.
		time.Sleep(time.Minute)
		if code, body, _ := get(); code != 503 || body != "down" {
			t.Fatalf("stale: %d %q, want the 503", code, body)
		}
	})
}

func TestTransport_SpansAndTraceContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &fakeBase{answer: func(n int, r *http.Request) (*http.Response, error) {
			if n == 1 {
				return respond(503, ""), nil
			}
			return respond(200, ""), nil
		}}
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		tr := newTransport(t, base, resiliencehttp.Policy{Policy: resilience.Policy{Retry: fastRetry(3)}}, resiliencehttp.WithTracerProvider(tp), resiliencehttp.WithMeterProvider(mp))
		ctx, parent := tp.Tracer("test").Start(context.Background(), "caller")
		resp, err := do(t, tr, ctx, "GET", "")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		parent.End()
		var attempts []sdktrace.ReadOnlySpan
		for _, s := range sr.Ended() {
			if s.Name() == "GET" {
				attempts = append(attempts, s)
			}
		}
		if len(attempts) != 2 {
			t.Fatalf("%d attempt spans, want 2", len(attempts))
		}
		for i, s := range attempts {
			if s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
				t.Fatal("attempt span not in the caller's trace")
			}
			if !hasAttr(s.Attributes(), resilience.AttrAttempt.Int(i+1)) {
				t.Fatalf("attempt span %d lacks attempt=%d: %v", i, i+1, s.Attributes())
			}
			tp := base.headers[i].Get("traceparent")
			if !strings.Contains(tp, s.SpanContext().SpanID().String()) || !strings.Contains(tp, parent.SpanContext().TraceID().String()) {
				t.Fatalf("attempt %d traceparent %q does not name its span", i+1, tp)
			}
		}
		if !hasEvent(sr.Ended(), resilience.EventNameRetry) {
			t.Fatal("no retry event")
		}
		if n := counterSumWhere(t, reader, "resilient.client.attempts", resilience.AttrOutcome.String("status")); n != 1 {
			t.Fatalf("attempts{outcome=status} = %d, want 1", n)
		}
		if n := counterSumWhere(t, reader, "resilient.client.attempts", resilience.AttrOutcome.String("success")); n != 1 {
			t.Fatalf("attempts{outcome=success} = %d, want 1", n)
		}
	})
}

func hasAttr(attrs []attribute.KeyValue, want attribute.KeyValue) bool {
	for _, a := range attrs {
		if a == want {
			return true
		}
	}
	return false
}

// ctxBody fails reads once its request's context is done, like a real
// transport's body.
type ctxBody struct {
	ctx context.Context
	r   io.Reader
}

func (b *ctxBody) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	return b.r.Read(p)
}
func (b *ctxBody) Close() error { return nil }

func TestTransport_HedgeTakesFirstAndKeepsBodyReadable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cancelled atomic.Int32
		base := &fakeBase{answer: func(n int, r *http.Request) (*http.Response, error) {
			if n == 1 {
				<-r.Context().Done() // the slow replica: the hedge wins, this one is cancelled
				cancelled.Add(1)
				return nil, r.Context().Err()
			}
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: &ctxBody{r.Context(), strings.NewReader("from hedge")}}, nil
		}}
		h, err := hedge.New("dep", 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		tr := newTransport(t, base, resiliencehttp.Policy{Hedge: h}, resiliencehttp.WithTracerProvider(tp))
		resp, err := do(t, tr, context.Background(), "GET", "")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != "from hedge" {
			t.Fatalf("body %q %v; want the hedge's body, still readable", b, err)
		}
		synctest.Wait()
		if base.Calls() != 2 || cancelled.Load() != 1 {
			t.Fatalf("calls %d, cancelled %d; want 2 and the slow one cancelled", base.Calls(), cancelled.Load())
		}
		if !hasEvent(sr.Ended(), resilience.EventNameHedge) {
			t.Fatal("no hedge event")
		}
		// A POST is never hedged.
		base.calls = 1 // next answers come fast
		resp, err = do(t, tr, context.Background(), "POST", "x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if base.Calls() != 2 {
			t.Fatalf("POST made %d calls, want 1", base.Calls()-1)
		}
	})
}

func TestTransport_ThrottleRejectsLocally(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &fakeBase{answer: func(int, *http.Request) (*http.Response, error) { return respond(503, ""), nil }}
		th, err := throttle.New("dep", throttle.WithK(1.1))
		if err != nil {
			t.Fatal(err)
		}
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		tr := newTransport(t, base, resiliencehttp.Policy{Policy: resilience.Policy{Throttle: th}}, resiliencehttp.WithMeterProvider(mp))
		const offered = 200
		for range offered {
			if resp, err := do(t, tr, context.Background(), "GET", ""); err == nil {
				resp.Body.Close()
			} else if !errors.Is(err, throttle.ErrThrottled) {
				t.Fatal(err)
			}
		}
		rejected := counterSumWhere(t, reader, "resilient.client.rejected", resilience.AttrReason.String("throttle"))
		if rejected == 0 || int(rejected)+base.Calls() != offered {
			t.Fatalf("throttled %d, sent %d of %d; want local rejections to cover the rest", rejected, base.Calls(), offered)
		}
	})
}
