package nats

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/internal/testenv"
)

// A subscription consumes a loaded stream while the server restarts under
// it three times. Deliveries on the wire when the connection drops are lost
// to the client while the server counts them as delivered: the subscription
// must not hand a later message of their key to the runtime before them,
// and must not wait AckWait (30s) for them either (without the resync after
// a reconnect, consumption stalled until AckWait, the lost deliveries
// filling MaxAckPending).
func TestSubscribe_FirstDeliveriesKeepKeyOrderAcrossServerRestarts(t *testing.T) {
	srv := embeddedServer(t)
	var logs strings.Builder
	var logMu sync.Mutex
	c, nc := connect(t, srv, WithLogger(slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelWarn}))))
	topic, group := testenv.Unique("dorder."), "g"
	const keys, total = 16, 20000
	ctx := context.Background()
	// The stream is loaded first, so deliveries are in flight at each restart.
	next := make([]int, keys)
	for b := 0; b < total/500; b++ {
		msgs := make([]*handoff.Message, 500)
		for i := range msgs {
			k := (b*500 + i) % keys
			next[k]++
			data, _ := json.Marshal(map[string]int{"k": k, "n": next[k]})
			m := handoff.NewMessage("/order", "order.step", data)
			m.PartitionKey = fmt.Sprint(k)
			msgs[i] = m
		}
		pub(t, c, topic, msgs...)
	}

	var mu sync.Mutex
	last := make([]int, keys)
	seen := map[string]bool{}
	var violations []string
	handled := 0
	done := make(chan struct{})
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.Subscribe(sctx, handoff.Subscription{Topic: topic, Group: group}, func(d *handoff.Delivery) {
		var ev struct{ K, N int }
		json.Unmarshal(d.Message.Data, &ev)
		mu.Lock()
		if !seen[d.Message.ID] {
			seen[d.Message.ID] = true
			if ev.N != last[ev.K]+1 && len(violations) < 10 {
				violations = append(violations, fmt.Sprintf("key %d: n=%d after n=%d (attempt %d)", ev.K, ev.N, last[ev.K], d.Attempt))
			}
			last[ev.K] = max(last[ev.K], ev.N)
			handled++
			if handled == total {
				close(done)
			}
		}
		mu.Unlock()
		go d.Settler.Ack(ctx)
	})
	progress := func() int { mu.Lock(); defer mu.Unlock(); return handled }
	for i, at := range []int{3000, 8000, 13000} {
		for deadline := time.Now().Add(waitFor); progress() < at; {
			if time.Now().After(deadline) {
				t.Fatalf("restart %d: %d handled, waiting for %d", i, progress(), at)
			}
			time.Sleep(time.Millisecond) // polling progress with a deadline
		}
		before := nc.Stats().Reconnects
		if err := srv.emb.Restart(); err != nil {
			t.Fatal(err)
		}
		waitConnected(t, nc, before)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
	}
	mu.Lock()
	defer mu.Unlock()
	logMu.Lock()
	t.Logf("handled %d of %d; warnings:\n%s", handled, total, logs.String())
	logMu.Unlock()
	if handled < total {
		t.Errorf("handled %d of %d", handled, total)
	}
	if len(violations) > 0 {
		t.Errorf("key order broken: %v", violations)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
