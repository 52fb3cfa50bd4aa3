package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// letters records dead letters; failing makes Add fail that many times first.
type letters struct {
	mu      sync.Mutex
	got     []*dlq.Letter
	failing int
}

func (l *letters) Add(ctx context.Context, x *dlq.Letter) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failing > 0 {
		l.failing--
		return errors.New("store down")
	}
	l.got = append(l.got, x)
	return nil
}

func (l *letters) all() []*dlq.Letter {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*dlq.Letter(nil), l.got...)
}

func newBroker(t testing.TB) *memory.Broker {
	t.Helper()
	b, err := memory.NewBroker()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func msg(key string, n int) *handoff.Message {
	m := handoff.NewMessage("/test", "test.event", []byte(fmt.Sprintf(`{"n":%d}`, n)))
	m.PartitionKey = key
	return m
}

func publish(t testing.TB, p handoff.Publisher, topic string, msgs ...*handoff.Message) {
	t.Helper()
	if err := p.Publish(context.Background(), topic, msgs...); err != nil {
		t.Fatal(err)
	}
}

// start runs c until the returned stop is called; stop returns Run's error.
func start(t testing.TB, c *consumer.Consumer) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func mustNew(t testing.TB, sub handoff.Subscriber, h handoff.Handler, dead consumer.DeadLetterer, opts ...consumer.Option) *consumer.Consumer {
	t.Helper()
	c, err := consumer.New(sub, "orders", "billing", h, dead, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNew_RefusesBadConfiguration(t *testing.T) {
	b := newBroker(t)
	h := handoff.HandlerFunc(func(context.Context, *handoff.Message) error { return nil })
	dead := &letters{}
	cases := []struct {
		name string
		err  func() error
		want string
	}{
		{"no dead letters", func() error { _, err := consumer.New(b, "t", "g", h, nil); return err }, "dead-letter store is required"},
		{"no topic", func() error { _, err := consumer.New(b, "", "g", h, dead); return err }, "topic is required"},
		{"no group", func() error { _, err := consumer.New(b, "t", "", h, dead); return err }, "group is required"},
		{"the relay's name", func() error { _, err := consumer.New(b, "t", dlq.RelayConsumer, h, dead); return err }, "reserved"},
		{"zero workers", func() error { _, err := consumer.New(b, "t", "g", h, dead, consumer.WithWorkers(0)); return err }, "WithWorkers(0): must be ≥ 1"},
		{"backoff max below initial", func() error {
			_, err := consumer.New(b, "t", "g", h, dead, consumer.WithBackoff(time.Second, time.Millisecond))
			return err
		}, "must be ≥ initial"},
		// Options that could not take effect are refused, not ignored.
		{"batches for a handler that cannot batch", func() error {
			_, err := consumer.New(b, "t", "g", h, dead, consumer.WithBatchSize(8))
			return err
		}, "WithBatchSize(8): handler handoff.HandlerFunc does not implement handoff.BatchHandler"},
		{"redelivery grace when unordered", func() error {
			_, err := consumer.New(b, "t", "g", h, dead, consumer.WithUnordered(), consumer.WithRedeliveryGrace(time.Second))
			return err
		}, "WithRedeliveryGrace: has no effect with WithUnordered"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// Per-key order holds with many workers while some messages fail and are
// retried through the broker's delay: every message of a key is handled
// after all earlier messages of that key succeeded.
func TestConsumer_OrderPerKeyUnderConcurrencyAndRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t)
		const keys, per = 8, 40
		var mu sync.Mutex
		done := map[string][]int{}
		running := map[string]bool{}
		var attempts sync.Map
		var active, maxActive atomic.Int32
		h := consumer.JSON(func(ctx context.Context, m *handoff.Message, v struct{ N int }) error {
			mu.Lock()
			if running[m.PartitionKey] {
				mu.Unlock()
				t.Errorf("two messages of key %s handled at once", m.PartitionKey)
				return nil
			}
			running[m.PartitionKey] = true
			mu.Unlock()
			if n := active.Add(1); n > maxActive.Load() {
				maxActive.Store(n)
			}
			time.Sleep(time.Millisecond) // fake time: lets other keys overlap
			active.Add(-1)
			a, _ := attempts.LoadOrStore(m.ID, new(atomic.Int32))
			n := a.(*atomic.Int32).Add(1)
			mu.Lock()
			defer mu.Unlock()
			running[m.PartitionKey] = false
			if v.N%5 == 0 && n < 3 { // every fifth message fails twice
				return errors.New("transient")
			}
			done[m.PartitionKey] = append(done[m.PartitionKey], v.N)
			return nil
		})
		dead := &letters{}
		c := mustNew(t, b, h, dead, consumer.WithWorkers(6), consumer.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
		stop := start(t, c)
		for i := 0; i < per; i++ {
			for k := 0; k < keys; k++ {
				publish(t, b, "orders", msg(fmt.Sprintf("k%d", k), i))
			}
		}
		time.Sleep(10 * time.Second) // fake time: every retry is long due
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		for k := 0; k < keys; k++ {
			got := done[fmt.Sprintf("k%d", k)]
			if len(got) != per {
				t.Fatalf("key k%d: %d messages handled, want %d", k, len(got), per)
			}
			for i, n := range got {
				if n != i {
					t.Fatalf("key k%d: position %d handled message %d: out of order %v", k, i, n, got)
				}
			}
		}
		if len(dead.all()) != 0 {
			t.Fatalf("%d dead letters, want 0", len(dead.all()))
		}
		if maxActive.Load() < 2 {
			t.Fatalf("at most %d handlers ran at once; keys should run in parallel", maxActive.Load())
		}
	})
}

func TestConsumer_DeadLettersAfterLastAttemptWithChain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t)
		var calls atomic.Int32
		base := errors.New("card declined")
		h := handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
			calls.Add(1)
			return fmt.Errorf("charge %s: %w", m.ID, base)
		})
		dead := &letters{}
		c := mustNew(t, b, h, dead, consumer.WithMaxAttempts(3), consumer.WithBackoff(time.Second, time.Minute))
		start(t, c)
		m := msg("k", 1)
		m.Extensions = map[string]string{"tenant": "acme"}
		publish(t, b, "orders", m)
		time.Sleep(time.Hour)
		synctest.Wait()
		got := dead.all()
		if len(got) != 1 {
			t.Fatalf("%d dead letters, want 1", len(got))
		}
		l := got[0]
		if calls.Load() != 3 || l.Attempts != 3 {
			t.Fatalf("handler ran %d times, letter says %d attempts; want 3 and 3", calls.Load(), l.Attempts)
		}
		if l.Class != dlq.ClassHandler || l.Consumer != "billing" || l.Topic != "orders" {
			t.Fatalf("letter = class %q consumer %q topic %q", l.Class, l.Consumer, l.Topic)
		}
		if l.Message.ID != m.ID || l.Message.Extensions["tenant"] != "acme" || string(l.Message.Data) != string(m.Data) {
			t.Fatalf("letter lost the envelope: %+v", l.Message)
		}
		if len(l.Errors) < 2 || l.Errors[len(l.Errors)-1] != "card declined" {
			t.Fatalf("error chain = %q, want it to end with the cause", l.Errors)
		}
		if !l.FirstFailure.Before(l.LastFailure) {
			t.Fatalf("first failure %v not before last %v", l.FirstFailure, l.LastFailure)
		}
	})
}

func TestConsumer_DeadLettersAtOnce(t *testing.T) {
	cases := []struct {
		name  string
		h     handoff.Handler
		opts  []consumer.Option
		msg   func() *handoff.Message
		class string
		check func(t *testing.T, l *dlq.Letter)
	}{
		{
			name: "permanent error",
			h: handoff.HandlerFunc(func(context.Context, *handoff.Message) error {
				return handoff.Permanent(errors.New("no such customer"))
			}),
			msg:   func() *handoff.Message { return msg("k", 1) },
			class: dlq.ClassPermanent,
		},
		{
			name:  "panic",
			h:     handoff.HandlerFunc(func(context.Context, *handoff.Message) error { panic("nil map in pricing") }),
			msg:   func() *handoff.Message { return msg("k", 1) },
			class: dlq.ClassPanic,
			check: func(t *testing.T, l *dlq.Letter) {
				if !strings.Contains(l.Stack, "consumer_test.go") || !strings.Contains(l.Errors[0], "nil map in pricing") {
					t.Fatalf("panic letter lacks its stack or value: %q / %q", l.Errors, l.Stack)
				}
			},
		},
		{
			name: "unknown type",
			h: func() handoff.Handler {
				var mux consumer.Mux
				mux.On("order.placed", handoff.HandlerFunc(func(context.Context, *handoff.Message) error { return nil }))
				return &mux
			}(),
			msg:   func() *handoff.Message { return msg("k", 1) },
			class: dlq.ClassUnknownType,
		},
		{
			name: "oversize",
			h: handoff.HandlerFunc(func(context.Context, *handoff.Message) error {
				t.Error("handler ran on an oversize message")
				return nil
			}),
			opts: []consumer.Option{consumer.WithMaxMessageSize(200)},
			msg: func() *handoff.Message {
				m := msg("k", 1)
				m.Data = []byte(`"` + strings.Repeat("x", 300) + `"`)
				return m
			},
			class: dlq.ClassTooLarge,
		},
		{
			name:  "undecodable JSON data",
			h:     consumer.JSON(func(context.Context, *handoff.Message, struct{ N int }) error { return nil }),
			msg:   func() *handoff.Message { m := msg("k", 1); m.Data = []byte(`{"n":"one"}`); return m },
			class: dlq.ClassPermanent,
			check: func(t *testing.T, l *dlq.Letter) {
				// The error's type (json.UnmarshalTypeError) names the
				// root cause; the stored chain keeps it.
				if d := dlq.DefaultClassifier.ClassifyLetter(l); d.Cause != dlq.CauseSchema || d.Rule != "json.UnmarshalTypeError" {
					t.Fatalf("stored letter's cause = %s by %q, want %s; errors %q", d.Cause, d.Rule, dlq.CauseSchema, l.Errors)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBroker(t)
				dead := &letters{}
				c := mustNew(t, b, tc.h, dead, tc.opts...)
				start(t, c)
				m := tc.msg()
				publish(t, b, "orders", m)
				synctest.Wait()
				got := dead.all()
				if len(got) != 1 {
					t.Fatalf("%d dead letters, want 1", len(got))
				}
				if got[0].Class != tc.class || got[0].Attempts != 1 || got[0].Message.ID != m.ID {
					t.Fatalf("letter class %q attempts %d id %s; want %q, 1, %s", got[0].Class, got[0].Attempts, got[0].Message.ID, tc.class, m.ID)
				}
				if tc.check != nil {
					tc.check(t, got[0])
				}
			})
		})
	}
}

// fakeSub delivers crafted deliveries, like an adapter that could not decode
// a message, and records how each was settled.
type fakeSub struct {
	deliveries []*handoff.Delivery
	mu         sync.Mutex
	acked      []string
}

type fakeSettler struct {
	s  *fakeSub
	id string
}

func (f fakeSettler) Ack(context.Context) error {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	f.s.acked = append(f.s.acked, f.id)
	return nil
}
func (f fakeSettler) Retry(context.Context, time.Duration) error {
	return errors.New("unexpected retry")
}

func (f *fakeSub) Subscribe(ctx context.Context, s handoff.Subscription, deliver func(*handoff.Delivery)) error {
	for _, d := range f.deliveries {
		deliver(d)
	}
	<-ctx.Done()
	return nil
}

func TestConsumer_UndecodableAndInvalidAreDeadLettered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bad, err := handoff.NATSBinding.DecodeMap(map[string]string{"ce-id": "x1", "ce-type": "t", "ce-specversion": "1.0"}, []byte("{"))
		if err == nil {
			t.Fatal("decoding a message without source succeeded")
		}
		garbled := &handoff.Message{Data: []byte{0xff, 0x00}}
		f := &fakeSub{}
		f.deliveries = []*handoff.Delivery{
			{Message: bad, Err: err, Topic: "orders", Attempt: 1, Settler: fakeSettler{f, "x1"}},
			{Message: garbled, Err: errors.New("nats: header block truncated"), Topic: "orders", Attempt: 1, Settler: fakeSettler{f, "garbled"}},
		}
		h := handoff.HandlerFunc(func(context.Context, *handoff.Message) error {
			t.Error("handler ran on an undecodable message")
			return nil
		})
		dead := &letters{}
		start(t, mustNew(t, f, h, dead))
		synctest.Wait()
		got := dead.all()
		if len(got) != 2 {
			t.Fatalf("%d dead letters, want 2", len(got))
		}
		classes := map[string]bool{got[0].Class: true, got[1].Class: true}
		if !classes[dlq.ClassInvalid] || !classes[dlq.ClassDecode] {
			t.Fatalf("classes %v, want invalid and decode", classes)
		}
		for _, l := range got {
			if l.Message == nil || len(l.Message.Data) == 0 {
				t.Fatalf("letter lost the raw body: %+v", l)
			}
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.acked) != 2 {
			t.Fatalf("acked %v, want both acked after dead-lettering", f.acked)
		}
	})
}

// A dead-letter store outage does not lose the message: it is retried and
// dead-lettered once the store is back.
func TestConsumer_DeadLetterStoreOutageRetriesInstead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t)
		dead := &letters{failing: 2}
		h := handoff.HandlerFunc(func(context.Context, *handoff.Message) error { return handoff.Permanent(errors.New("bad")) })
		start(t, mustNew(t, b, h, dead, consumer.WithBackoff(time.Second, time.Second)))
		publish(t, b, "orders", msg("k", 1))
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := dead.all(); len(got) != 1 || got[0].Attempts != 3 {
			t.Fatalf("dead letters %d (attempts %v), want 1 stored on the third attempt", len(got), got)
		}
	})
}

// A message waiting for its retry holds back later messages of its key, and
// only those.
func TestConsumer_RetryHoldsBackItsKeyOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t)
		var mu sync.Mutex
		var order []string
		first := true
		h := handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
			mu.Lock()
			defer mu.Unlock()
			if m.PartitionKey == "a" && first {
				first = false
				return errors.New("try later")
			}
			order = append(order, m.PartitionKey+string(m.Data))
			return nil
		})
		start(t, mustNew(t, b, h, &letters{}, consumer.WithWorkers(1), consumer.WithBackoff(time.Minute, time.Minute)))
		publish(t, b, "orders", msg("a", 1), msg("a", 2), msg("b", 1))
		synctest.Wait()
		mu.Lock()
		if len(order) != 1 || order[0] != `b{"n":1}` {
			t.Fatalf("before a1's retry handled %v, want only b1", order)
		}
		mu.Unlock()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		want := []string{`b{"n":1}`, `a{"n":1}`, `a{"n":2}`}
		if fmt.Sprint(order) != fmt.Sprint(want) {
			t.Fatalf("handled %v, want %v", order, want)
		}
	})
}

// WithUnordered lets later messages of a key pass one waiting for its retry.
func TestConsumer_UnorderedDoesNotHoldBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t)
		var handled atomic.Int32
		first := atomic.Bool{}
		h := handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
			if string(m.Data) == `{"n":1}` && first.CompareAndSwap(false, true) {
				return errors.New("later")
			}
			handled.Add(1)
			return nil
		})
		start(t, mustNew(t, b, h, &letters{}, consumer.WithUnordered(), consumer.WithBackoff(time.Minute, time.Minute)))
		publish(t, b, "orders", msg("a", 1), msg("a", 2))
		synctest.Wait()
		if handled.Load() != 1 {
			t.Fatalf("handled %d before the retry, want a2 handled (1)", handled.Load())
		}
	})
}

// Shutdown drains: handlers already running finish and are acked; accepted
// messages not yet started are not acked and come back to the next run, so
// across two runs every message is handled exactly once.
func TestConsumer_ShutdownDrainsAndLosesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t)
		const n = 50
		var mu sync.Mutex
		count := map[string]int{}
		h := handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
			time.Sleep(10 * time.Millisecond)
			if ctx.Err() != nil {
				t.Errorf("handler context cancelled during drain")
			}
			mu.Lock()
			count[m.ID]++
			mu.Unlock()
			return nil
		})
		msgs := make([]*handoff.Message, n)
		for i := range msgs {
			msgs[i] = msg(fmt.Sprintf("k%d", i%3), i)
		}
		publish(t, b, "orders", msgs...)
		stop := start(t, mustNew(t, b, h, &letters{}, consumer.WithWorkers(3)))
		time.Sleep(35 * time.Millisecond) // fake time: a few handled, some running
		if err := stop(); err != nil {
			t.Fatalf("Run returned %v on cancel, want nil", err)
		}
		mu.Lock()
		partial := len(count)
		mu.Unlock()
		if partial == 0 || partial == n {
			t.Fatalf("first run handled %d of %d; the test needs a partial run", partial, n)
		}
		start(t, mustNew(t, b, h, &letters{}))
		time.Sleep(time.Minute) // fake time: the rest is handled
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			if count[m.ID] != 1 {
				t.Fatalf("message %s handled %d times, want exactly 1", m.ID, count[m.ID])
			}
		}
	})
}

// The process span continues the trace carried in the message.
func TestConsumer_ProcessSpanJoinsMessageTrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t)
		rec := tracetest.NewSpanRecorder()
		tp := trace.NewTracerProvider(trace.WithSpanProcessor(rec))
		h := handoff.HandlerFunc(func(context.Context, *handoff.Message) error { return nil })
		start(t, mustNew(t, b, h, &letters{}, consumer.WithTracerProvider(tp), consumer.WithSystem("memory")))
		m := msg("k", 1)
		m.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		publish(t, b, "orders", m)
		synctest.Wait()
		spans := rec.Ended()
		if len(spans) != 1 {
			t.Fatalf("%d spans, want 1", len(spans))
		}
		s := spans[0]
		if s.Name() != "process orders" || s.Parent().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" ||
			s.Parent().SpanID().String() != "00f067aa0ba902b7" {
			t.Fatalf("span %q parent %v; want process orders under the message's trace", s.Name(), s.Parent())
		}
		attrs := map[string]string{}
		for _, a := range s.Attributes() {
			attrs[string(a.Key)] = a.Value.Emit()
		}
		if attrs["messaging.message.id"] != m.ID || attrs["messaging.consumer.group.name"] != "billing" || attrs["messaging.system"] != "memory" {
			t.Fatalf("span attributes %v", attrs)
		}
	})
}
