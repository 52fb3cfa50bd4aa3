package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/handofftest"
	"github.com/handoffhq/handoff/internal/testenv"
)

const wait = 20 * time.Second

// newBroker returns a Broker on a unique name prefix; every queue and
// exchange it declared is deleted at cleanup.
func newBroker(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	url := testenv.RabbitMQURL(t)
	b, err := New(url, append([]Option{WithPrefix(testenv.Unique("ht") + ".")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close()
		conn, err := amqp.Dial(url)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		b.tmu.Lock()
		defer b.tmu.Unlock()
		for q := range b.queues {
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				t.Errorf("cleanup: delete queue %s: %v", q, err)
				return
			}
		}
		for ex := range b.exchanges {
			if err := ch.ExchangeDelete(ex, false, false); err != nil {
				t.Errorf("cleanup: delete exchange %s: %v", ex, err)
				return
			}
		}
	})
	return b
}

// inspector opens a channel for looking at queue depths.
func inspector(t testing.TB) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(testenv.RabbitMQURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// depth is the number of ready messages in q.
func depth(t testing.TB, ch *amqp.Channel, q string) int {
	t.Helper()
	qi, err := ch.QueueInspect(q)
	if err != nil {
		t.Fatalf("inspect %s: %v", q, err)
	}
	return qi.Messages
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type subscription struct {
	ch   chan *handoff.Delivery
	stop func()
}

func subscribe(t testing.TB, b *Broker, sub handoff.Subscription) *subscription {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan *handoff.Delivery, 1000)
	done := make(chan error, 1)
	go func() { done <- b.Subscribe(ctx, sub, func(d *handoff.Delivery) { ch <- d }) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Subscribe returned %v, want nil", err)
				}
			case <-time.After(wait):
				t.Errorf("Subscribe did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return &subscription{ch: ch, stop: stop}
}

func (s *subscription) next(t testing.TB) *handoff.Delivery {
	t.Helper()
	select {
	case d := <-s.ch:
		return d
	case <-time.After(wait):
		t.Fatal("no delivery in time")
		return nil
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func provision(t testing.TB, b *Broker, sub handoff.Subscription) names {
	t.Helper()
	if err := b.Provision(ctxT(t), sub); err != nil {
		t.Fatal(err)
	}
	n, err := b.names(sub)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestConformance(t *testing.T) {
	const limit = 64 << 10
	handofftest.RunTransport(t, func(t testing.TB) handofftest.Transport {
		b := newBroker(t, WithMaxMessageSize(limit))
		return handofftest.Transport{
			Publisher:  b,
			Subscriber: b,
			// The server cannot be restarted from here: drop the adapter's
			// publishing connection instead, so the next call reconnects.
			Restart: func(t testing.TB) { b.restartPublisher() },
		}
	}, handofftest.Features{Ordered: true, Durable: true, Groups: true, MaxMessageSize: limit})
}

func TestRetry_GoesThroughDelayQueueWithNextAttempt(t *testing.T) {
	b := newBroker(t)
	sub := handoff.Subscription{Topic: "orders", Group: "billing"}
	n := provision(t, b, sub)
	s := subscribe(t, b, sub)
	insp := inspector(t)
	m := handofftest.Msg("k", 1)
	if err := b.Publish(ctxT(t), sub.Topic, m); err != nil {
		t.Fatal(err)
	}
	d := s.next(t)
	if d.Attempt != 1 {
		t.Fatalf("first Attempt = %d, want 1", d.Attempt)
	}
	const delay = 2500 * time.Millisecond // bucket 2560ms
	if err := d.Settler.Retry(ctxT(t), delay); err != nil {
		t.Fatal(err)
	}
	// Retry returned after the copy's confirm: it sits in the delay queue.
	dq := b.delayQueue(delayBucket(delay))
	if got := depth(t, insp, dq); got != 1 {
		t.Fatalf("delay queue %s holds %d messages right after Retry, want 1", dq, got)
	}
	d2 := s.next(t)
	if d2.Message.ID != m.ID || d2.Attempt != 2 || d2.Err != nil {
		t.Fatalf("redelivery: id %s attempt %d err %v, want %s attempt 2", d2.Message.ID, d2.Attempt, d2.Err, m.ID)
	}
	if got := depth(t, insp, dq); got != 0 {
		t.Fatalf("delay queue holds %d messages after the redelivery, want 0", got)
	}
	// A zero delay goes straight to the retry queue.
	if err := d2.Settler.Retry(ctxT(t), 0); err != nil {
		t.Fatal(err)
	}
	d3 := s.next(t)
	if d3.Message.ID != m.ID || d3.Attempt != 3 {
		t.Fatalf("second redelivery: id %s attempt %d, want %s attempt 3", d3.Message.ID, d3.Attempt, m.ID)
	}
	if err := d3.Settler.Ack(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := d3.Settler.Ack(ctxT(t)); !errors.Is(err, ErrSettled) {
		t.Fatalf("second Ack = %v, want ErrSettled", err)
	}
	if got := depth(t, insp, n.queue) + depth(t, insp, n.retry); got != 0 {
		t.Fatalf("%d messages left after the final ack", got)
	}
}

func TestRetry_DeliveredWhileMainWindowIsFull(t *testing.T) {
	b := newBroker(t)
	sub := handoff.Subscription{Topic: "orders", Group: "billing", MaxInFlight: 2}
	n := provision(t, b, sub)
	s := subscribe(t, b, sub)
	insp := inspector(t)
	msgs := []*handoff.Message{handofftest.Msg("a", 1), handofftest.Msg("b", 2), handofftest.Msg("c", 3), handofftest.Msg("d", 4)}
	if err := b.Publish(ctxT(t), sub.Topic, msgs...); err != nil {
		t.Fatal(err)
	}
	first := s.next(t)
	second := s.next(t)
	if first.Message.ID != msgs[0].ID || second.Message.ID != msgs[1].ID {
		t.Fatalf("got %s, %s; want a, b", first.Message.ID, second.Message.ID)
	}
	// Retrying a frees its slot: c comes, and with b and c held the window is
	// full again while d is still ready in the main queue. The redelivery of a
	// must come anyway (through the retry queue's own consumer).
	if err := first.Settler.Retry(ctxT(t), 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var third *handoff.Delivery
	var redelivered *handoff.Delivery
	for redelivered == nil || third == nil {
		d := s.next(t)
		switch d.Message.ID {
		case msgs[0].ID:
			redelivered = d
		case msgs[2].ID:
			third = d
		default:
			t.Fatalf("delivered %s (%s) while the window was full", d.Message.ID, d.Message.PartitionKey)
		}
	}
	if redelivered.Attempt != 2 {
		t.Fatalf("redelivery Attempt = %d, want 2", redelivered.Attempt)
	}
	if got := depth(t, insp, n.queue); got != 1 {
		t.Fatalf("main queue has %d ready messages, want 1 (d, held back by the prefetch window)", got)
	}
	for _, d := range []*handoff.Delivery{redelivered, second, third} {
		if err := d.Settler.Ack(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	if d := s.next(t); d.Message.ID != msgs[3].ID {
		t.Fatalf("got %s, want d", d.Message.ID)
	}
}

func TestSubscribe_RespectsMaxInFlight(t *testing.T) {
	b := newBroker(t)
	sub := handoff.Subscription{Topic: "orders", Group: "billing", MaxInFlight: 3}
	n := provision(t, b, sub)
	s := subscribe(t, b, sub)
	insp := inspector(t)
	var msgs []*handoff.Message
	for i := range 10 {
		msgs = append(msgs, handofftest.Msg("k", i))
	}
	if err := b.Publish(ctxT(t), sub.Topic, msgs...); err != nil {
		t.Fatal(err)
	}
	var got []*handoff.Delivery
	for range 3 {
		got = append(got, s.next(t))
	}
	// Seven ready in the queue means three are out, unacked, and the broker
	// will send no more: nothing else may have been delivered.
	eventually(t, "7 ready messages", func() bool { return depth(t, insp, n.queue) == 7 })
	if len(s.ch) != 0 {
		t.Fatalf("%d deliveries beyond MaxInFlight", len(s.ch))
	}
	if err := got[0].Settler.Ack(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if d := s.next(t); d.Message.ID != msgs[3].ID {
		t.Fatalf("after one ack got %s, want the 4th message", d.Message.ID)
	}
}

func TestPublish_ReturnsAfterEveryConfirm(t *testing.T) {
	b := newBroker(t)
	sub := handoff.Subscription{Topic: "orders", Group: "billing"}
	n := provision(t, b, sub)
	insp := inspector(t)
	const total = 1500 // crosses the confirm window
	msgs := make([]*handoff.Message, total)
	for i := range msgs {
		msgs[i] = handofftest.Msg(fmt.Sprintf("k%d", i%5), i)
	}
	if err := b.Publish(ctxT(t), sub.Topic, msgs...); err != nil {
		t.Fatal(err)
	}
	if got := depth(t, insp, n.queue); got != total {
		t.Fatalf("queue holds %d messages right after Publish returned, want %d", got, total)
	}
}

func TestPublish_ConcurrentCallsAreSafe(t *testing.T) {
	b := newBroker(t, WithPublishChannels(2))
	sub := handoff.Subscription{Topic: "orders", Group: "billing"}
	n := provision(t, b, sub)
	insp := inspector(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if err := b.Publish(context.Background(), sub.Topic, handofftest.Msg(fmt.Sprint(g), i), handofftest.Msg(fmt.Sprint(g), i+100)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := depth(t, insp, n.queue); got != 160 {
		t.Fatalf("queue holds %d, want 160", got)
	}
}

func TestPublish_UnroutableIsAnError(t *testing.T) {
	b := newBroker(t)
	m := handofftest.Msg("k", 1)
	err := b.Publish(ctxT(t), "nobody", m)
	if !errors.Is(err, ErrUnroutable) || !strings.Contains(err.Error(), m.ID) {
		t.Fatalf("Publish to a topic without groups = %v, want ErrUnroutable naming %s", err, m.ID)
	}
	// The publisher stays usable, and once a group exists the same message goes through.
	sub := handoff.Subscription{Topic: "nobody", Group: "late"}
	provision(t, b, sub)
	if err := b.Publish(ctxT(t), sub.Topic, m); err != nil {
		t.Fatalf("Publish after Provision: %v", err)
	}
	s := subscribe(t, b, sub)
	if d := s.next(t); d.Message.ID != m.ID {
		t.Fatalf("got %s, want %s", d.Message.ID, m.ID)
	}
}

func TestPublish_RefusesInvalidAndOversizeBeforeSending(t *testing.T) {
	b := newBroker(t, WithMaxMessageSize(1000))
	sub := handoff.Subscription{Topic: "orders", Group: "billing"}
	n := provision(t, b, sub)
	insp := inspector(t)
	big := handofftest.Msg("k", 1)
	big.Data = []byte(`"` + strings.Repeat("x", 2000) + `"`)
	longType := handofftest.Msg("k", 2)
	longType.Type = strings.Repeat("t", 256)
	for _, m := range []*handoff.Message{big, longType} {
		err := b.Publish(ctxT(t), sub.Topic, handofftest.Msg("k", 0), m)
		var ve *handoff.ValidationError
		if !errors.As(err, &ve) || ve.ID != m.ID {
			t.Fatalf("Publish = %v, want a ValidationError for %s", err, m.ID)
		}
	}
	if got := depth(t, insp, n.queue); got != 0 {
		t.Fatalf("%d messages published from refused calls", got)
	}
	for _, name := range []string{"", "a/b"} {
		if err := b.Publish(ctxT(t), name, handofftest.Msg("k", 1)); !errors.Is(err, ErrName) {
			t.Fatalf("Publish to topic %q = %v, want ErrName", name, err)
		}
	}
}

func TestGroup_StandbyTakesOverInKeyOrder(t *testing.T) {
	b := newBroker(t)
	sub := handoff.Subscription{Topic: "orders", Group: "billing"}
	provision(t, b, sub)
	active := subscribe(t, b, sub)
	warm := handofftest.Msg("w", 0)
	if err := b.Publish(ctxT(t), sub.Topic, warm); err != nil {
		t.Fatal(err)
	}
	if d := active.next(t); d.Message.ID != warm.ID {
		t.Fatalf("got %s, want the warm-up message", d.Message.ID)
	} else if err := d.Settler.Ack(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	standby := subscribe(t, b, sub) // the first member holds the lease
	var msgs []*handoff.Message
	for i := range 10 {
		msgs = append(msgs, handofftest.Msg(fmt.Sprintf("key-%d", i%2), i))
	}
	if err := b.Publish(ctxT(t), sub.Topic, msgs...); err != nil {
		t.Fatal(err)
	}
	// The active member gets all ten (its prefetch is larger); it acks the
	// first three and leaves the rest unsettled.
	for i := range msgs {
		d := active.next(t)
		if d.Message.ID != msgs[i].ID {
			t.Fatalf("active member: position %d got %s, want %s", i, d.Message.ID, msgs[i].ID)
		}
		if i < 3 {
			if err := d.Settler.Ack(ctxT(t)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(standby.ch) != 0 {
		t.Fatalf("standby member received %d messages while the other was active", len(standby.ch))
	}
	active.stop()
	got := map[string][]string{}
	for range msgs[3:] {
		d := standby.next(t)
		if d.Attempt != 2 {
			t.Errorf("%s: Attempt = %d after the active member stopped, want 2", d.Message.ID, d.Attempt)
		}
		got[d.Message.PartitionKey] = append(got[d.Message.PartitionKey], d.Message.ID)
		if err := d.Settler.Ack(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]string{}
	for _, m := range msgs[3:] {
		want[m.PartitionKey] = append(want[m.PartitionKey], m.ID)
	}
	for k := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(want[k]) {
			t.Fatalf("key %s after takeover: got %v, want %v", k, got[k], want[k])
		}
	}
}

func TestSubscribe_UndecodableDeliveredWithErr(t *testing.T) {
	b := newBroker(t)
	sub := handoff.Subscription{Topic: "orders", Group: "billing"}
	n := provision(t, b, sub)
	s := subscribe(t, b, sub)
	ch := inspector(t)
	bodies := []struct {
		name    string
		headers amqp.Table
	}{
		{"no attributes", amqp.Table{}},
		{"bad time", amqp.Table{"cloudEvents:id": "x2", "cloudEvents:source": "/s", "cloudEvents:type": "t",
			"cloudEvents:specversion": "1.0", "cloudEvents:time": "yesterday"}},
	}
	for i, c := range bodies {
		err := ch.Publish(n.exchange, "t", false, false, amqp.Publishing{Headers: c.headers, MessageId: fmt.Sprintf("raw-%d", i), Body: []byte(c.name)})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range bodies {
		d := s.next(t)
		if d.Err == nil {
			t.Fatalf("%s: delivered without Err", c.name)
		}
		if string(d.Message.Data) != c.name || d.Message.ID == "" {
			t.Fatalf("%s: Message = %+v, want the body and an id", c.name, d.Message)
		}
		if err := d.Settler.Ack(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSubscribe_ReconnectsAfterConnectionLoss(t *testing.T) {
	b := newBroker(t, WithReconnectMaxDelay(200*time.Millisecond))
	var mu sync.Mutex
	var conns []net.Conn
	b.onDial = func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	sub := handoff.Subscription{Topic: "orders", Group: "billing"}
	provision(t, b, sub)
	s := subscribe(t, b, sub)
	m1 := handofftest.Msg("k", 1)
	if err := b.Publish(ctxT(t), sub.Topic, m1); err != nil {
		t.Fatal(err)
	}
	d1 := s.next(t)
	// Cut every TCP connection of the adapter (publisher and subscriber).
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
	again := s.next(t)
	if again.Message.ID != m1.ID || again.Attempt != 2 {
		t.Fatalf("after reconnect got %s attempt %d, want %s attempt 2", again.Message.ID, again.Attempt, m1.ID)
	}
	if err := d1.Settler.Ack(ctxT(t)); !errors.Is(err, ErrStale) {
		t.Fatalf("Ack on the dead channel = %v, want ErrStale", err)
	}
	if err := again.Settler.Ack(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	m2 := handofftest.Msg("k", 2)
	if err := b.Publish(ctxT(t), sub.Topic, m2); err != nil {
		t.Fatalf("Publish after the connection loss: %v", err)
	}
	if d := s.next(t); d.Message.ID != m2.ID {
		t.Fatalf("got %s, want %s", d.Message.ID, m2.ID)
	}
}

func TestNew_ValidatesOptions(t *testing.T) {
	for _, c := range []struct {
		name string
		url  string
		opt  Option
	}{
		{"bad url", "http://x", nil},
		{"reserved prefix", "amqp://localhost/", WithPrefix("amq.x")},
		{"negative size", "amqp://localhost/", WithMaxMessageSize(-1)},
		{"no channels", "amqp://localhost/", WithPublishChannels(0)},
		{"nil logger", "amqp://localhost/", WithLogger(nil)},
		{"tiny reconnect", "amqp://localhost/", WithReconnectMaxDelay(time.Microsecond)},
		{"empty name", "amqp://localhost/", WithConnectionName("")},
	} {
		t.Run(c.name, func(t *testing.T) {
			var opts []Option
			if c.opt != nil {
				opts = append(opts, c.opt)
			}
			if _, err := New(c.url, opts...); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}

func TestDelayBucket(t *testing.T) {
	for _, c := range []struct {
		in   time.Duration
		want int64
	}{
		{0, 1}, {time.Microsecond, 1}, {time.Millisecond, 1}, {7 * time.Millisecond, 7},
		{8 * time.Millisecond, 8}, {9 * time.Millisecond, 10}, {15 * time.Millisecond, 16},
		{50 * time.Millisecond, 56}, {time.Second, 1024}, {2500 * time.Millisecond, 2560},
		{time.Minute, 65536}, {MaxRetryDelay, 1 << 31},
	} {
		got := delayBucket(c.in)
		if got != c.want {
			t.Errorf("delayBucket(%v) = %d, want %d", c.in, got, c.want)
		}
		if ms := int64(c.in / time.Millisecond); got < ms || (ms > 8 && float64(got) >= 1.25*float64(ms)) {
			t.Errorf("delayBucket(%v) = %d: not in [d, 1.25d)", c.in, got)
		}
	}
}

func TestAttemptOf(t *testing.T) {
	for _, c := range []struct {
		h    amqp.Table
		want int
	}{
		{nil, 1},
		{amqp.Table{AttemptHeader: int32(3)}, 3},
		{amqp.Table{AttemptHeader: int64(4)}, 4},
		{amqp.Table{AttemptHeader: "5"}, 5},
		{amqp.Table{AttemptHeader: "junk"}, 1},
		{amqp.Table{AttemptHeader: int32(0)}, 1},
		{amqp.Table{"x-delivery-count": int64(2)}, 3},
		{amqp.Table{AttemptHeader: int32(3), "x-delivery-count": int64(1)}, 4},
	} {
		if got := attemptOf(c.h); got != c.want {
			t.Errorf("attemptOf(%v) = %d, want %d", c.h, got, c.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"a":1}`), "id1", "/src", "t", "1.0", "2026-11-22T10:30:00Z", "application/json", "k")
	f.Add([]byte{0xff}, "", "", "", "", "not a time", "", "")
	f.Fuzz(func(t *testing.T, body []byte, id, source, typ, spec, tm, ct, key string) {
		d := amqp.Delivery{
			Headers: amqp.Table{"cloudEvents:id": id, "cloudEvents:source": source, "cloudEvents:type": typ,
				"cloudEvents:specversion": spec, "cloudEvents:time": tm, "cloudEvents:partitionkey": key, "other": int32(1)},
			ContentType: ct, MessageId: "mid", Body: body,
		}
		m, err := decode(d)
		if m == nil || string(m.Data) != string(body) {
			t.Fatalf("decode lost the body: %+v", m)
		}
		if err == nil {
			if verr := m.Validate(); verr != nil {
				t.Fatalf("decode returned no error for an invalid message: %v", verr)
			}
			// A decoded message survives a round trip through publishing.
			p := publishing(m)
			back, err := decode(amqp.Delivery{Headers: p.Headers, ContentType: p.ContentType, MessageId: p.MessageId, Body: p.Body})
			if err != nil || back.ID != m.ID || back.PartitionKey != m.PartitionKey || !back.Time.Equal(m.Time) {
				t.Fatalf("round trip: %+v, %v; want %+v", back, err, m)
			}
		} else if m.ID == "" {
			t.Fatalf("undecodable message without an id: %v", err)
		}
	})
}

// BenchmarkPublish publishes batches of 100 messages, each call waiting for
// all confirms from a quorum queue.
func BenchmarkPublish(b *testing.B) {
	br := newBroker(b)
	sub := handoff.Subscription{Topic: "bench", Group: "g"}
	provision(b, br, sub)
	msgs := make([]*handoff.Message, 100)
	for i := range msgs {
		msgs[i] = handofftest.Msg(fmt.Sprintf("k%d", i%8), i)
	}
	ctx := context.Background()
	n := 0
	for b.Loop() {
		if err := br.Publish(ctx, sub.Topic, msgs...); err != nil {
			b.Fatal(err)
		}
		n += len(msgs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}

func TestClose_StopsSubscribeAndLaterSettlesAreStale(t *testing.T) {
	b := newBroker(t)
	sub := handoff.Subscription{Topic: "orders", Group: "billing"}
	provision(t, b, sub)
	m := handofftest.Msg("k", 1)
	if err := b.Publish(ctxT(t), sub.Topic, m); err != nil {
		t.Fatal(err)
	}
	got := make(chan *handoff.Delivery, 1)
	done := make(chan error, 1)
	go func() {
		done <- b.Subscribe(context.Background(), sub, func(d *handoff.Delivery) { got <- d })
	}()
	var d *handoff.Delivery
	select {
	case d = <-got:
	case <-time.After(wait):
		t.Fatal("no delivery")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Subscribe after Close returned %v, want ErrClosed", err)
		}
	case <-time.After(wait):
		t.Fatal("Subscribe did not return after Close")
	}
	if err := d.Settler.Ack(ctxT(t)); !errors.Is(err, ErrStale) {
		t.Fatalf("Ack after Subscribe returned = %v, want ErrStale", err)
	}
	if err := b.Publish(ctxT(t), sub.Topic, m); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
	// The unsettled message is still there for the group.
	b2 := newBroker(t, WithPrefix(b.prefix))
	s := subscribe(t, b2, sub)
	if d := s.next(t); d.Message.ID != m.ID || d.Attempt != 2 {
		t.Fatalf("got %s attempt %d, want %s attempt 2", d.Message.ID, d.Attempt, m.ID)
	}
}
