package resiliencehttp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/idempotency"
	"github.com/handoffhq/handoff/resilience"
	"github.com/handoffhq/handoff/resiliencehttp"
	"github.com/handoffhq/handoff/retry"
)

// hop is one service of the chain: resiliencehttp.Server in front, a Transport
// to the next service behind.
type hop struct {
	srv       *httptest.Server
	calls     atomic.Int32
	mu        sync.Mutex
	deadlines []time.Time
	arrived   []time.Time // when the handler ran, after the middleware set the deadline
}

func (h *hop) record(r *http.Request) {
	h.calls.Add(1)
	dl, _ := r.Context().Deadline()
	now := time.Now()
	h.mu.Lock()
	h.deadlines = append(h.deadlines, dl)
	h.arrived = append(h.arrived, now)
	h.mu.Unlock()
}

func newHop(t *testing.T, next *hop, pol retry.Policy, slow bool) *hop {
	t.Helper()
	h := &hop{}
	var tr *resiliencehttp.Transport
	var client *http.Client
	if next != nil {
		tr = newTransport(t, &http.Transport{}, resiliencehttp.Policy{Policy: resilience.Policy{Retry: &pol}})
		client = &http.Client{Transport: tr}
	}
	s, err := resiliencehttp.NewServer(resiliencehttp.WithMaxTimeout(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(s.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.record(r)
		if slow {
			<-r.Context().Done() // C: slower than anyone's deadline
			w.WriteHeader(http.StatusGatewayTimeout)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), "GET", next.srv.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				w.WriteHeader(http.StatusGatewayTimeout)
			} else {
				w.WriteHeader(http.StatusBadGateway)
			}
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})))
	t.Cleanup(h.srv.Close)
	return h
}

func TestChain_DeadlinePropagatesAndHolds(t *testing.T) {
	c := newHop(t, nil, retry.Policy{}, true)
	b := newHop(t, c, retry.Policy{MaxAttempts: 2, MinAttemptTime: 50 * time.Millisecond, Backoff: retry.Backoff{Initial: time.Millisecond}}, false)
	a := newHop(t, b, retry.Policy{MaxAttempts: 1}, false)
	client := newTransport(t, &http.Transport{}, resiliencehttp.Policy{})

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	callerDeadline, _ := ctx.Deadline()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.srv.URL, nil)
	sent := time.Now()
	resp, err := client.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("A answered %d, want 504 or the caller's deadline", resp.StatusCode)
		}
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
	// Each hop works to the caller's deadline. The header carries the whole
	// milliseconds left when a request was sent (rounded down), and a hop
	// counts them from when it received the request, so a hop's deadline is
	// later than the caller's by at most the time the request took to get
	// there: deadline ≤ caller's deadline + (arrival − first send). That
	// bound holds however loaded the machine is; a hop that restarted the
	// clock (or added its own time) breaks it.
	for _, name := range []string{"A", "B", "C"} {
		h := map[string]*hop{"A": a, "B": b, "C": c}[name]
		h.mu.Lock()
		for i, dl := range h.deadlines {
			if limit := callerDeadline.Add(h.arrived[i].Sub(sent)); dl.IsZero() || dl.After(limit) {
				t.Errorf("%s ran with deadline %v, later than the caller's %v plus the transit %v",
					name, dl, callerDeadline, h.arrived[i].Sub(sent))
			}
		}
		h.mu.Unlock()
	}
	if n := c.calls.Load(); n != 1 {
		t.Fatalf("C called %d times, want 1 (no retry without the time for it)", n)
	}
}

func TestChain_NoCallWhenTooLittleTimeLeft(t *testing.T) {
	c := newHop(t, nil, retry.Policy{}, true)
	// B needs 200ms for a call to C.
	b := newHop(t, c, retry.Policy{MaxAttempts: 2, MinAttemptTime: 200 * time.Millisecond, Backoff: retry.Backoff{Initial: time.Millisecond}}, false)
	a := newHop(t, b, retry.Policy{MaxAttempts: 1}, false)
	client := newTransport(t, &http.Transport{}, resiliencehttp.Policy{})

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.srv.URL, nil)
	req.Header.Set(resiliencehttp.HeaderTimeout, "100") // ignored: the transport sets it from ctx
	resp, err := client.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("A answered %d, want 504", resp.StatusCode)
		}
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err) // the 504 may lose the race with the caller's own deadline
	}
	// With 1s, B does call C (which is slow): the path works.
	if n := c.calls.Load(); n != 1 {
		t.Fatalf("with time to spare C was called %d times, want 1", n)
	}

	ctx2, cancel2 := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel2()
	req, _ = http.NewRequestWithContext(ctx2, "GET", a.srv.URL, nil)
	resp, err = client.RoundTrip(req)
	if err != nil {
		t.Fatalf("err = %v; B should answer 504 at once, well within the deadline", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("A answered %d, want 504 relayed from B", resp.StatusCode)
	}
	if n := c.calls.Load(); n != 1 {
		t.Fatalf("C called again (%d calls) with less than B's 200ms minimum left", n)
	}
	if n := b.calls.Load(); n != 2 {
		t.Fatalf("B saw %d calls, want 2", n)
	}
}

// TestMoneyTransfer_ThroughTransport: the client's per-try timeout fires
// after the server moved the money; the transport retries the POST (it
// carries an Idempotency-Key) and gets the stored response; the money moves
// once. The store is SQLite in a temporary directory.
func TestMoneyTransfer_ThroughTransport(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "idem.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := sqlite.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	store := sqlite.IdempotencyStore(db)
	mw, err := idempotency.New(store, idempotency.WithWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var transfers atomic.Int32
	var balance atomic.Int64
	srv := httptest.NewServer(mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var amount int64
		fmt.Sscanf(string(body), "amount=%d", &amount)
		balance.Add(amount)
		n := transfers.Add(1)
		if n == 1 {
			<-r.Context().Done() // the work is done, the answer is late: the client gives up
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "transfer %d", n)
	})))
	t.Cleanup(srv.Close)

	tr := newTransport(t, &http.Transport{}, resiliencehttp.Policy{Policy: resilience.Policy{Retry: &retry.Policy{MaxAttempts: 3,
		Backoff: retry.Backoff{Initial: time.Millisecond}}, Timeout: 200 * time.Millisecond}})
	req, _ := http.NewRequest("POST", srv.URL+"/transfers", strings.NewReader("amount=30"))
	req.Header.Set("Idempotency-Key", "transfer-1")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || string(body) != "transfer 1" || resp.Header.Get(idempotency.HeaderReplayed) != "true" {
		t.Fatalf("got %d %q replayed=%q, want the replayed 201", resp.StatusCode, body, resp.Header.Get(idempotency.HeaderReplayed))
	}
	if n, b := transfers.Load(), balance.Load(); n != 1 || b != 30 {
		t.Fatalf("transfer ran %d times, balance %d; want once, 30", n, b)
	}
}
