package handofftest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
)

// tally counts what a group's handler handled, by message id.
type tally struct {
	mu   sync.Mutex
	seen map[string]int
	wake chan struct{}
}

func newTally() *tally { return &tally{seen: map[string]int{}, wake: make(chan struct{}, 1)} }

func (c *tally) add(id string) {
	c.mu.Lock()
	c.seen[id]++
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *tally) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[id]
}

// wait waits until id was handled n times.
func (c *tally) wait(t testing.TB, what, id string, n int) {
	t.Helper()
	deadline := time.After(Timeout)
	for c.count(id) < n {
		select {
		case <-c.wake:
		case <-deadline:
			t.Fatalf("%s: %s handled %d times within %v, want %d", what, id, c.count(id), Timeout, n)
		}
	}
}

// runGroup runs the consumer runtime for group on topic with h until the
// test ends.
func runGroup(t testing.TB, tr Transport, topic, group string, h handoff.Handler, dead consumer.DeadLetterer) {
	t.Helper()
	c, err := consumer.New(tr.Subscriber, topic, group, h, dead,
		consumer.WithWorkers(2), consumer.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer %s: Run: %v", group, err)
		}
	})
}

// testReplayToGroup: two groups consume a topic; one refuses a message for
// good, the other handles it. The refusing group's letter is replayed at
// once (well within any duplicate window of the broker): that group handles
// the message, and the other group never sees it again, on its main path or
// on its own replay path.
func testReplayToGroup(t *testing.T, tr Transport) {
	b, ok := tr.Publisher.(dlq.Broker)
	if !ok {
		t.Skip("the publisher cannot redeliver to one group (handoff.Redeliverer)")
	}
	topic, failing := names("replay")
	other := failing + "other"
	if p, ok := tr.Subscriber.(Provisioner); ok {
		for _, g := range []string{failing, other} {
			ctx, cancel := context.WithTimeout(context.Background(), Timeout)
			err := p.Provision(ctx, handoff.Subscription{Topic: topic, Group: g})
			cancel()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	letters, err := dlq.New(memory.NewDLQStore())
	if err != nil {
		t.Fatal(err)
	}
	m := Msg("k", 1)
	var mu sync.Mutex
	refuse := true
	failed, handled := newTally(), newTally()
	runGroup(t, tr, topic, failing, handoff.HandlerFunc(func(ctx context.Context, got *handoff.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if got.ID == m.ID && refuse {
			return handoff.Permanent(errors.New("refused until fixed"))
		}
		failed.add(got.ID)
		return nil
	}), letters)
	runGroup(t, tr, topic, other, handoff.HandlerFunc(func(ctx context.Context, got *handoff.Message) error {
		handled.add(got.ID)
		return nil
	}), noDeadLetters{t})

	publish(t, tr, topic, m)
	handled.wait(t, "the other group", m.ID, 1)
	var letter *dlq.Letter
	for deadline := time.Now().Add(Timeout); letter == nil; {
		ls, err := letters.List(context.Background(), dlq.Filter{Consumer: failing})
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) > 0 {
			letter = ls[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter for %s within %v", failing, Timeout)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}

	mu.Lock()
	refuse = false
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := letters.Replay(ctx, b, letter.ID); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	failed.wait(t, "the group that failed, after the replay", m.ID, 1)

	// Markers down both of the other group's paths: had the replay reached
	// it, it would arrive before them.
	viaTopic, viaReplay := Msg("z", 2), Msg("z", 3)
	publish(t, tr, topic, viaTopic)
	if err := b.Redeliver(ctx, topic, other, viaReplay); err != nil {
		t.Fatalf("Redeliver a marker to %s: %v", other, err)
	}
	handled.wait(t, "the other group", viaTopic.ID, 1)
	handled.wait(t, "the other group", viaReplay.ID, 1)
	if n := handled.count(m.ID); n != 1 {
		t.Fatalf("the other group handled the replayed message %d times, want once (the original only)", n)
	}
	failed.wait(t, "the group that failed", viaTopic.ID, 1)
	if n := failed.count(viaReplay.ID); n != 0 {
		t.Fatalf("a message redelivered to %s reached %s", other, failing)
	}
	if n := failed.count(m.ID); n != 1 {
		t.Fatalf("the group that failed handled the replay %d times, want 1", n)
	}
}
