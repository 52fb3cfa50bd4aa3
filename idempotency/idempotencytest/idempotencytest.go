// Package idempotencytest is the conformance suite every
// [idempotency.Store] runs: claiming, replay, fingerprints, lock expiry after
// a crash, token fencing, and the money-transfer case end to end over HTTP.
package idempotencytest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoffhq/handoff/idempotency"
)

// NewStore returns a fresh, empty store for one subtest.
type NewStore func(t testing.TB) idempotency.Store

// Run runs the whole suite against stores made by newStore.
func Run(t *testing.T, newStore NewStore) {
	t.Run("ClaimThenReplay", func(t *testing.T) { testClaimThenReplay(t, newStore(t)) })
	t.Run("ConcurrentClaimOneWins", func(t *testing.T) { testConcurrentClaim(t, newStore(t)) })
	t.Run("ReleaseFreesKey", func(t *testing.T) { testRelease(t, newStore(t)) })
	t.Run("ExpiredLockRecovered", func(t *testing.T) { testExpiredLock(t, newStore(t)) })
	t.Run("ExpiredRecordForgotten", func(t *testing.T) { testExpiredRecord(t, newStore(t)) })
	t.Run("MoneyTransferHappensOnce", func(t *testing.T) { MoneyTransfer(t, newStore(t)) })
	t.Run("ConcurrentRequestsOneRuns", func(t *testing.T) { testConcurrentHTTP(t, newStore(t)) })
}

func rec(key, tok string, now time.Time, lock, ttl time.Duration) idempotency.Record {
	return idempotency.Record{Key: key, Fingerprint: "fp-" + key, Token: tok,
		LockedUntil: now.Add(lock), ExpiresAt: now.Add(lock + ttl)}
}

func testClaimThenReplay(t *testing.T, s idempotency.Store) {
	ctx := context.Background()
	now := time.Now()
	r1 := rec("k1", "t1", now, time.Minute, time.Hour)
	old, err := s.Claim(ctx, r1, now)
	if err != nil || old != nil {
		t.Fatalf("first Claim = %v, %v; want nil, nil", old, err)
	}
	old, err = s.Claim(ctx, rec("k1", "t2", now, time.Minute, time.Hour), now)
	if err != nil || old == nil || old.Done || old.Token != "t1" || old.Fingerprint != "fp-k1" {
		t.Fatalf("second Claim while running = %+v, %v; want running record of t1", old, err)
	}
	done := r1
	done.Status = 201
	done.Header = http.Header{"Content-Type": {"application/json"}, "X-Multi": {"a", "b"}}
	done.Body = []byte(`{"id":1}`)
	done.ExpiresAt = now.Add(time.Hour)
	if err := s.Complete(ctx, done, now); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if err := s.Complete(ctx, done, now); !errors.Is(err, idempotency.ErrLockLost) {
		t.Fatalf("second Complete = %v, want ErrLockLost", err)
	}
	old, err = s.Claim(ctx, rec("k1", "t3", now, time.Minute, time.Hour), now)
	if err != nil || old == nil || !old.Done {
		t.Fatalf("Claim after Complete = %+v, %v; want done record", old, err)
	}
	if h := http.Header(old.Header); old.Status != 201 || string(old.Body) != `{"id":1}` || h.Get("Content-Type") != "application/json" ||
		strings.Join(h.Values("X-Multi"), ",") != "a,b" {
		t.Fatalf("stored response = %d %v %q", old.Status, old.Header, old.Body)
	}
	// Releasing a completed key is a no-op.
	if err := s.Release(ctx, "k1", "t1"); err != nil {
		t.Fatal(err)
	}
	if old, _ := s.Claim(ctx, rec("k1", "t4", now, time.Minute, time.Hour), now); old == nil || !old.Done {
		t.Fatalf("Release removed a completed record")
	}
}

func testConcurrentClaim(t *testing.T, s idempotency.Store) {
	ctx := context.Background()
	now := time.Now()
	const n = 16
	var wins atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			old, err := s.Claim(ctx, rec("same", fmt.Sprint("t", i), now, time.Minute, time.Hour), now)
			if err != nil {
				errs <- err
				return
			}
			if old == nil {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Claim: %v", err)
	}
	if w := wins.Load(); w != 1 {
		t.Fatalf("%d concurrent claims won, want exactly 1", w)
	}
}

func testRelease(t *testing.T, s idempotency.Store) {
	ctx := context.Background()
	now := time.Now()
	if old, err := s.Claim(ctx, rec("r", "t1", now, time.Minute, time.Hour), now); err != nil || old != nil {
		t.Fatalf("Claim = %v, %v", old, err)
	}
	if err := s.Release(ctx, "r", "someone-else"); err != nil {
		t.Fatal(err)
	}
	if old, _ := s.Claim(ctx, rec("r", "t2", now, time.Minute, time.Hour), now); old == nil {
		t.Fatal("Release with a foreign token freed the key")
	}
	if err := s.Release(ctx, "r", "t1"); err != nil {
		t.Fatal(err)
	}
	if old, err := s.Claim(ctx, rec("r", "t2", now, time.Minute, time.Hour), now); err != nil || old != nil {
		t.Fatalf("Claim after Release = %+v, %v; want claimed", old, err)
	}
}

// waitClaim polls Claim with the real clock until it succeeds.
func waitClaim(t *testing.T, s idempotency.Store, r func(now time.Time) idempotency.Record) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		now := time.Now()
		old, err := s.Claim(context.Background(), r(now), now)
		if err != nil {
			t.Fatal(err)
		}
		if old == nil {
			return
		}
		if now.After(deadline) {
			t.Fatalf("key still held after 10s: %+v", old)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not synchronising
	}
}

func testExpiredLock(t *testing.T, s idempotency.Store) {
	ctx := context.Background()
	now := time.Now()
	// The owner claims with a short lock and "crashes" (never completes).
	dead := rec("crash", "dead", now, 150*time.Millisecond, time.Hour)
	if old, err := s.Claim(ctx, dead, now); err != nil || old != nil {
		t.Fatalf("Claim = %v, %v", old, err)
	}
	if old, _ := s.Claim(ctx, rec("crash", "early", now, time.Minute, time.Hour), now); old == nil {
		t.Fatal("a live lock was taken over")
	}
	waitClaim(t, s, func(now time.Time) idempotency.Record { return rec("crash", "heir", now, time.Minute, time.Hour) })
	// The dead owner wakes up: it must not overwrite the heir's claim.
	dead.Status, dead.Body = 200, []byte("stale")
	if err := s.Complete(ctx, dead, time.Now()); !errors.Is(err, idempotency.ErrLockLost) {
		t.Fatalf("Complete by the expired owner = %v, want ErrLockLost", err)
	}
	heir := rec("crash", "heir", time.Now(), time.Minute, time.Hour)
	heir.Status, heir.Body = 200, []byte("fresh")
	if err := s.Complete(ctx, heir, time.Now()); err != nil {
		t.Fatalf("Complete by the heir: %v", err)
	}
}

func testExpiredRecord(t *testing.T, s idempotency.Store) {
	ctx := context.Background()
	now := time.Now()
	r := rec("old", "t1", now, time.Minute, time.Hour)
	if old, err := s.Claim(ctx, r, now); err != nil || old != nil {
		t.Fatalf("Claim = %v, %v", old, err)
	}
	r.Status = 200
	r.ExpiresAt = time.Now().Add(150 * time.Millisecond)
	if err := s.Complete(ctx, r, now); err != nil {
		t.Fatal(err)
	}
	waitClaim(t, s, func(now time.Time) idempotency.Record { return rec("old", "t2", now, time.Minute, time.Hour) })
}

// MoneyTransfer is the case the middleware exists for: the client times out
// after the server has moved the money, retries with the same key, and gets
// the stored response while the money moves once.
func MoneyTransfer(t *testing.T, s idempotency.Store) {
	mw, err := idempotency.New(s, idempotency.WithWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		balance   = map[string]int{"alice": 100, "bob": 0}
		transfers atomic.Int32
	)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var amount int
		fmt.Sscanf(string(body), "amount=%d", &amount)
		mu.Lock()
		balance["alice"] -= amount
		balance["bob"] += amount
		mu.Unlock()
		n := transfers.Add(1)
		if n == 1 {
			// The work is done; the response is late: the client gives up.
			<-r.Context().Done()
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "transfer %d", n)
	})
	srv := httptest.NewServer(mw.Wrap(handler))
	t.Cleanup(srv.Close)

	send := func(ctx context.Context) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/transfers", strings.NewReader("amount=30"))
		req.Header.Set("Idempotency-Key", `"tx-42"`)
		return srv.Client().Do(req)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = send(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first attempt error = %v, want the client's deadline", err)
	}
	resp, err := send(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || string(body) != "transfer 1" || resp.Header.Get(idempotency.HeaderReplayed) != "true" {
		t.Fatalf("retry got %d %q replayed=%q; want the stored 201 \"transfer 1\"", resp.StatusCode, body, resp.Header.Get(idempotency.HeaderReplayed))
	}
	if n := transfers.Load(); n != 1 {
		t.Fatalf("transfer ran %d times, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if balance["alice"] != 70 || balance["bob"] != 30 {
		t.Fatalf("balances = %v, want alice 70 bob 30", balance)
	}
}

func testConcurrentHTTP(t *testing.T, s idempotency.Store) {
	mw, err := idempotency.New(s) // no waiting: concurrent repeats get 409
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var runs atomic.Int32
	srv := httptest.NewServer(mw.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		entered <- struct{}{}
		<-release
		w.WriteHeader(http.StatusAccepted)
	})))
	t.Cleanup(srv.Close)
	post := func(body string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/orders", strings.NewReader(body))
		req.Header.Set("Idempotency-Key", "order-7")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	first := make(chan int)
	go func() { first <- post("a") }()
	<-entered
	if code := post("a"); code != http.StatusConflict {
		t.Errorf("concurrent repeat = %d, want 409", code)
	}
	if code := post("b"); code != http.StatusUnprocessableEntity {
		t.Errorf("same key, different body = %d, want 422", code)
	}
	close(release)
	if code := <-first; code != http.StatusAccepted {
		t.Fatalf("first = %d, want 202", code)
	}
	if code := post("a"); code != http.StatusAccepted {
		t.Errorf("repeat after completion = %d, want replayed 202", code)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1", n)
	}
}
