package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
)

// batcher is a BatchHandler recording batch sizes and handled order; fail
// decides a message's result on its first attempt.
type batcher struct {
	mu      sync.Mutex
	sizes   []int
	order   map[string][]string
	tries   map[string]int
	fail    func(m *handoff.Message, try int) error
	panicOn string
}

func newBatcher() *batcher {
	return &batcher{order: map[string][]string{}, tries: map[string]int{}}
}

func (b *batcher) one(m *handoff.Message) error {
	b.tries[m.ID]++
	if b.fail != nil {
		if err := b.fail(m, b.tries[m.ID]); err != nil {
			return err
		}
	}
	b.order[m.PartitionKey] = append(b.order[m.PartitionKey], string(m.Data))
	return nil
}

func (b *batcher) Handle(ctx context.Context, m *handoff.Message) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if string(m.Data) == b.panicOn {
		panic("bad message " + m.ID)
	}
	return b.one(m)
}

func (b *batcher) HandleBatch(ctx context.Context, msgs []*handoff.Message) []error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sizes = append(b.sizes, len(msgs))
	keys := map[string]bool{}
	for _, m := range msgs {
		if keys[m.PartitionKey] {
			panic("two messages of key " + m.PartitionKey + " in one batch")
		}
		keys[m.PartitionKey] = true
		if string(m.Data) == b.panicOn {
			panic("bad message in batch")
		}
	}
	errs := make([]error, len(msgs))
	for i, m := range msgs {
		errs[i] = b.one(m)
	}
	return errs
}

func TestConsumer_BatchesKeepOrderAndSettleEachMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := newBroker(t)
		h := newBatcher()
		h.fail = func(m *handoff.Message, try int) error {
			if string(m.Data) == `{"n":3}` && m.PartitionKey == "k2" && try == 1 {
				return errors.New("transient")
			}
			return nil
		}
		const keys, per = 20, 10
		var msgs []*handoff.Message
		for i := 0; i < per; i++ {
			for k := 0; k < keys; k++ {
				msgs = append(msgs, msg(fmt.Sprintf("k%d", k), i))
			}
		}
		publish(t, br, "orders", msgs...)
		dead := &letters{}
		start(t, mustNew(t, br, h, dead, consumer.WithWorkers(2), consumer.WithBatchSize(8), consumer.WithBackoff(time.Second, time.Second)))
		time.Sleep(time.Minute)
		synctest.Wait()
		h.mu.Lock()
		defer h.mu.Unlock()
		big := 0
		for _, n := range h.sizes {
			if n > 8 {
				t.Fatalf("a batch of %d, over the limit of 8", n)
			}
			if n > 1 {
				big++
			}
		}
		if big == 0 {
			t.Fatalf("no batch of more than one message formed: %v", h.sizes)
		}
		for k := 0; k < keys; k++ {
			got := h.order[fmt.Sprintf("k%d", k)]
			if len(got) != per {
				t.Fatalf("key k%d handled %d messages, want %d", k, len(got), per)
			}
			for i, d := range got {
				if d != fmt.Sprintf(`{"n":%d}`, i) {
					t.Fatalf("key k%d out of order: %v", k, got)
				}
			}
		}
		if len(dead.all()) != 0 {
			t.Fatalf("dead letters: %v", dead.all())
		}
	})
}

// A panic inside a batch rolls the batch back; the messages are handled one
// at a time, so only the culprit is dead-lettered.
func TestConsumer_PanicInBatchDeadLettersOnlyTheCulprit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := newBroker(t)
		h := newBatcher()
		h.panicOn = `{"n":1}`
		var msgs []*handoff.Message
		for k := 0; k < 6; k++ {
			msgs = append(msgs, msg(fmt.Sprintf("k%d", k), k))
		}
		publish(t, br, "orders", msgs...)
		dead := &letters{}
		start(t, mustNew(t, br, h, dead, consumer.WithWorkers(1), consumer.WithBatchSize(6)))
		synctest.Wait()
		ls := dead.all()
		if len(ls) != 1 || ls[0].Class != dlq.ClassPanic || string(ls[0].Message.Data) != `{"n":1}` {
			t.Fatalf("dead letters %+v, want only the panicking message", ls)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		handled := 0
		for _, v := range h.order {
			handled += len(v)
		}
		if handled != 5 {
			t.Fatalf("%d messages handled, want the 5 others", handled)
		}
	})
}

// A Mux batches: each route's messages of a batch go to its handler
// together when the handler batches, one at a time when it does not, and a
// type without a route is dead-lettered, all settled by their own results.
func TestMux_BatchesPerRoute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br := newBroker(t)
		batching := newBatcher()
		var mu sync.Mutex
		plain := 0
		var mux consumer.Mux
		mux.On("test.event", batching)
		mux.On("test.other", handoff.HandlerFunc(func(context.Context, *handoff.Message) error {
			mu.Lock()
			plain++
			mu.Unlock()
			return nil
		}))
		var msgs []*handoff.Message
		for k := range 12 {
			m := msg(fmt.Sprintf("k%d", k), k)
			switch k % 3 {
			case 1:
				m.Type = "test.other"
			case 2:
				if k == 5 {
					m.Type = "test.unknown"
				}
			}
			msgs = append(msgs, m)
		}
		publish(t, br, "orders", msgs...)
		dead := &letters{}
		start(t, mustNew(t, br, &mux, dead, consumer.WithWorkers(1), consumer.WithBatchSize(12)))
		synctest.Wait()
		batching.mu.Lock()
		defer batching.mu.Unlock()
		// A route's share of a batch that is one message goes to Handle,
		// so what was handled is counted from the handler's record, and
		// the batch sizes show that some went together.
		handled, big := 0, 0
		for _, v := range batching.order {
			handled += len(v)
		}
		for _, n := range batching.sizes {
			if n > 1 {
				big++
			}
		}
		if handled != 7 || big == 0 {
			t.Errorf("the batching route handled %d messages in batches %v, want 7 with a batch of more than one", handled, batching.sizes)
		}
		mu.Lock()
		defer mu.Unlock()
		if plain != 4 {
			t.Errorf("the plain route handled %d messages, want 4", plain)
		}
		if ls := dead.all(); len(ls) != 1 || ls[0].Class != dlq.ClassUnknownType || ls[0].Message.Type != "test.unknown" {
			t.Errorf("dead letters %+v, want the one unknown-type message", ls)
		}
	})
}

func TestMux_HandleBatchKeepsTheOrderOfResults(t *testing.T) {
	var mux consumer.Mux
	boom := errors.New("boom")
	mux.On("a", handoff.HandlerFunc(func(_ context.Context, m *handoff.Message) error {
		if string(m.Data) == "2" {
			return boom
		}
		return nil
	}))
	mux.On("b", newBatcher())
	var msgs []*handoff.Message
	for i, typ := range []string{"a", "b", "a", "x", "b"} {
		m := handoff.NewMessage("/s", typ, []byte(fmt.Sprint(i)))
		m.PartitionKey = fmt.Sprint(i)
		msgs = append(msgs, m)
	}
	errs := mux.HandleBatch(context.Background(), msgs)
	if len(errs) != 5 || errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], boom) ||
		!errors.Is(errs[3], consumer.ErrUnknownType) || !handoff.IsPermanent(errs[3]) || errs[4] != nil {
		t.Fatalf("results %v, want [nil nil boom unknown-type nil]", errs)
	}
}

// gatedSub delivers first alone, then rest, and answers each Ack only once
// every delivery of its group has called Ack (or after a minute, noting a
// failure): acks of one batch that were made one after the other would
// each wait out the minute.
type gatedSub struct {
	first *handoff.Message
	rest  []*handoff.Message
	held  chan struct{} // closed by the test once first is being handled

	mu      sync.Mutex
	calls   map[*gate]int
	late    []string
	settled int
}

type gate struct {
	size int
	all  chan struct{}
}

type gatedSettler struct {
	s  *gatedSub
	g  *gate
	id string
}

func (st gatedSettler) Ack(ctx context.Context) error {
	s := st.s
	s.mu.Lock()
	s.calls[st.g]++
	if s.calls[st.g] == st.g.size {
		close(st.g.all)
	}
	s.mu.Unlock()
	select {
	case <-st.g.all:
	case <-time.After(time.Minute):
		s.mu.Lock()
		s.late = append(s.late, st.id)
		s.mu.Unlock()
	}
	s.mu.Lock()
	s.settled++
	s.mu.Unlock()
	return nil
}

func (st gatedSettler) Retry(context.Context, time.Duration) error {
	return errors.New("unexpected retry of " + st.id)
}

func (s *gatedSub) Subscribe(ctx context.Context, sub handoff.Subscription, deliver func(*handoff.Delivery)) error {
	one := &gate{size: 1, all: make(chan struct{})}
	deliver(&handoff.Delivery{Topic: sub.Topic, Attempt: 1, Message: s.first, Settler: gatedSettler{s, one, s.first.ID}})
	<-s.held
	g := &gate{size: len(s.rest), all: make(chan struct{})}
	for _, m := range s.rest {
		deliver(&handoff.Delivery{Topic: sub.Topic, Attempt: 1, Message: m, Settler: gatedSettler{s, g, m.ID}})
	}
	<-ctx.Done()
	return nil
}

// holdFirst is a BatchHandler that holds first (handled alone) until release
// is closed, recording the sizes of the batches it saw.
type holdFirst struct {
	first   string
	held    chan struct{}
	release chan struct{}
	mu      sync.Mutex
	sizes   []int
}

func (h *holdFirst) Handle(ctx context.Context, m *handoff.Message) error {
	return h.HandleBatch(ctx, []*handoff.Message{m})[0]
}

func (h *holdFirst) HandleBatch(ctx context.Context, msgs []*handoff.Message) []error {
	h.mu.Lock()
	h.sizes = append(h.sizes, len(msgs))
	h.mu.Unlock()
	if len(msgs) == 1 && msgs[0].ID == h.first {
		close(h.held)
		<-h.release
	}
	return make([]error, len(msgs))
}

// The messages of one batch are settled at once: a batch costs one broker
// round trip to settle, not one per message. (The settler here answers an
// Ack only once all acks of its batch were asked for.)
func TestConsumer_SettlesABatchAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		first := msg("k0", 0)
		var rest []*handoff.Message
		for k := 1; k <= 4; k++ {
			rest = append(rest, msg(fmt.Sprintf("k%d", k), k))
		}
		h := &holdFirst{first: first.ID, held: make(chan struct{}), release: make(chan struct{})}
		sub := &gatedSub{first: first, rest: rest, held: h.held, calls: map[*gate]int{}}
		start(t, mustNew(t, sub, h, &letters{}, consumer.WithWorkers(1), consumer.WithBatchSize(8)))
		<-h.held
		synctest.Wait() // the four others are queued behind the busy worker
		close(h.release)
		time.Sleep(10 * time.Minute) // long enough for acks made one at a time to time out
		synctest.Wait()
		h.mu.Lock()
		sizes := append([]int(nil), h.sizes...)
		h.mu.Unlock()
		if len(sizes) != 2 || sizes[0] != 1 || sizes[1] != 4 {
			t.Fatalf("batch sizes %v, want [1 4]", sizes)
		}
		sub.mu.Lock()
		defer sub.mu.Unlock()
		if sub.settled != 5 {
			t.Fatalf("%d deliveries settled, want 5", sub.settled)
		}
		if len(sub.late) > 0 {
			t.Fatalf("acks of one batch waited for one another: %v", sub.late)
		}
	})
}
