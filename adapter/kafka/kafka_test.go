package kafka_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/kafka"
	"github.com/handoffhq/handoff/handofftest"
	"github.com/handoffhq/handoff/internal/testenv"
)

const testTimeout = 20 * time.Second

// fakeCluster starts an in-process kfake cluster, closed at cleanup.
func fakeCluster(t testing.TB) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func newClient(t testing.TB, seeds []string, opts ...kafka.Option) *kafka.Client {
	t.Helper()
	c, err := kafka.New(seeds, append([]kafka.Option{kafka.WithCreateTopics(3, -1)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// swap is a transport whose client can be replaced, for Restart.
type swap struct {
	mu   sync.Mutex
	c    *kafka.Client
	make func() *kafka.Client
}

func (s *swap) cur() *kafka.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

func (s *swap) Publish(ctx context.Context, topic string, msgs ...*handoff.Message) error {
	return s.cur().Publish(ctx, topic, msgs...)
}

func (s *swap) Redeliver(ctx context.Context, topic, group string, msgs ...*handoff.Message) error {
	return s.cur().Redeliver(ctx, topic, group, msgs...)
}

func (s *swap) Subscribe(ctx context.Context, sub handoff.Subscription, deliver func(*handoff.Delivery)) error {
	return s.cur().Subscribe(ctx, sub, deliver)
}

func (s *swap) Provision(ctx context.Context, sub handoff.Subscription) error {
	return s.cur().Provision(ctx, sub)
}

func (s *swap) restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s.c = s.make()
}

func transport(seeds func(testing.TB) []string, partitions int32, replication int16) func(testing.TB) handofftest.Transport {
	return func(t testing.TB) handofftest.Transport {
		addrs := seeds(t)
		s := &swap{make: func() *kafka.Client {
			c, err := kafka.New(addrs, kafka.WithCreateTopics(partitions, replication))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		}}
		s.c = s.make()
		return handofftest.Transport{Publisher: s, Subscriber: s, Restart: s.restart}
	}
}

func TestConformance(t *testing.T) {
	handofftest.RunTransport(t, transport(fakeCluster, 3, -1), handofftest.Features{
		Ordered: true, Durable: true, Groups: true,
		// franz-go refuses records over ProducerBatchMaxBytes (1,000,012).
		MaxMessageSize: 1000012,
	})
}

func TestConformanceRealKafka(t *testing.T) {
	seeds := testenv.KafkaBrokers(t)
	handofftest.RunTransport(t, transport(func(testing.TB) []string { return seeds }, 3, -1), handofftest.Features{
		Ordered: true, Durable: true, Groups: true, MaxMessageSize: 1000012,
	})
}

// run subscribes in the background; stop cancels and waits for a nil return.
type run struct {
	ch   chan *handoff.Delivery
	stop func(t testing.TB)
}

func subscribe(t testing.TB, c *kafka.Client, sub handoff.Subscription) *run {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan *handoff.Delivery, 1000)
	done := make(chan error, 1)
	go func() { done <- c.Subscribe(ctx, sub, func(d *handoff.Delivery) { ch <- d }) }()
	var once sync.Once
	stop := func(t testing.TB) {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Subscribe returned %v, want nil", err)
				}
			case <-time.After(testTimeout):
				t.Errorf("Subscribe did not return after cancel")
			}
		})
	}
	t.Cleanup(func() { stop(t) })
	return &run{ch: ch, stop: stop}
}

func (r *run) next(t testing.TB) *handoff.Delivery {
	t.Helper()
	select {
	case d := <-r.ch:
		return d
	case <-time.After(testTimeout):
		t.Fatal("no delivery in time")
		return nil
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

func msgs(key string, n int) []*handoff.Message {
	out := make([]*handoff.Message, n)
	for i := range out {
		out[i] = handofftest.Msg(key, i)
	}
	return out
}

func admin(t testing.TB, seeds []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func committed(t testing.TB, adm *kadm.Client, group, topic string, partition int32) int64 {
	t.Helper()
	offs, err := adm.FetchOffsets(ctxT(t), group)
	if err != nil {
		t.Fatalf("FetchOffsets: %v", err)
	}
	o, ok := offs.Lookup(topic, partition)
	if !ok {
		return -1
	}
	if o.Err != nil {
		t.Fatalf("FetchOffsets %s/%d: %v", topic, partition, o.Err)
	}
	return o.At
}

func TestCommit_NeverAheadOfUnsettledRecord(t *testing.T) {
	seeds := fakeCluster(t)
	c := newClient(t, seeds, kafka.WithCreateTopics(1, -1), kafka.WithDrainTimeout(0))
	topic, group := testenv.Unique("commit"), testenv.Unique("g")
	ms := msgs("k", 10)
	if err := c.Publish(ctxT(t), topic, ms...); err != nil {
		t.Fatal(err)
	}
	index := map[string]int{}
	for i, m := range ms {
		index[m.ID] = i
	}
	sub := handoff.Subscription{Topic: topic, Group: group}
	r := subscribe(t, c, sub)
	for i := 0; i < 10; i++ {
		d := r.next(t)
		if got := index[d.Message.ID]; got != i {
			t.Fatalf("delivery %d is record %d", i, got)
		}
		if i == 3 || i == 4 {
			continue // left unsettled
		}
		if err := d.Settler.Ack(ctxT(t)); err != nil {
			t.Fatalf("ack %d: %v", i, err)
		}
	}
	adm := admin(t, seeds)
	if got := committed(t, adm, group, topic, 0); got != 3 {
		t.Fatalf("committed offset with 3 unsettled = %d, want 3", got)
	}
	r.stop(t)
	if got := committed(t, adm, group, topic, 0); got != 3 {
		t.Fatalf("committed offset after stop = %d, want 3", got)
	}

	r2 := subscribe(t, c, sub)
	for _, want := range []int{3, 4} {
		d := r2.next(t)
		if got := index[d.Message.ID]; got != want {
			t.Fatalf("after restart got record %d, want %d (records settled after an unsettled one are not delivered again)", got, want)
		}
		if err := d.Settler.Ack(ctxT(t)); err != nil {
			t.Fatalf("ack %d: %v", want, err)
		}
	}
	if got := committed(t, adm, group, topic, 0); got != 10 {
		t.Fatalf("committed offset after settling 3 and 4 = %d, want 10", got)
	}
	select {
	case d := <-r2.ch:
		t.Fatalf("unexpected delivery of record %d", index[d.Message.ID])
	default:
	}
}

func TestCommit_AckIsCommittedWhenItReturns(t *testing.T) {
	seeds := fakeCluster(t)
	c := newClient(t, seeds, kafka.WithCreateTopics(1, -1))
	topic, group := testenv.Unique("ackc"), testenv.Unique("g")
	if err := c.Publish(ctxT(t), topic, msgs("k", 2)...); err != nil {
		t.Fatal(err)
	}
	r := subscribe(t, c, handoff.Subscription{Topic: topic, Group: group})
	adm := admin(t, seeds)
	for i := 1; i <= 2; i++ {
		if err := r.next(t).Settler.Ack(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if got := committed(t, adm, group, topic, 0); got != int64(i) {
			t.Fatalf("after ack %d committed = %d, want %d", i, got, i)
		}
	}
}

// readAll reads every record of a topic with a plain consumer.
func readAll(t testing.TB, seeds []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	ctx := ctxT(t)
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: %d of %d records: %v", topic, len(out), n, err)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func TestRetry_GoesThroughRetryTopicAndWaitsForDueTime(t *testing.T) {
	seeds := fakeCluster(t)
	c := newClient(t, seeds, kafka.WithCreateTopics(1, -1))
	topic, group := testenv.Unique("retry"), testenv.Unique("g")
	m := handofftest.Msg("k", 1)
	if err := c.Publish(ctxT(t), topic, m); err != nil {
		t.Fatal(err)
	}
	r := subscribe(t, c, handoff.Subscription{Topic: topic, Group: group})
	d := r.next(t)
	const delay = 300 * time.Millisecond
	before := time.Now()
	if err := d.Settler.Retry(ctxT(t), delay); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	after := time.Now()

	// The copy is in the retry topic, with the next attempt and due time,
	// and the original's offset is committed.
	recs := readAll(t, seeds, kafka.RetryTopic(topic, group), 1)
	rr := recs[0]
	if got := header(rr, kafka.HeaderAttempt); got != "2" {
		t.Fatalf("%s = %q, want 2", kafka.HeaderAttempt, got)
	}
	ms, err := strconv.ParseInt(header(rr, kafka.HeaderNotBefore), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", kafka.HeaderNotBefore, err)
	}
	due := time.UnixMilli(ms)
	if due.Before(before.Add(delay).Truncate(time.Millisecond)) || due.After(after.Add(delay)) {
		t.Fatalf("due %v not within [%v, %v]", due, before.Add(delay), after.Add(delay))
	}
	if string(rr.Key) != "k" || header(rr, "ce_id") != m.ID {
		t.Fatalf("retry record key %q id %q, want k %s", rr.Key, header(rr, "ce_id"), m.ID)
	}
	if got := committed(t, admin(t, seeds), group, topic, 0); got != 1 {
		t.Fatalf("original not committed after Retry: offset %d, want 1", got)
	}

	d2 := r.next(t)
	if now := time.Now(); now.Before(due) {
		t.Fatalf("retry delivered at %v, before its due time %v", now, due)
	}
	if d2.Message.ID != m.ID || d2.Attempt != 2 || d2.Topic != topic || d2.Err != nil {
		t.Fatalf("redelivery: id %s attempt %d topic %s err %v; want %s attempt 2 topic %s", d2.Message.ID, d2.Attempt, d2.Topic, d2.Err, m.ID, topic)
	}
	if err := d2.Settler.Ack(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := committed(t, admin(t, seeds), group, kafka.RetryTopic(topic, group), 0); got != 1 {
		t.Fatalf("retry record not committed after Ack: offset %d, want 1", got)
	}
}

// A window full of held main-topic records must not hold up a due retry.
func TestRetry_NotBlockedByFullInFlightWindow(t *testing.T) {
	seeds := fakeCluster(t)
	c := newClient(t, seeds, kafka.WithCreateTopics(1, -1))
	topic, group := testenv.Unique("window"), testenv.Unique("g")
	ms := msgs("k", 6)
	if err := c.Publish(ctxT(t), topic, ms...); err != nil {
		t.Fatal(err)
	}
	r := subscribe(t, c, handoff.Subscription{Topic: topic, Group: group, MaxInFlight: 2})
	d1 := r.next(t)
	if d1.Message.ID != ms[0].ID {
		t.Fatalf("first delivery %s, want %s", d1.Message.ID, ms[0].ID)
	}
	if err := d1.Settler.Retry(ctxT(t), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// The runtime holds the next records of the key back: they stay
	// unsettled and fill the window of 2.
	held := []*handoff.Delivery{r.next(t), r.next(t)}
	for i, d := range held {
		if d.Message.ID != ms[i+1].ID {
			t.Fatalf("held delivery %d is %s, want %s", i, d.Message.ID, ms[i+1].ID)
		}
	}
	d := r.next(t)
	if d.Message.ID != ms[0].ID || d.Attempt != 2 {
		t.Fatalf("with the window full got %s attempt %d, want the retry of %s attempt 2", d.Message.ID, d.Attempt, ms[0].ID)
	}
	for _, d := range append(held, d) {
		if err := d.Settler.Ack(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 3; i < len(ms); i++ {
		d := r.next(t)
		if d.Message.ID != ms[i].ID {
			t.Fatalf("got %s, want %s", d.Message.ID, ms[i].ID)
		}
		if err := d.Settler.Ack(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMaxInFlight_Respected(t *testing.T) {
	seeds := fakeCluster(t)
	c := newClient(t, seeds)
	topic, group := testenv.Unique("inflight"), testenv.Unique("g")
	var all []*handoff.Message
	for k := 0; k < 5; k++ {
		all = append(all, msgs(fmt.Sprintf("k%d", k), 10)...)
	}
	if err := c.Publish(ctxT(t), topic, all...); err != nil {
		t.Fatal(err)
	}
	const limit = 4
	r := subscribe(t, c, handoff.Subscription{Topic: topic, Group: group, MaxInFlight: limit})
	var out []*handoff.Delivery
	for len(out) < limit {
		out = append(out, r.next(t))
	}
	// Settling one frees one slot; a marker round trip would be racy, so
	// check that at most one more arrives per settle.
	for seen := limit; seen < len(all); seen++ {
		select {
		case d := <-r.ch:
			t.Fatalf("delivery %s beyond MaxInFlight %d", d.Message.ID, limit)
		default:
		}
		if err := out[0].Settler.Ack(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		out = append(out[1:], r.next(t))
	}
}

func TestUndecodableRecord_DeliveredWithErr(t *testing.T) {
	seeds := fakeCluster(t)
	c := newClient(t, seeds, kafka.WithCreateTopics(1, -1))
	topic, group := testenv.Unique("bad"), testenv.Unique("g")
	if err := c.Provision(ctxT(t), handoff.Subscription{Topic: topic, Group: group}); err != nil {
		t.Fatal(err)
	}
	raw, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	bad := &kgo.Record{Topic: topic, Value: []byte("not an event"), Headers: []kgo.RecordHeader{
		{Key: "ce_id", Value: []byte("x-1")}, {Key: "ce_time", Value: []byte("yesterday")},
	}}
	good := handofftest.Msg("k", 1)
	if err := raw.ProduceSync(ctxT(t), bad).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctxT(t), topic, good); err != nil {
		t.Fatal(err)
	}
	r := subscribe(t, c, handoff.Subscription{Topic: topic, Group: group})
	d := r.next(t)
	var ve *handoff.ValidationError
	if !errors.As(d.Err, &ve) || ve.Attribute != "time" {
		t.Fatalf("Err = %v, want a *handoff.ValidationError naming time", d.Err)
	}
	if d.Message == nil || string(d.Message.Data) != "not an event" || d.Message.ID != "x-1" {
		t.Fatalf("Message = %+v, want the id and raw body", d.Message)
	}
	if err := d.Settler.Ack(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if d := r.next(t); d.Err != nil || d.Message.ID != good.ID {
		t.Fatalf("after the bad record got %v %v, want %s", d.Message.ID, d.Err, good.ID)
	}
}

func TestKeyPartition_Stable(t *testing.T) {
	seeds := fakeCluster(t)
	const parts = 6
	c := newClient(t, seeds, kafka.WithCreateTopics(parts, -1))
	topic := testenv.Unique("keys")
	keys := []string{"customer-1", "customer-2", "order-77", "a", "b"}
	var n int
	for round := 0; round < 4; round++ { // separate calls, separate batches
		var batch []*handoff.Message
		for _, k := range keys {
			batch = append(batch, handofftest.Msg(k, round))
		}
		if err := c.Publish(ctxT(t), topic, batch...); err != nil {
			t.Fatal(err)
		}
		n += len(batch)
	}
	// Kafka's default partitioner: murmur2 of the key, sign bit masked, mod partitions.
	want := kgo.StickyKeyPartitioner(nil).ForTopic(topic)
	got := map[string]int32{}
	for _, r := range readAll(t, seeds, topic, n) {
		k := string(r.Key)
		if p, ok := got[k]; ok && p != r.Partition {
			t.Fatalf("key %s on partitions %d and %d", k, p, r.Partition)
		}
		got[k] = r.Partition
		if exp := int32(want.Partition(r, parts)); r.Partition != exp {
			t.Fatalf("key %s on partition %d, want %d (murmur2)", k, r.Partition, exp)
		}
	}
	if len(got) != len(keys) {
		t.Fatalf("saw %d keys, want %d", len(got), len(keys))
	}
}

func TestPublish_SizeLimits(t *testing.T) {
	seeds := fakeCluster(t)
	topic := testenv.Unique("size")

	c := newClient(t, seeds, kafka.WithMaxMessageSize(1000))
	small, big := handofftest.Msg("k", 1), handofftest.Msg("k", 2)
	big.DataContentType = "application/octet-stream"
	big.Data = make([]byte, 2000)
	err := c.Publish(ctxT(t), topic, small, big)
	var ve *handoff.ValidationError
	if !errors.As(err, &ve) || ve.ID != big.ID || ve.Attribute != "data" {
		t.Fatalf("Publish over WithMaxMessageSize = %v, want a *handoff.ValidationError for %s", err, big.ID)
	}

	// Without the option the producer's own limit refuses it, naming the id.
	c2 := newClient(t, seeds)
	huge := handofftest.Msg("k", 3)
	huge.DataContentType = "application/octet-stream"
	huge.Data = make([]byte, 1100000)
	err = c2.Publish(ctxT(t), topic, huge)
	if err == nil || !strings.Contains(err.Error(), huge.ID) {
		t.Fatalf("Publish of %d bytes = %v, want an error naming %s", len(huge.Data), err, huge.ID)
	}
	if err := c2.Publish(ctxT(t), topic, small); err != nil {
		t.Fatalf("publisher unusable after a refused record: %v", err)
	}

	// The broker's own limit (the topic's max.message.bytes) likewise.
	limited := testenv.Unique("limited")
	maxBytes := "4000"
	if _, err := admin(t, seeds).CreateTopic(ctxT(t), 1, -1, map[string]*string{"max.message.bytes": &maxBytes}, limited); err != nil {
		t.Fatal(err)
	}
	mid := handofftest.Msg("k", 4)
	mid.DataContentType = "application/octet-stream"
	mid.Data = make([]byte, 20000)
	rand.Read(mid.Data) // incompressible: the broker checks the compressed batch
	err = c2.Publish(ctxT(t), limited, mid)
	if err == nil || !strings.Contains(err.Error(), mid.ID) {
		t.Fatalf("Publish over the topic's max.message.bytes = %v, want an error naming %s", err, mid.ID)
	}
	if err := c2.Publish(ctxT(t), limited, handofftest.Msg("k", 5)); err != nil {
		t.Fatalf("publisher unusable after a broker refusal: %v", err)
	}
}

func TestProvision_WithoutCreateNamesMissingTopics(t *testing.T) {
	seeds := fakeCluster(t)
	c, err := kafka.New(seeds)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := testenv.Unique("missing")
	err = c.Provision(ctxT(t), handoff.Subscription{Topic: topic, Group: "g"})
	if err == nil || !strings.Contains(err.Error(), kafka.RetryTopic(topic, "g")) {
		t.Fatalf("Provision = %v, want an error naming the retry topic", err)
	}
}

func TestNew_ValidatesOptions(t *testing.T) {
	tests := []struct {
		name  string
		seeds []string
		opts  []kafka.Option
		want  string
	}{
		{"no seeds", nil, nil, "seed broker"},
		{"empty seed", []string{" "}, nil, "empty"},
		{"zero partitions", []string{"x:9092"}, []kafka.Option{kafka.WithCreateTopics(0, 1)}, "WithCreateTopics"},
		{"bad replication", []string{"x:9092"}, []kafka.Option{kafka.WithCreateTopics(3, -2)}, "replication"},
		{"negative size", []string{"x:9092"}, []kafka.Option{kafka.WithMaxMessageSize(-1)}, "WithMaxMessageSize"},
		{"negative drain", []string{"x:9092"}, []kafka.Option{kafka.WithDrainTimeout(-time.Second)}, "WithDrainTimeout"},
		{"nil logger", []string{"x:9092"}, []kafka.Option{kafka.WithLogger(nil)}, "WithLogger"},
		{"nil client option", []string{"x:9092"}, []kafka.Option{kafka.WithClientOptions(nil)}, "WithClientOptions"},
		{"ok", []string{"x:9092"}, []kafka.Option{kafka.WithCreateTopics(-1, -1), kafka.WithDrainTimeout(0)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := kafka.New(tt.seeds, tt.opts...)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New = %v", err)
				}
				c.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestSubscribe_ReturnsWhenClientClosed(t *testing.T) {
	seeds := fakeCluster(t)
	c, err := kafka.New(seeds, kafka.WithCreateTopics(1, -1))
	if err != nil {
		t.Fatal(err)
	}
	topic := testenv.Unique("close")
	m := handofftest.Msg("k", 1)
	if err := c.Publish(ctxT(t), topic, m); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	got := make(chan *handoff.Delivery, 1)
	go func() {
		done <- c.Subscribe(context.Background(), handoff.Subscription{Topic: topic, Group: "g"}, func(d *handoff.Delivery) { got <- d })
	}()
	select {
	case <-got:
	case <-time.After(testTimeout):
		t.Fatal("no delivery")
	}
	c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Subscribe = %v after Close, want nil", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Subscribe did not return after Close")
	}
	if err := c.Publish(ctxT(t), topic, m); !errors.Is(err, kafka.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
}

func TestSubscribe_SurvivesBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	start := func() *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir))
		if err != nil {
			t.Fatalf("kfake: %v", err)
		}
		t.Cleanup(c.Close)
		return c
	}
	cluster := start()
	c := newClient(t, cluster.ListenAddrs(), kafka.WithCreateTopics(1, -1))
	topic, group := testenv.Unique("outage"), testenv.Unique("g")
	m1, m2 := handofftest.Msg("k", 1), handofftest.Msg("k", 2)
	if err := c.Publish(ctxT(t), topic, m1); err != nil {
		t.Fatal(err)
	}
	r := subscribe(t, c, handoff.Subscription{Topic: topic, Group: group})
	if d := r.next(t); d.Message.ID != m1.ID {
		t.Fatalf("got %s, want %s", d.Message.ID, m1.ID)
	} else if err := d.Settler.Ack(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	cluster.Close() // the broker goes away, keeping its data on disk
	start()

	if err := c.Publish(ctxT(t), topic, m2); err != nil {
		t.Fatalf("publish after broker restart: %v", err)
	}
	d := r.next(t)
	if d.Message.ID != m2.ID {
		t.Fatalf("after broker restart got %s, want %s (acked %s must not return)", d.Message.ID, m2.ID, m1.ID)
	}
	if err := d.Settler.Ack(ctxT(t)); err != nil {
		t.Fatalf("ack after broker restart: %v", err)
	}
}

func TestSubscribe_ReturnsWhenBrokerGone(t *testing.T) {
	c0, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c0.Close()
	c := newClient(t, c0.ListenAddrs(), kafka.WithCreateTopics(1, -1))
	topic := testenv.Unique("gone")
	if err := c.Publish(ctxT(t), topic, handofftest.Msg("k", 1)); err != nil {
		t.Fatal(err)
	}
	r := subscribe(t, c, handoff.Subscription{Topic: topic, Group: "g"})
	d := r.next(t)
	if err := d.Settler.Ack(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	c0.Close()
	r.stop(t) // fails the test if Subscribe does not return in time
}

// A delivery settled while Subscribe shuts down (within the drain timeout)
// is committed and not delivered again.
func TestSubscribe_ShutdownWaitsForSettlesInFlight(t *testing.T) {
	seeds := fakeCluster(t)
	c := newClient(t, seeds, kafka.WithCreateTopics(1, -1), kafka.WithDrainTimeout(10*time.Second))
	topic, group := testenv.Unique("drain"), testenv.Unique("g")
	m1, m2 := handofftest.Msg("k", 1), handofftest.Msg("k", 2)
	if err := c.Publish(ctxT(t), topic, m1); err != nil {
		t.Fatal(err)
	}
	r := subscribe(t, c, handoff.Subscription{Topic: topic, Group: group})
	d := r.next(t)
	stopped := make(chan struct{})
	go func() {
		r.stop(t)
		close(stopped)
	}()
	if err := d.Settler.Ack(ctxT(t)); err != nil {
		t.Fatalf("ack during shutdown: %v", err)
	}
	<-stopped
	if got := committed(t, admin(t, seeds), group, topic, 0); got != 1 {
		t.Fatalf("committed %d after shutdown, want 1", got)
	}
	if err := c.Publish(ctxT(t), topic, m2); err != nil {
		t.Fatal(err)
	}
	r2 := subscribe(t, c, handoff.Subscription{Topic: topic, Group: group})
	d2 := r2.next(t)
	if d2.Message.ID != m2.ID {
		t.Fatalf("got %s, want %s (%s was acked during shutdown)", d2.Message.ID, m2.ID, m1.ID)
	}
	if err := d2.Settler.Ack(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// When a second member joins, the partitions that move stop delivering on
// the first member; its settles for them fail with ErrRevoked, and exactly
// those records are delivered to the new member.
func TestRebalance_MovedPartitionsGoToNewMember(t *testing.T) {
	seeds := fakeCluster(t)
	fast := kafka.WithClientOptions(kgo.HeartbeatInterval(100 * time.Millisecond))
	a := newClient(t, seeds, kafka.WithCreateTopics(6, -1), kafka.WithDrainTimeout(200*time.Millisecond), fast)
	topic, group := testenv.Unique("rebal"), testenv.Unique("g")
	// One retry partition, so most of what moves is the main topic.
	if _, err := admin(t, seeds).CreateTopic(ctxT(t), 1, -1, nil, kafka.RetryTopic(topic, group)); err != nil {
		t.Fatal(err)
	}
	var all []*handoff.Message
	for i := 0; i < 24; i++ {
		all = append(all, handofftest.Msg(fmt.Sprintf("key-%d", i), i))
	}
	if err := a.Publish(ctxT(t), topic, all...); err != nil {
		t.Fatal(err)
	}
	ra := subscribe(t, a, handoff.Subscription{Topic: topic, Group: group})
	var held []*handoff.Delivery
	for len(held) < len(all) {
		held = append(held, ra.next(t))
	}

	b := newClient(t, seeds, kafka.WithCreateTopics(6, -1), fast)
	rb := subscribe(t, b, handoff.Subscription{Topic: topic, Group: group})
	first := rb.next(t) // arrives once a's revoke gave partitions up

	revoked := map[string]bool{}
	for _, d := range held {
		err := d.Settler.Ack(ctxT(t))
		switch {
		case errors.Is(err, kafka.ErrRevoked):
			revoked[d.Message.ID] = true
		case err != nil:
			t.Fatalf("ack on the first member: %v", err)
		}
	}
	if !revoked[first.Message.ID] {
		t.Fatalf("new member got %s, which the first member still owned", first.Message.ID)
	}
	got := map[string]bool{first.Message.ID: true}
	if err := first.Settler.Ack(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for len(got) < len(revoked) {
		d := rb.next(t)
		if !revoked[d.Message.ID] || got[d.Message.ID] {
			t.Fatalf("new member got %s (revoked on the first: %v, seen: %v)", d.Message.ID, revoked[d.Message.ID], got[d.Message.ID])
		}
		got[d.Message.ID] = true
		if err := d.Settler.Ack(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	}
}

// CheckSize learns the topic's max.message.bytes from the cluster: a message
// over it is refused (for outbox.WithBrokerLimit) naming the limit, one under
// it passes, and Publish agrees.
func TestCheckSize_TopicMaxMessageBytes(t *testing.T) {
	seeds := fakeCluster(t)
	c := newClient(t, seeds)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	topic := "sized"
	if err := c.Publish(ctx, topic, handofftest.Msg("k", 0)); err != nil { // creates the topic
		t.Fatal(err)
	}
	kc, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	limit := "20000"
	if _, err := kadm.NewClient(kc).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: &limit}}, topic); err != nil {
		t.Fatal(err)
	}
	// Random data: the broker measures the compressed batch; CheckSize
	// counts it uncompressed, so it refuses no less than the broker.
	noise := make([]byte, 15000)
	rand.Read(noise)
	big := handofftest.Msg("k", 1)
	big.Data = []byte(fmt.Sprintf("%q", fmt.Sprintf("%x", noise)))
	err = c.CheckSize(ctx, topic, big)
	if err == nil || !strings.Contains(err.Error(), "max.message.bytes of 20000") || !strings.Contains(err.Error(), "claim-check") {
		t.Fatalf("CheckSize over the topic's limit = %v, want a refusal naming max.message.bytes 20000", err)
	}
	if err := c.Publish(ctx, topic, big); err == nil {
		t.Fatal("the broker took what CheckSize refused")
	}
	small := handofftest.Msg("k", 2)
	small.Data = []byte(`"` + strings.Repeat("y", 10000) + `"`)
	if err := c.CheckSize(ctx, topic, small); err != nil {
		t.Fatalf("CheckSize under the limit: %v", err)
	}
	if err := c.Publish(ctx, topic, small); err != nil {
		t.Fatalf("Publish of what CheckSize passed: %v", err)
	}
}
