package handofftest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
)

// Transport is one broker's publishing and subscribing halves, connected to
// the same isolated namespace.
type Transport struct {
	Publisher  handoff.Publisher
	Subscriber handoff.Subscriber
	// Restart, when set, stops and restarts the broker (or the adapter's
	// connection to it) while keeping its durable state. Tests of
	// durability across a restart run only when it is set.
	Restart func(t testing.TB)
}

// Provisioner is implemented by subscribers that can declare a durable
// subscription before any message is published (RabbitMQ drops messages
// published to an exchange with no queue bound; JetStream and Kafka keep them
// anyway). The suite provisions before it publishes when it can.
type Provisioner interface {
	Provision(ctx context.Context, sub handoff.Subscription) error
}

// Features says what a transport guarantees; the suite checks each one it is told.
type Features struct {
	// Ordered: one subscriber receives messages of one partition key in
	// publish order (on first delivery).
	Ordered bool
	// Durable: acknowledged messages are not delivered again to the group,
	// and unsettled ones are, when a subscriber of the group comes back.
	Durable bool
	// Groups: every group receives every message; members of one group share them.
	Groups bool
	// MaxMessageSize, when positive, is a size the broker refuses: publishing
	// a larger message must fail and leave the publisher usable.
	MaxMessageSize int
}

// Timeout bounds every wait in the suite.
var Timeout = 20 * time.Second

// RunTransport runs the transport conformance suite. newTransport returns a
// fresh transport on an isolated namespace; it registers its own cleanup.
func RunTransport(t *testing.T, newTransport func(t testing.TB) Transport, f Features) {
	t.Run("RoundTripPreservesEveryAttribute", func(t *testing.T) { testRoundTrip(t, newTransport(t)) })
	t.Run("BatchPublish", func(t *testing.T) { testBatch(t, newTransport(t)) })
	t.Run("InvalidMessageRefusedBeforeAnyIsPublished", func(t *testing.T) { testInvalid(t, newTransport(t)) })
	t.Run("TopicsAreIsolated", func(t *testing.T) { testTopics(t, newTransport(t)) })
	t.Run("RetryRedeliversWithNextAttempt", func(t *testing.T) { testRetry(t, newTransport(t)) })
	t.Run("PublishHonoursCancelledContext", func(t *testing.T) { testCancelledPublish(t, newTransport(t)) })
	t.Run("SubscribeReturnsOnCancel", func(t *testing.T) { testSubscribeReturns(t, newTransport(t)) })
	t.Run("ReplayReachesOnlyTheGroupThatFailed", func(t *testing.T) { testReplayToGroup(t, newTransport(t)) })
	if f.Ordered {
		t.Run("OrderPerKey", func(t *testing.T) { testOrder(t, newTransport(t)) })
		t.Run("ConsumerKeepsOrderPerKeyAcrossRetries", func(t *testing.T) { testConsumerOrder(t, newTransport(t)) })
	}
	if f.Durable {
		t.Run("AckedNotRedeliveredUnsettledRedelivered", func(t *testing.T) { testDurable(t, newTransport(t)) })
		t.Run("SubscriberJoiningLateGetsEarlierMessages", func(t *testing.T) { testLateJoin(t, newTransport(t)) })
	}
	if f.Groups {
		t.Run("EveryGroupGetsEveryMessage", func(t *testing.T) { testGroups(t, newTransport(t)) })
		t.Run("MembersOfOneGroupShare", func(t *testing.T) { testShare(t, newTransport(t)) })
	}
	if f.MaxMessageSize > 0 {
		t.Run("OversizeRefusedPublisherStillWorks", func(t *testing.T) { testOversize(t, newTransport(t), f.MaxMessageSize) })
	}
	t.Run("DurableAcrossRestart", func(t *testing.T) {
		tr := newTransport(t)
		if tr.Restart == nil {
			t.Skip("transport has no Restart")
		}
		testRestart(t, tr)
	})
}

// Msg returns a valid message with every attribute set, for topic-agnostic tests.
func Msg(key string, n int) *handoff.Message {
	m := handoff.NewMessage("/handofftest", "com.example.test", []byte(fmt.Sprintf(`{"n":%d,"key":%q}`, n, key)))
	m.PartitionKey = key
	return m
}

func fullMsg() *handoff.Message {
	m := handoff.NewMessage("/orders/eu", "com.example.order.placed", []byte(`{"order":"o-1","total":12.5}`))
	m.Subject = "o-1"
	m.Time = time.Date(2026, 11, 22, 10, 30, 0, 123456789, time.UTC)
	m.DataContentType = "application/json; charset=utf-8"
	m.DataSchema = "https://schemas.example.com/order/1"
	m.PartitionKey = "customer-42"
	m.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	m.TraceState = "vendor=abc"
	m.CorrelationID = "corr-1"
	m.CausationID = "cause-1"
	m.Extensions = map[string]string{"tenant": "acme", "region": "eu1"}
	return m
}

// sub starts a subscription in the background and returns its deliveries.
// The subscription stops at cleanup (or when stop is called) and must return nil.
type sub struct {
	ch   chan *handoff.Delivery
	stop func()
}

func subscribe(t testing.TB, tr Transport, topic, group string, maxInFlight int) *sub {
	t.Helper()
	s := handoff.Subscription{Topic: topic, Group: group, MaxInFlight: maxInFlight}
	if p, ok := tr.Subscriber.(Provisioner); ok {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		if err := p.Provision(ctx, s); err != nil {
			t.Fatalf("provision %s/%s: %v", topic, group, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan *handoff.Delivery, 10000)
	done := make(chan error, 1)
	go func() { done <- tr.Subscriber.Subscribe(ctx, s, func(d *handoff.Delivery) { ch <- d }) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Subscribe returned %v after cancel, want nil", err)
				}
			case <-time.After(Timeout):
				t.Errorf("Subscribe did not return within %v of cancel", Timeout)
			}
		})
	}
	t.Cleanup(stop)
	return &sub{ch: ch, stop: stop}
}

func (s *sub) next(t testing.TB) *handoff.Delivery {
	t.Helper()
	select {
	case d := <-s.ch:
		return d
	case <-time.After(Timeout):
		t.Fatalf("no delivery within %v", Timeout)
		return nil
	}
}

// none asserts nothing more arrives while a marker published afterwards travels
// the same path: the transport delivers marker before anything published later.
func (s *sub) until(t testing.TB, markerID string, each func(*handoff.Delivery)) {
	t.Helper()
	for {
		d := s.next(t)
		if d.Message.ID == markerID {
			ack(t, d)
			return
		}
		each(d)
	}
}

func ack(t testing.TB, d *handoff.Delivery) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := d.Settler.Ack(ctx); err != nil {
		t.Fatalf("ack %s: %v", d.Message.ID, err)
	}
}

func publish(t testing.TB, tr Transport, topic string, msgs ...*handoff.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := tr.Publisher.Publish(ctx, topic, msgs...); err != nil {
		t.Fatalf("publish to %s: %v", topic, err)
	}
}

func sameMessage(t testing.TB, got, want *handoff.Message) {
	t.Helper()
	if got.ID != want.ID || got.Source != want.Source || got.Type != want.Type ||
		got.SpecVersion != want.SpecVersion || got.Subject != want.Subject ||
		!got.Time.Equal(want.Time) || got.DataContentType != want.DataContentType ||
		got.DataSchema != want.DataSchema || got.PartitionKey != want.PartitionKey ||
		got.TraceParent != want.TraceParent || got.TraceState != want.TraceState ||
		got.CorrelationID != want.CorrelationID || got.CausationID != want.CausationID ||
		!bytes.Equal(got.Data, want.Data) || len(got.Extensions) != len(want.Extensions) {
		t.Fatalf("message changed in transit:\n got %+v\nwant %+v", got, want)
	}
	for k, v := range want.Extensions {
		if got.Extensions[k] != v {
			t.Fatalf("extension %s: got %q, want %q", k, got.Extensions[k], v)
		}
	}
}

func names(prefix string) (topic, group string) {
	n := time.Now().UnixNano()
	return fmt.Sprintf("%s.t%d", prefix, n), fmt.Sprintf("g%d", n)
}

func testRoundTrip(t *testing.T, tr Transport) {
	topic, group := names("roundtrip")
	s := subscribe(t, tr, topic, group, 0)
	want := fullMsg()
	publish(t, tr, topic, want)
	d := s.next(t)
	if d.Err != nil {
		t.Fatalf("delivery error: %v", d.Err)
	}
	if d.Topic != topic {
		t.Errorf("Topic = %q, want %q", d.Topic, topic)
	}
	if d.Attempt != 1 {
		t.Errorf("Attempt = %d, want 1", d.Attempt)
	}
	sameMessage(t, d.Message, want)
	ack(t, d)
}

func testBatch(t *testing.T, tr Transport) {
	topic, group := names("batch")
	s := subscribe(t, tr, topic, group, 0)
	const n = 500
	msgs := make([]*handoff.Message, n)
	for i := range msgs {
		msgs[i] = Msg(fmt.Sprintf("k%d", i%7), i)
	}
	publish(t, tr, topic, msgs...)
	seen := map[string]bool{}
	for len(seen) < n {
		d := s.next(t)
		seen[d.Message.ID] = true
		ack(t, d)
	}
	for _, m := range msgs {
		if !seen[m.ID] {
			t.Fatalf("message %s never delivered", m.ID)
		}
	}
}

func testInvalid(t *testing.T, tr Transport) {
	topic, group := names("invalid")
	s := subscribe(t, tr, topic, group, 0)
	good := Msg("k", 1)
	bad := Msg("k", 2)
	bad.Source = ""
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	err := tr.Publisher.Publish(ctx, topic, good, bad)
	var ve *handoff.ValidationError
	if !errors.As(err, &ve) || ve.Attribute != "source" {
		t.Fatalf("Publish(valid, invalid) = %v, want a *handoff.ValidationError naming source", err)
	}
	marker := Msg("k", 3)
	publish(t, tr, topic, marker)
	s.until(t, marker.ID, func(d *handoff.Delivery) {
		t.Fatalf("message %s delivered although its batch was refused", d.Message.ID)
	})
}

func testTopics(t *testing.T, tr Transport) {
	a, group := names("topica")
	b := a + "b"
	sa := subscribe(t, tr, a, group, 0)
	sb := subscribe(t, tr, b, group, 0)
	ma, mb := Msg("k", 1), Msg("k", 2)
	publish(t, tr, a, ma)
	publish(t, tr, b, mb)
	if d := sa.next(t); d.Message.ID != ma.ID {
		t.Fatalf("topic %s delivered %s, want %s", a, d.Message.ID, ma.ID)
	} else {
		ack(t, d)
	}
	if d := sb.next(t); d.Message.ID != mb.ID {
		t.Fatalf("topic %s delivered %s, want %s", b, d.Message.ID, mb.ID)
	} else {
		ack(t, d)
	}
}

func testRetry(t *testing.T, tr Transport) {
	topic, group := names("retry")
	s := subscribe(t, tr, topic, group, 0)
	m := Msg("k", 1)
	publish(t, tr, topic, m)
	d := s.next(t)
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := d.Settler.Retry(ctx, 50*time.Millisecond); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	d2 := s.next(t)
	if d2.Message.ID != m.ID || d2.Attempt != 2 {
		t.Fatalf("after Retry got %s attempt %d, want %s attempt 2", d2.Message.ID, d2.Attempt, m.ID)
	}
	sameMessage(t, d2.Message, m)
	if err := d2.Settler.Retry(ctx, 10*time.Millisecond); err != nil {
		t.Fatalf("second Retry: %v", err)
	}
	d3 := s.next(t)
	if d3.Message.ID != m.ID || d3.Attempt != 3 {
		t.Fatalf("after second Retry got %s attempt %d, want %s attempt 3", d3.Message.ID, d3.Attempt, m.ID)
	}
	ack(t, d3)
}

func testCancelledPublish(t *testing.T, tr Transport) {
	topic, _ := names("cancel")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tr.Publisher.Publish(ctx, topic, Msg("k", 1)); err == nil {
		t.Fatal("Publish with a cancelled context returned nil")
	}
}

func testSubscribeReturns(t *testing.T, tr Transport) {
	topic, group := names("stop")
	s := subscribe(t, tr, topic, group, 0)
	m := Msg("k", 1)
	publish(t, tr, topic, m)
	ack(t, s.next(t))
	s.stop() // asserts a nil return in time
}

func testOrder(t *testing.T, tr Transport) {
	topic, group := names("order")
	s := subscribe(t, tr, topic, group, 0)
	const keys, per = 5, 60
	var msgs []*handoff.Message
	for i := 0; i < per; i++ {
		for k := 0; k < keys; k++ {
			msgs = append(msgs, Msg(fmt.Sprintf("key-%d", k), i))
		}
	}
	// Several publish calls, so batching boundaries are crossed.
	for i := 0; i < len(msgs); i += 37 {
		publish(t, tr, topic, msgs[i:min(i+37, len(msgs))]...)
	}
	want := map[string][]string{}
	for _, m := range msgs {
		want[m.PartitionKey] = append(want[m.PartitionKey], m.ID)
	}
	got := map[string][]string{}
	for n := 0; n < len(msgs); n++ {
		d := s.next(t)
		got[d.Message.PartitionKey] = append(got[d.Message.PartitionKey], d.Message.ID)
		ack(t, d)
	}
	for k, ids := range want {
		for i := range ids {
			if got[k][i] != ids[i] {
				t.Fatalf("key %s: position %d got %s, want %s", k, i, got[k][i], ids[i])
			}
		}
	}
}

func testDurable(t *testing.T, tr Transport) {
	topic, group := names("durable")
	s := subscribe(t, tr, topic, group, 0)
	msgs := []*handoff.Message{Msg("a", 1), Msg("b", 2), Msg("c", 3), Msg("d", 4)}
	publish(t, tr, topic, msgs...)
	acked := map[string]bool{}
	for i := 0; i < len(msgs); i++ {
		d := s.next(t)
		if i%2 == 0 {
			ack(t, d)
			acked[d.Message.ID] = true
		} // the others stay unsettled
	}
	s.stop()
	s2 := subscribe(t, tr, topic, group, 0)
	marker := Msg("z", 5)
	publish(t, tr, topic, marker)
	// The unsettled messages and the marker come back, in any order; the
	// acked ones never do.
	redelivered, markerSeen := map[string]bool{}, false
	for len(redelivered) < len(msgs)-len(acked) || !markerSeen {
		d := s2.next(t)
		switch {
		case acked[d.Message.ID]:
			t.Fatalf("acked message %s delivered again", d.Message.ID)
		case d.Message.ID == marker.ID:
			markerSeen = true
		default:
			redelivered[d.Message.ID] = true
		}
		ack(t, d)
	}
}

func testLateJoin(t *testing.T, tr Transport) {
	topic, group := names("late")
	if p, ok := tr.Subscriber.(Provisioner); ok {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		if err := p.Provision(ctx, handoff.Subscription{Topic: topic, Group: group}); err != nil {
			t.Fatal(err)
		}
	}
	m := Msg("k", 1)
	publish(t, tr, topic, m)
	s := subscribe(t, tr, topic, group, 0)
	d := s.next(t)
	if d.Message.ID != m.ID {
		t.Fatalf("got %s, want %s", d.Message.ID, m.ID)
	}
	ack(t, d)
}

func testGroups(t *testing.T, tr Transport) {
	topic, g1 := names("groups")
	g2 := g1 + "x"
	s1 := subscribe(t, tr, topic, g1, 0)
	s2 := subscribe(t, tr, topic, g2, 0)
	msgs := []*handoff.Message{Msg("a", 1), Msg("b", 2), Msg("c", 3)}
	publish(t, tr, topic, msgs...)
	for _, s := range []*sub{s1, s2} {
		seen := map[string]bool{}
		for len(seen) < len(msgs) {
			d := s.next(t)
			seen[d.Message.ID] = true
			ack(t, d)
		}
	}
}

func testShare(t *testing.T, tr Transport) {
	topic, group := names("share")
	s1 := subscribe(t, tr, topic, group, 0)
	s2 := subscribe(t, tr, topic, group, 0)
	const n = 40
	msgs := make([]*handoff.Message, n)
	for i := range msgs {
		msgs[i] = Msg(fmt.Sprintf("k%d", i), i)
	}
	publish(t, tr, topic, msgs...)
	seen := map[string]int{}
	deadline := time.After(Timeout)
	total := 0
	for total < n {
		select {
		case d := <-s1.ch:
			ack(t, d)
			seen[d.Message.ID]++
		case d := <-s2.ch:
			ack(t, d)
			seen[d.Message.ID]++
		case <-deadline:
			t.Fatalf("only %d of %d messages delivered to the group", total, n)
		}
		total++
	}
	for _, m := range msgs {
		if seen[m.ID] != 1 {
			t.Fatalf("message %s delivered %d times to one group, want 1", m.ID, seen[m.ID])
		}
	}
}

func testOversize(t *testing.T, tr Transport, limit int) {
	topic, group := names("oversize")
	s := subscribe(t, tr, topic, group, 0)
	big := Msg("k", 1)
	big.DataContentType = "application/octet-stream"
	big.Data = bytes.Repeat([]byte("x"), limit+1)
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := tr.Publisher.Publish(ctx, topic, big); err == nil {
		t.Fatalf("publishing %d bytes over a limit of %d returned nil", len(big.Data), limit)
	}
	m := Msg("k", 2)
	publish(t, tr, topic, m)
	s.until(t, m.ID, func(d *handoff.Delivery) {
		t.Fatalf("oversize message %s delivered", d.Message.ID)
	})
}

func testRestart(t *testing.T, tr Transport) {
	topic, group := names("restart")
	s := subscribe(t, tr, topic, group, 0)
	m1 := Msg("k", 1)
	publish(t, tr, topic, m1)
	ack(t, s.next(t))
	s.stop()
	m2 := Msg("k", 2)
	publish(t, tr, topic, m2)
	tr.Restart(t)
	s2 := subscribe(t, tr, topic, group, 0)
	d := s2.next(t)
	if d.Message.ID != m2.ID {
		t.Fatalf("after restart got %s, want %s (acked %s must not return)", d.Message.ID, m2.ID, m1.ID)
	}
	ack(t, d)
}
