package alert_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/alert"
	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/relay"
)

// recorder is an in-bubble notifier: it records each delivery with the
// (fake) time it arrived, failing the first fails calls.
type recorder struct {
	mu    sync.Mutex
	got   []alert.Alert
	at    []time.Time
	fails int
}

func (r *recorder) Notify(_ context.Context, a alert.Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fails > 0 {
		r.fails--
		return errors.New("webhook down")
	}
	r.got = append(r.got, a)
	r.at = append(r.at, time.Now())
	return nil
}

func (r *recorder) deliveries() ([]alert.Alert, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]alert.Alert(nil), r.got...), append([]time.Time(nil), r.at...)
}

type stats struct {
	mu sync.Mutex
	st relay.Stats
}

func (s *stats) Stats(context.Context) (relay.Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st, nil
}

func (s *stats) set(st relay.Stats) { s.mu.Lock(); s.st = st; s.mu.Unlock() }

var quiet = slog.New(slog.DiscardHandler)

// A backlog passing its threshold is delivered within 5 seconds, through a
// notifier that fails twice first; it is sent once while it lasts, and
// resolved once when it clears.
func TestManager_BacklogAlertWithinFiveSecondsDedupedAndResolved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		src := &stats{}
		rec := &recorder{fails: 2}
		m, err := alert.New([]alert.Notifier{rec}, alert.WithLogger(quiet), alert.WithRetry(250*time.Millisecond, time.Second, 5),
			alert.WithCheck(alert.Backlog("main", src, time.Minute, 2*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { done <- m.Run(ctx) }()

		time.Sleep(10 * time.Second) // fake time: nothing pending, nothing sent
		synctest.Wait()
		if got, _ := rec.deliveries(); len(got) != 0 {
			t.Fatalf("sent %v with no backlog", got)
		}
		crossed := time.Now()
		src.set(relay.Stats{Pending: 3, Oldest: crossed.Add(-time.Minute - time.Millisecond)})
		time.Sleep(time.Minute) // the condition holds for a minute of checks
		synctest.Wait()
		got, at := rec.deliveries()
		if len(got) != 1 || got[0].Status != alert.Firing || got[0].Key != "outbox_backlog/main" {
			t.Fatalf("deliveries while it holds: %+v, want one firing outbox_backlog/main", got)
		}
		if d := at[0].Sub(crossed); d > 5*time.Second {
			t.Errorf("delivered %v after the threshold was passed, want within 5s", d)
		}
		cleared := time.Now()
		src.set(relay.Stats{})
		time.Sleep(time.Minute)
		synctest.Wait()
		got, at = rec.deliveries()
		if len(got) != 2 || got[1].Status != alert.Resolved || got[1].Key != got[0].Key {
			t.Fatalf("deliveries after it cleared: %+v, want firing then resolved", got)
		}
		if d := at[1].Sub(cleared); d > 5*time.Second {
			t.Errorf("resolved %v after it cleared, want within 5s", d)
		}
		if len(m.Active()) != 0 {
			t.Errorf("still active: %v", m.Active())
		}
		cancel()
		<-done
	})
}

// A consumer's first dead letter is sent through the dlq hook at once,
// once however many follow, and resolves when its letters are replayed;
// after a "crash" (a new Manager, the hook never called), the periodic
// re-check still sends it.
func TestManager_FirstDeadLetterHookRecheckAndCrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		store := memory.NewDLQStore()
		rec := &recorder{}
		m, err := alert.New([]alert.Notifier{rec}, alert.WithLogger(quiet),
			alert.WithCheck(alert.DeadLetters(store, 30*time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		q, _ := dlq.New(store, dlq.WithAlerter(m), dlq.WithLogger(quiet))
		done := make(chan error)
		go func() { done <- m.Run(ctx) }()
		synctest.Wait()
		added := time.Now()
		for i := range 3 {
			l := &dlq.Letter{Consumer: "shipping", Topic: "orders", Class: dlq.ClassPermanent, Errors: []string{"no"},
				Message: handoff.NewMessage("/t", "x", []byte(`{}`)), LastFailure: time.Now(), FirstFailure: time.Now()}
			_ = i
			if err := q.Add(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		got, at := rec.deliveries()
		if len(got) != 1 || got[0].Key != "dead_letter/shipping" || at[0].Sub(added) > 5*time.Second {
			t.Fatalf("after 3 letters: %+v at %v, want one dead_letter/shipping at once", got, at)
		}
		time.Sleep(2 * time.Minute) // re-checks see it still open: no repeat
		synctest.Wait()
		if got, _ := rec.deliveries(); len(got) != 1 {
			t.Fatalf("re-checks repeated the alert: %+v", got)
		}
		if _, err := q.Purge(ctx, dlq.Filter{Consumer: "shipping"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(31 * time.Second)
		synctest.Wait()
		if got, _ := rec.deliveries(); len(got) != 2 || got[1].Status != alert.Resolved {
			t.Fatalf("after purge: %+v, want resolved", got)
		}
		cancel()
		<-done

		// Crash: a letter stored, its hook never ran; a fresh manager's
		// first check finds it.
		l := &dlq.Letter{ID: "01a2467c-27de-78fb-893c-c81ef738fe90", Consumer: "billing", Topic: "orders", Class: dlq.ClassHandler,
			Message: handoff.NewMessage("/t", "x", []byte(`{}`)), LastFailure: time.Now(), FirstFailure: time.Now()}
		if _, err := store.Add(t.Context(), l); err != nil {
			t.Fatal(err)
		}
		rec2 := &recorder{}
		m2, _ := alert.New([]alert.Notifier{rec2}, alert.WithLogger(quiet), alert.WithCheck(alert.DeadLetters(store, 30*time.Second)))
		ctx2, cancel2 := context.WithCancel(t.Context())
		go func() { done <- m2.Run(ctx2) }()
		restarted := time.Now()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		got, at = rec2.deliveries()
		if len(got) != 1 || got[0].Key != "dead_letter/billing" || at[0].Sub(restarted) > 5*time.Second {
			t.Fatalf("after restart: %+v, want dead_letter/billing within 5s", got)
		}
		cancel2()
		<-done
	})
}

// A breaker opening fires through its state listener and resolves when it
// closes.
func TestManager_BreakerOpenAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		rec := &recorder{}
		m, _ := alert.New([]alert.Notifier{rec}, alert.WithLogger(quiet))
		b, err := breaker.New("payments", breaker.WithCountWindow(2), breaker.WithMinimumCalls(2), breaker.WithFailureRate(50),
			breaker.WithOpenDuration(10*time.Second), breaker.WithHalfOpenProbes(1), breaker.WithStateListener(m))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { done <- m.Run(ctx) }()
		for range 2 {
			_ = b.Do(ctx, func(context.Context) error { return errors.New("down") })
		}
		synctest.Wait()
		if got, _ := rec.deliveries(); len(got) != 1 || got[0].Key != "breaker_open/payments" {
			t.Fatalf("after opening: %+v", got)
		}
		time.Sleep(11 * time.Second)
		if err := b.Do(ctx, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got, _ := rec.deliveries(); len(got) != 2 || got[1].Status != alert.Resolved {
			t.Fatalf("after closing: %+v", got)
		}
		cancel()
		<-done
	})
}

// RelayLease fires when a running relay has held no partition for longer
// than the grace.
func TestRelayLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &fakeRelay{p: relay.Progress{Started: time.Now(), Partitions: 0}}
		c := alert.RelayLease(r, time.Minute, 5*time.Second)
		if got, _ := c.Find(t.Context()); len(got) != 0 {
			t.Fatalf("at start: %v", got)
		}
		time.Sleep(61 * time.Second)
		if got, _ := c.Find(t.Context()); len(got) != 1 || got[0].Subject != "relay-1" {
			t.Fatalf("after a minute with none: %v", got)
		}
		r.p.Partitions = 4
		if got, _ := c.Find(t.Context()); len(got) != 0 {
			t.Fatalf("holding 4: %v", got)
		}
	})
}

type fakeRelay struct{ p relay.Progress }

func (f *fakeRelay) Progress() relay.Progress { return f.p }
func (f *fakeRelay) Owner() string            { return "relay-1" }

// Real HTTP: each format's body as its receiver expects it, 5xx retried,
// 4xx not, and a redirect never followed.
func TestWebhook_FormatsRetriesAndNoRedirect(t *testing.T) {
	type hit struct {
		body map[string]any
	}
	var (
		mu   sync.Mutex
		hits = map[string][]hit{}
	)
	delivered := make(chan struct{}, 10)
	var fails atomic.Int32
	fails.Store(2)
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits["elsewhere"] = append(hits["elsewhere"], hit{})
		mu.Unlock()
	}))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
			return
		}
		if r.URL.Path == "/pd" && fails.Add(-1) >= 0 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		var b map[string]any
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &b); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		hits[r.URL.Path] = append(hits[r.URL.Path], hit{b})
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		delivered <- struct{}{}
	}))
	defer srv.Close()
	mk := func(path string, f alert.Format, opts ...alert.WebhookOption) alert.Notifier {
		w, err := alert.NewWebhook(srv.URL+path, f, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	m, err := alert.New([]alert.Notifier{mk("/json", alert.FormatJSON), mk("/slack", alert.FormatSlack),
		mk("/pd", alert.FormatPagerDuty, alert.WithRoutingKey("R0UTING")), mk("/redirect", alert.FormatJSON)},
		alert.WithLogger(quiet), alert.WithRetry(time.Millisecond, 10*time.Millisecond, 5))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	m.Fire(alert.Alert{Condition: alert.ConditionSagaStuck, Subject: "order-42", Summary: "saga order-42 is stuck in reserve-stock"})
	m.Fire(alert.Alert{Condition: alert.ConditionSagaStuck, Subject: "order-42", Summary: "again"}) // deduplicated
	m.Resolve("saga_stuck/order-42")
	for range 6 {
		select {
		case <-delivered:
		case <-time.After(10 * time.Second):
			t.Fatal("deliveries missing after 10s")
		}
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	j := hits["/json"]
	if len(j) != 2 || j[0].body["status"] != "firing" || j[1].body["status"] != "resolved" ||
		j[0].body["key"] != "saga_stuck/order-42" || j[0].body["condition"] != "saga_stuck" || j[1].body["endsAt"] == nil {
		t.Errorf("json: %+v", j)
	}
	if s := hits["/slack"]; len(s) != 2 || s[0].body["text"] == nil {
		t.Errorf("slack: %+v", s)
	}
	pd := hits["/pd"]
	if len(pd) != 2 || pd[0].body["event_action"] != "trigger" || pd[1].body["event_action"] != "resolve" ||
		pd[0].body["dedup_key"] != "saga_stuck/order-42" || pd[0].body["routing_key"] != "R0UTING" {
		t.Fatalf("pagerduty: %+v", pd)
	}
	payload, _ := pd[0].body["payload"].(map[string]any)
	if payload["severity"] != "error" || payload["source"] != "handoff" || payload["summary"] != "saga order-42 is stuck in reserve-stock" {
		t.Errorf("pagerduty payload: %+v", payload)
	}
	if len(hits["elsewhere"]) != 0 {
		t.Errorf("a redirect was followed to another URL")
	}
}

func TestNewWebhook_RefusesBadConfig(t *testing.T) {
	for _, c := range []struct {
		url string
		f   alert.Format
	}{{"ftp://x", alert.FormatJSON}, {"/relative", alert.FormatJSON}, {"http://x", "xml"}, {"http://x", alert.FormatPagerDuty}} {
		if _, err := alert.NewWebhook(c.url, c.f); err == nil {
			t.Errorf("NewWebhook(%q, %q): no error", c.url, c.f)
		}
	}
}
