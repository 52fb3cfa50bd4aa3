package handofftest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
)

type noDeadLetters struct{ t testing.TB }

func (n noDeadLetters) Add(ctx context.Context, l *dlq.Letter) error {
	n.t.Errorf("unexpected dead letter %s for %s: %v", l.Class, l.Message.ID, l.Errors)
	return nil
}

// testConsumerOrder runs the consumer runtime over the transport with several
// workers; some messages fail their first attempts and go through the
// broker's delayed redelivery. Every key's messages must still be handled in
// publish order, each exactly once after its failures.
func testConsumerOrder(t *testing.T, tr Transport) {
	topic, group := names("corder")
	if p, ok := tr.Subscriber.(Provisioner); ok {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		if err := p.Provision(ctx, handoff.Subscription{Topic: topic, Group: group}); err != nil {
			t.Fatal(err)
		}
	}
	const keys, per = 4, 25
	var mu sync.Mutex
	handled := map[string][]int{}
	failures := map[string]int{}
	all := make(chan struct{})
	total := 0
	h := handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
		var v struct{ N int }
		if err := json.Unmarshal(m.Data, &v); err != nil {
			return handoff.Permanent(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if v.N%4 == 1 && failures[m.ID] < 2 { // a quarter of the messages fail twice
			failures[m.ID]++
			return errors.New("transient")
		}
		handled[m.PartitionKey] = append(handled[m.PartitionKey], v.N)
		total++
		if total == keys*per {
			close(all)
		}
		return nil
	})
	c, err := consumer.New(tr.Subscriber, topic, group, h, noDeadLetters{t},
		consumer.WithWorkers(4), consumer.WithBackoff(5*time.Millisecond, 50*time.Millisecond),
		consumer.WithRedeliveryGrace(Timeout), consumer.WithMaxAttempts(10))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("consumer Run: %v", err)
		}
	}()
	for i := 0; i < per; i++ {
		batch := make([]*handoff.Message, 0, keys)
		for k := 0; k < keys; k++ {
			batch = append(batch, Msg(fmt.Sprintf("key-%d", k), i))
		}
		publish(t, tr, topic, batch...)
	}
	select {
	case <-all:
	case <-time.After(3 * Timeout):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("only %d of %d messages handled: %v", total, keys*per, handled)
	}
	mu.Lock()
	defer mu.Unlock()
	for k, ns := range handled {
		for i, n := range ns {
			if n != i {
				t.Fatalf("%s handled out of order: %v", k, ns)
			}
		}
	}
}
