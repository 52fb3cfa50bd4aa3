package idempotency_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoffhq/handoff/idempotency"
)

// The money transfer: the client gives up while the server is still doing
// the work. The response must still be stored, so the client's retry with
// the same key replays it instead of transferring again. (A store that
// honours its context, like the SQL ones, must not be handed the request's
// context, which ends when the client leaves.)
func TestMiddleware_ClientGoneResponseStillStored(t *testing.T) {
	mw, err := idempotency.New(sqliteStore(t), idempotency.WithWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var transfers atomic.Int32
	started := make(chan struct{}, 1)
	srv := httptest.NewServer(mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-r.Context().Done() // the client is gone; the work completes anyway
		transfers.Add(1)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"transfer":"t-1"}`)
	})))
	defer srv.Close()

	send := func(ctx context.Context) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/transfers", strings.NewReader(`{"amount":100}`))
		req.Header.Set("Idempotency-Key", "k-42")
		return http.DefaultClient.Do(req)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	if _, err := send(ctx); err == nil {
		t.Fatal("the first request was meant to be abandoned by its client")
	}

	res, err := send(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || res.Header.Get("Idempotent-Replayed") != "true" || string(body) != `{"transfer":"t-1"}` {
		t.Fatalf("retry got %d %q (replayed %q), want the stored 201", res.StatusCode, body, res.Header.Get("Idempotent-Replayed"))
	}
	if n := transfers.Load(); n != 1 {
		t.Fatalf("%d transfers, want 1", n)
	}
}

// A handler's context ends before its lock does, so a handler that honours
// its context cannot still be working when a retry takes the key over.
func TestMiddleware_HandlerContextEndsBeforeItsLock(t *testing.T) {
	const lockTTL = time.Minute
	mw, err := idempotency.New(new(idempotency.MemoryStore), idempotency.WithLockTTL(lockTTL))
	if err != nil {
		t.Fatal(err)
	}
	var left time.Duration
	var hasDeadline bool
	h := mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var dl time.Time
		dl, hasDeadline = r.Context().Deadline()
		left = time.Until(dl)
	}))
	req := httptest.NewRequest(http.MethodPost, "/transfers", strings.NewReader(`{}`))
	req.Header.Set("Idempotency-Key", "k-1")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if !hasDeadline || left <= 0 || left >= lockTTL {
		t.Fatalf("handler context deadline: set %v, %v left; want one before the %v lock ends", hasDeadline, left, lockTTL)
	}
}
