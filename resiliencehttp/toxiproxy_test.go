package resiliencehttp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/resilience"
	"github.com/handoffhq/handoff/resiliencehttp"
	"github.com/handoffhq/handoff/retry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// noLeak fails the test if goroutines started during it are still running
// after its cleanups. Register it first: cleanups run last-in first-out.
func noLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf)
			}
			time.Sleep(10 * time.Millisecond) // polling a condition
		}
	})
}

// faultyDependency is a real HTTP server behind an in-process toxiproxy.
type faultyDependency struct {
	proxy    *toxiproxy.Proxy
	url      string
	served   atomic.Int32 // requests the server's handler saw
	attempts atomic.Int32 // requests the client sent
	base     *http.Transport
}

func newFaultyDependency(t *testing.T, h http.HandlerFunc) *faultyDependency {
	t.Helper()
	f := &faultyDependency{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.served.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	f.proxy = toxiproxy.NewProxy(api, "dep", "127.0.0.1:0", srv.Listener.Addr().String())
	if err := f.proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.proxy.Stop)
	f.url = "http://" + f.proxy.Listen
	f.base = &http.Transport{}
	t.Cleanup(f.base.CloseIdleConnections)
	return f
}

func (f *faultyDependency) RoundTrip(r *http.Request) (*http.Response, error) {
	f.attempts.Add(1)
	return f.base.RoundTrip(r)
}

func (f *faultyDependency) toxic(t *testing.T, spec string) {
	t.Helper()
	if _, err := f.proxy.Toxics.AddToxicJson(strings.NewReader(spec)); err != nil {
		t.Fatalf("add toxic %s: %v", spec, err)
	}
}

func (f *faultyDependency) heal(t *testing.T) {
	t.Helper()
	f.proxy.Toxics.ResetToxics(context.Background())
	f.base.CloseIdleConnections()
}

func (f *faultyDependency) get(t *testing.T, tr http.RoundTripper, ctx context.Context, method string, hdr ...string) (*http.Response, string, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, method, f.url+"/item", strings.NewReader("payload"))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func okHandler(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	fmt.Fprint(w, "ok")
}

func TestToxiproxy_LatencyPerTryTimeout(t *testing.T) {
	noLeak(t)
	f := newFaultyDependency(t, okHandler)
	tr := newTransport(t, f, resiliencehttp.Policy{Policy: resilience.Policy{Retry: &retry.Policy{MaxAttempts: 3,
		Backoff: retry.Backoff{Initial: time.Millisecond}}, Timeout: 100 * time.Millisecond}})
	f.toxic(t, `{"name":"slow","type":"latency","stream":"downstream","attributes":{"latency":3000}}`)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := f.get(t, tr, ctx, "GET")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want each attempt's deadline", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the caller's deadline passed: per-try timeouts did not cut the attempts")
	}
	if n := f.attempts.Load(); n != 3 {
		t.Fatalf("%d attempts, want 3 (GET retried after per-try timeouts)", n)
	}

	// The caller's own deadline wins over the per-try timeout and the retries.
	f.attempts.Store(0)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel2()
	_, _, err = f.get(t, tr, ctx2, "GET")
	if !errors.Is(err, context.DeadlineExceeded) || ctx2.Err() == nil {
		t.Fatalf("err = %v (ctx %v), want the caller's deadline", err, ctx2.Err())
	}
	if n := f.attempts.Load(); n > 2 {
		t.Fatalf("%d attempts within a 150ms deadline and 100ms tries, want ≤ 2", n)
	}

	f.heal(t)
	if _, body, err := f.get(t, tr, context.Background(), "GET"); err != nil || body != "ok" {
		t.Fatalf("after healing: %q %v", body, err)
	}
}

func TestToxiproxy_ResetPeer(t *testing.T) {
	noLeak(t)
	f := newFaultyDependency(t, okHandler)
	br, err := breaker.New("dep", breaker.WithCountWindow(5), breaker.WithMinimumCalls(5), breaker.WithOpenDuration(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tr := newTransport(t, f, resiliencehttp.Policy{Policy: resilience.Policy{Retry: fastRetry(3), Breaker: br}})
	f.toxic(t, `{"name":"rst","type":"reset_peer","stream":"upstream","attributes":{"timeout":0}}`)

	// A GET is retried after resets; a POST without a key is not.
	if _, _, err := f.get(t, tr, context.Background(), "GET"); err == nil {
		t.Fatal("GET through a resetting proxy succeeded")
	}
	if n := f.attempts.Load(); n != 3 {
		t.Fatalf("GET: %d attempts, want 3", n)
	}
	f.attempts.Store(0)
	if _, _, err := f.get(t, tr, context.Background(), "POST"); err == nil {
		t.Fatal("POST through a resetting proxy succeeded")
	}
	if n := f.attempts.Load(); n != 1 {
		t.Fatalf("POST without Idempotency-Key: %d attempts, want 1", n)
	}
	// The next GET's first attempt is the fifth failure in a window of
	// five: the breaker opens and its retry is refused without sending.
	f.attempts.Store(0)
	_, _, err = f.get(t, tr, context.Background(), "GET")
	if !errors.Is(err, breaker.ErrOpen) || f.attempts.Load() != 1 {
		t.Fatalf("err = %v after %d attempts, want breaker.ErrOpen after 1", err, f.attempts.Load())
	}
	f.attempts.Store(0)
	_, _, err = f.get(t, tr, context.Background(), "GET")
	if !errors.Is(err, breaker.ErrOpen) || f.attempts.Load() != 0 {
		t.Fatalf("err = %v after %d attempts, want breaker.ErrOpen before sending", err, f.attempts.Load())
	}
	if br.State() != breaker.Open {
		t.Fatalf("breaker %v, want open", br.State())
	}
	if n := f.served.Load(); n != 0 {
		t.Fatalf("server handled %d requests through resets", n)
	}
}

func TestToxiproxy_TimeoutToxic(t *testing.T) {
	noLeak(t)
	f := newFaultyDependency(t, okHandler)
	tr := newTransport(t, f, resiliencehttp.Policy{Policy: resilience.Policy{Retry: &retry.Policy{MaxAttempts: 2,
		Backoff: retry.Backoff{Initial: time.Millisecond}}, Timeout: 100 * time.Millisecond}})
	// Data stops flowing and the connection is never closed.
	f.toxic(t, `{"name":"blackhole","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := f.get(t, tr, ctx, "GET")
	if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		t.Fatalf("err = %v, want per-try deadlines well before the caller's", err)
	}
	if n := f.attempts.Load(); n != 2 {
		t.Fatalf("%d attempts, want 2", n)
	}
	if n := f.served.Load(); n != 0 {
		t.Fatalf("server handled %d requests through a black hole", n)
	}
	f.heal(t)
	if _, body, err := f.get(t, tr, context.Background(), "GET"); err != nil || body != "ok" {
		t.Fatalf("after healing: %q %v", body, err)
	}
}

func TestToxiproxy_SlowClose(t *testing.T) {
	noLeak(t)
	f := newFaultyDependency(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		okHandler(w, r)
	})
	tr := newTransport(t, f, resiliencehttp.Policy{Policy: resilience.Policy{Retry: &retry.Policy{MaxAttempts: 3}, Timeout: time.Second}})
	f.toxic(t, `{"name":"lingering","type":"slow_close","stream":"downstream","attributes":{"delay":500}}`)
	for i := range 3 {
		resp, body, err := f.get(t, tr, context.Background(), "GET")
		if err != nil || body != "ok" || resp.StatusCode != 200 {
			t.Fatalf("call %d: %v %q %v; want ok despite the lingering close", i, resp, body, err)
		}
	}
	if n := f.attempts.Load(); n != 3 {
		t.Fatalf("%d attempts for 3 calls, want no retries", n)
	}
}
