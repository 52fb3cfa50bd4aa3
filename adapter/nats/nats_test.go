package nats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/natsserver"
	"github.com/handoffhq/handoff/handofftest"
	"github.com/handoffhq/handoff/internal/testenv"
)

const waitFor = 20 * time.Second

// testServer is a NATS server a test runs against.
type testServer struct {
	url string
	emb *natsserver.Server
}

// externalServer is the local NATS (testenv); restart forces the client to
// reconnect, since the test cannot restart a shared server.
func externalServer(t testing.TB) *testServer {
	t.Helper()
	return &testServer{url: testenv.NATSURL(t)}
}

// embeddedServer starts a server in a temp dir; restart shuts it down and
// starts it again on the same dir and port.
func embeddedServer(t testing.TB, opts ...natsserver.Option) *testServer {
	t.Helper()
	e, err := natsserver.Start(t.TempDir(), opts...)
	if err != nil {
		t.Fatalf("natsserver.Start: %v", err)
	}
	t.Cleanup(e.Shutdown)
	return &testServer{url: e.URL(), emb: e}
}

var servers = []struct {
	name  string
	start func(t testing.TB) *testServer
}{
	{"External", func(t testing.TB) *testServer { return externalServer(t) }},
	{"Embedded", func(t testing.TB) *testServer { return embeddedServer(t) }},
}

// connect returns a Client on srv; its streams are deleted at cleanup.
func connect(t testing.TB, srv *testServer, opts ...Option) (*Client, *natsgo.Conn) {
	t.Helper()
	nc, err := Connect(srv.url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(nc, opts...)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.mu.Lock()
		streams := map[string]bool{}
		for _, s := range c.ensured {
			streams[s] = true
		}
		var replays []string
		for name := range c.replayCons {
			replays = append(replays, name)
		}
		c.mu.Unlock()
		if srv.emb == nil {
			for s := range streams {
				if err := c.js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
					t.Logf("delete stream %s: %v", s, err)
				}
			}
			// The replay stream is shared; the test's replay consumers are its own.
			for _, name := range replays {
				if err := c.js.DeleteConsumer(ctx, ReplayStream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
					t.Logf("delete replay consumer %s: %v", name, err)
				}
			}
		}
		nc.Close()
	})
	return c, nc
}

func waitConnected(t testing.TB, nc *natsgo.Conn, since uint64) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !(nc.IsConnected() && nc.Reconnects > since) {
		if time.Now().After(deadline) {
			t.Fatalf("connection not back within %v (status %v)", waitFor, nc.Status())
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

func transport(t testing.TB, srv *testServer) handofftest.Transport {
	c, nc := connect(t, srv)
	return handofftest.Transport{
		Publisher:  c,
		Subscriber: c,
		Restart: func(t testing.TB) {
			t.Helper()
			before := nc.Stats().Reconnects
			if srv.emb != nil {
				if err := srv.emb.Restart(); err != nil {
					t.Fatalf("restart embedded server: %v", err)
				}
			} else if err := nc.ForceReconnect(); err != nil {
				t.Fatalf("ForceReconnect: %v", err)
			}
			waitConnected(t, nc, before)
		},
	}
}

func TestConformance(t *testing.T) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			f := handofftest.Features{Ordered: true, Durable: true, Groups: true, MaxMessageSize: 1 << 20}
			handofftest.RunTransport(t, func(t testing.TB) handofftest.Transport {
				return transport(t, s.start(t))
			}, f)
		})
	}
}

// sub runs Subscribe in the background; its deliveries arrive on the channel.
func sub(t testing.TB, c *Client, s handoff.Subscription) <-chan *handoff.Delivery {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan *handoff.Delivery, 1000)
	done := make(chan error, 1)
	go func() { done <- c.Subscribe(ctx, s, func(d *handoff.Delivery) { ch <- d }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Subscribe returned %v", err)
			}
		case <-time.After(waitFor):
			t.Errorf("Subscribe did not return after cancel")
		}
	})
	return ch
}

func next(t testing.TB, ch <-chan *handoff.Delivery) *handoff.Delivery {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(waitFor):
		t.Fatalf("no delivery within %v", waitFor)
		return nil
	}
}

func msg(n int) *handoff.Message {
	return handofftest.Msg(fmt.Sprintf("k%d", n), n)
}

func pub(t testing.TB, c *Client, topic string, msgs ...*handoff.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.Publish(ctx, topic, msgs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func consumerInfo(t testing.TB, c *Client, topic, group string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	cons, err := c.js.Consumer(ctx, c.StreamName(topic), c.ConsumerName(topic, group))
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	return info
}

func streamMsgs(t testing.TB, c *Client, topic string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	st, err := c.js.Stream(ctx, c.StreamName(topic))
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

func settle(t testing.TB, d *handoff.Delivery, retry time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var err error
	if retry > 0 {
		err = d.Settler.Retry(ctx, retry)
	} else {
		err = d.Settler.Ack(ctx)
	}
	if err != nil {
		t.Fatalf("settle %s: %v", d.Message.ID, err)
	}
}

func eachServer(t *testing.T, f func(t *testing.T, srv *testServer)) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) { f(t, s.start(t)) })
	}
}

// Retry must use NakWithDelay: a plain nak would have the server redeliver
// at once, ahead of a message published after the nak reached it.
func TestRetry_UsesBrokerDelay(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *testServer) {
		c, _ := connect(t, srv)
		topic, group := testenv.Unique("retry."), "g"
		ch := sub(t, c, handoff.Subscription{Topic: topic, Group: group})
		m1, m2 := msg(1), msg(2)
		pub(t, c, topic, m1)
		d := next(t, ch)
		settle(t, d, time.Hour) // returns after the nak reached the server
		pub(t, c, topic, m2)
		d2 := next(t, ch)
		if d2.Message.ID != m2.ID {
			t.Fatalf("got %s (attempt %d) before the marker: the retry was not delayed", d2.Message.ID, d2.Attempt)
		}
		settle(t, d2, 0)
		info := consumerInfo(t, c, topic, group)
		if info.NumAckPending != 1 || info.NumRedelivered != 0 || info.Delivered.Consumer != 2 {
			t.Fatalf("consumer state: ack pending %d, redelivered %d, deliveries %d; want 1, 0, 2 (retried message held by the server)",
				info.NumAckPending, info.NumRedelivered, info.Delivered.Consumer)
		}
	})
}

// A retried message comes back with the next attempt although the in-flight
// window is full: redeliveries are not starved behind MaxInFlight.
func TestRetry_RedeliveryNotStarvedByMaxInFlight(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *testServer) {
		c, _ := connect(t, srv)
		topic, group := testenv.Unique("starve."), "g"
		a, b, cc := msg(1), msg(2), msg(3)
		pub(t, c, topic, a, b, cc)
		ch := sub(t, c, handoff.Subscription{Topic: topic, Group: group, MaxInFlight: 2})
		da, db := next(t, ch), next(t, ch)
		if da.Message.ID != a.ID || db.Message.ID != b.ID {
			t.Fatalf("first deliveries %s, %s; want %s, %s", da.Message.ID, db.Message.ID, a.ID, b.ID)
		}
		settle(t, da, 20*time.Millisecond) // b stays unsettled: the window stays full
		d := next(t, ch)
		if d.Message.ID != a.ID || d.Attempt != 2 {
			t.Fatalf("got %s attempt %d; want %s attempt 2", d.Message.ID, d.Attempt, a.ID)
		}
		if info := consumerInfo(t, c, topic, group); info.NumAckPending != 2 || info.Config.MaxAckPending != 2 {
			t.Fatalf("ack pending %d, MaxAckPending %d; want 2, 2", info.NumAckPending, info.Config.MaxAckPending)
		}
		settle(t, d, 0)
		if d := next(t, ch); d.Message.ID != cc.ID || d.Attempt != 1 {
			t.Fatalf("got %s attempt %d; want %s attempt 1", d.Message.ID, d.Attempt, cc.ID)
		}
		settle(t, db, 0)
	})
}

func TestPublish_DuplicateIDStoredOnce(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *testServer) {
		c, _ := connect(t, srv)
		topic := testenv.Unique("dup.")
		m := msg(1)
		pub(t, c, topic, m)
		pub(t, c, topic, m.Clone())            // a relay re-publishing after a crash
		pub(t, c, topic, m.Clone(), m.Clone()) // twice in one call
		pub(t, c, topic, msg(2))
		if n := streamMsgs(t, c, topic); n != 2 {
			t.Fatalf("stream holds %d messages, want 2", n)
		}
		ctx := context.Background()
		st, err := c.js.Stream(ctx, c.StreamName(topic))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.CachedInfo().Config.Duplicates; got != DefaultDuplicateWindow {
			t.Fatalf("Duplicates = %v, want %v", got, DefaultDuplicateWindow)
		}
	})
}

func TestSubscribe_MaxInFlightIsMaxAckPending(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *testServer) {
		c, _ := connect(t, srv)
		topic, group := testenv.Unique("window."), "g"
		var msgs []*handoff.Message
		for i := range 10 {
			msgs = append(msgs, msg(i))
		}
		pub(t, c, topic, msgs...)
		ch := sub(t, c, handoff.Subscription{Topic: topic, Group: group, MaxInFlight: 3})
		var got []*handoff.Delivery
		for range 3 {
			got = append(got, next(t, ch))
		}
		info := consumerInfo(t, c, topic, group)
		if info.Config.MaxAckPending != 3 || info.NumAckPending != 3 || info.Delivered.Consumer != 3 || info.NumPending != 7 {
			t.Fatalf("MaxAckPending %d, ack pending %d, delivered %d, pending %d; want 3, 3, 3, 7",
				info.Config.MaxAckPending, info.NumAckPending, info.Delivered.Consumer, info.NumPending)
		}
		for i, d := range got {
			if d.Message.ID != msgs[i].ID {
				t.Fatalf("delivery %d is %s, want %s", i, d.Message.ID, msgs[i].ID)
			}
			settle(t, d, 0)
		}
		for i := 3; i < 10; i++ {
			d := next(t, ch)
			if d.Message.ID != msgs[i].ID {
				t.Fatalf("delivery %d is %s, want %s", i, d.Message.ID, msgs[i].ID)
			}
			settle(t, d, 0)
		}
	})
}

// When no pull request of the subscription is left at the server, although
// nats.go believes one is, deliveries resume within seconds, not after 30s
// (twice nats.go's default heartbeat). nats.go's Consume gets there by a
// race under load (see consumeHeartbeat; CI failed
// TestSubscribe_MaxInFlightIsMaxAckPending so). The test forces the same
// state: the consumer takes one waiting request, another client's holds the
// place, and the server drops the subscription's request.
func TestSubscribe_ResumesWhenItsPullRequestIsLost(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *testServer) {
		c, nc := connect(t, srv)
		topic, group := testenv.Unique("lostpull."), "g"
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		stream, err := c.ensureStream(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		// The consumer Subscribe would make, but with MaxWaiting 1 (Subscribe
		// keeps an existing consumer whose other settings it wants).
		if _, err := c.js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
			Durable:       c.ConsumerName(topic, group),
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       c.cfg.ackWait,
			MaxDeliver:    -1,
			MaxAckPending: c.maxInFlight(handoff.Subscription{}),
			MaxWaiting:    1,
			FilterSubject: topic,
		}); err != nil {
			t.Fatal(err)
		}
		// Another member's pull request holds the one place.
		nextSubj := "$JS.API.CONSUMER.MSG.NEXT." + stream + "." + c.ConsumerName(topic, group)
		pulls, err := nc.SubscribeSync(nextSubj) // sees the pull requests sent
		if err != nil {
			t.Fatal(err)
		}
		defer pulls.Unsubscribe()
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		inbox := nc.NewInbox()
		other, err := nc.SubscribeSync(inbox)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Unsubscribe()
		if err := nc.PublishRequest(nextSubj, inbox, []byte(`{"batch":1,"expires":120000000000}`)); err != nil {
			t.Fatal(err)
		}
		if _, err := pulls.NextMsg(waitFor); err != nil {
			t.Fatalf("the other member's pull request: %v", err)
		}
		ch := sub(t, c, handoff.Subscription{Topic: topic, Group: group})
		if _, err := pulls.NextMsg(waitFor); err != nil {
			t.Fatalf("the subscription's pull request: %v", err)
		}
		// The server handles a consumer's pull requests in order: once it
		// answered one sent after the subscription's (on the same
		// connection), it dropped the subscription's.
		probe, err := nc.Request(nextSubj, []byte(`{"batch":1,"no_wait":true}`), waitFor)
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		if st := probe.Header.Get("Status"); st != "404" {
			t.Fatalf("probe answered with status %q, want 404 (no messages)", st)
		}
		if info := consumerInfo(t, c, topic, group); info.NumWaiting != 1 {
			t.Fatalf("%d pull requests waiting, want the other member's alone", info.NumWaiting)
		}
		m1, m2 := msg(1), msg(2)
		pub(t, c, topic, m1) // to the other member, the only one waiting
		got, err := other.NextMsg(waitFor)
		if err != nil {
			t.Fatalf("the other member got nothing: %v", err)
		}
		if id := got.Header.Get(jetstream.MsgIDHeader); id != m1.DedupKey() {
			t.Fatalf("the other member got %q, want %s", id, m1.DedupKey())
		}
		if err := got.Ack(); err != nil {
			t.Fatal(err)
		}
		pub(t, c, topic, m2)
		d := next(t, ch)
		if d.Message.ID != m2.ID {
			t.Fatalf("got %s, want %s", d.Message.ID, m2.ID)
		}
		settle(t, d, 0)
	})
}

func TestPublish_OverMaxPayloadRefused(t *testing.T) {
	srv := embeddedServer(t, natsserver.WithMaxPayload(4096))
	c, _ := connect(t, srv)
	topic, group := testenv.Unique("big."), "g"
	ch := sub(t, c, handoff.Subscription{Topic: topic, Group: group})
	big := msg(1)
	big.DataContentType = "application/octet-stream"
	big.Data = bytes.Repeat([]byte("x"), 4000) // under the limit alone, over it with the headers
	small := msg(2)
	err := c.Publish(context.Background(), topic, small, big)
	var ve *handoff.ValidationError
	if !errors.As(err, &ve) || ve.ID != big.ID || !strings.Contains(err.Error(), big.ID) || !strings.Contains(err.Error(), "max_payload of 4096") {
		t.Fatalf("Publish = %v; want a ValidationError naming %s and max_payload", err, big.ID)
	}
	pub(t, c, topic, msg(3))
	d := next(t, ch)
	if d.Message.Data == nil || d.Message.ID == small.ID {
		t.Fatalf("message %s of the refused call was published", small.ID)
	}
	settle(t, d, 0)
	if n := streamMsgs(t, c, topic); n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
}

func TestRefusesBadInput(t *testing.T) {
	srv := embeddedServer(t)
	c, _ := connect(t, srv)
	for _, topic := range []string{"", "a..b", "orders.*", "orders.>", "a b", ".a"} {
		if err := c.Publish(context.Background(), topic, msg(1)); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("Publish(%q) = %v, want ErrInvalidTopic", topic, err)
		}
	}
	m := msg(1)
	m.Subject = "line\r\nbreak"
	var ve *handoff.ValidationError
	if err := c.Publish(context.Background(), "ok", m); !errors.As(err, &ve) || ve.Attribute != "subject" {
		t.Errorf("Publish(subject with CRLF) = %v, want a ValidationError on subject", err)
	}
	nop := func(*handoff.Delivery) {}
	if err := c.Subscribe(context.Background(), handoff.Subscription{Topic: "a.*", Group: "g"}, nop); !errors.Is(err, ErrInvalidTopic) {
		t.Errorf("Subscribe(wildcard topic) = %v, want ErrInvalidTopic", err)
	}
	if err := c.Subscribe(context.Background(), handoff.Subscription{Topic: "a"}, nop); err == nil || !strings.Contains(err.Error(), "Group") {
		t.Errorf("Subscribe(no group) = %v, want an error naming Group", err)
	}
	if err := c.Subscribe(context.Background(), handoff.Subscription{Topic: "a", Group: "g", MaxInFlight: -1}, nop); err == nil || !strings.Contains(err.Error(), "MaxInFlight") {
		t.Errorf("Subscribe(MaxInFlight -1) = %v, want an error naming MaxInFlight", err)
	}
	c.Close()
	if err := c.Publish(context.Background(), "ok", msg(1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
}

// A message that is not a CloudEvent is delivered with Err, body intact,
// and can be acked.
func TestSubscribe_UndecodableDeliveredWithErr(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *testServer) {
		c, nc := connect(t, srv)
		topic, group := testenv.Unique("raw."), "g"
		ch := sub(t, c, handoff.Subscription{Topic: topic, Group: group})
		if _, err := c.ensureStream(context.Background(), topic); err != nil {
			t.Fatal(err)
		}
		js := c.JetStream()
		if _, err := js.PublishMsg(context.Background(), &natsgo.Msg{Subject: topic, Data: []byte("not an event"),
			Header: natsgo.Header{"ce-time": []string{"yesterday"}}}); err != nil {
			t.Fatal(err)
		}
		_ = nc
		d := next(t, ch)
		if d.Err == nil || !errors.Is(d.Err, handoff.ErrInvalid) {
			t.Fatalf("Err = %v, want a handoff.ErrInvalid", d.Err)
		}
		if string(d.Message.Data) != "not an event" || d.Attempt != 1 {
			t.Fatalf("Data %q attempt %d; want the body, attempt 1", d.Message.Data, d.Attempt)
		}
		settle(t, d, 0)
		good := msg(1)
		pub(t, c, topic, good)
		if d := next(t, ch); d.Err != nil || d.Message.ID != good.ID {
			t.Fatalf("after the bad message got %v %v", d.Err, d.Message.ID)
		}
	})
}

// A delivery held unsettled longer than AckWait is kept alive with
// InProgress, so the server does not redeliver it.
func TestSubscribe_InProgressKeepsHeldDelivery(t *testing.T) {
	srv := embeddedServer(t)
	const ackWait = 400 * time.Millisecond
	c, _ := connect(t, srv, WithAckWait(ackWait))
	topic, group := testenv.Unique("held."), "g"
	ch := sub(t, c, handoff.Subscription{Topic: topic, Group: group})
	m := msg(1)
	pub(t, c, topic, m)
	held := next(t, ch)
	// Let three AckWaits pass on the server's clock (the precondition of the
	// test, not a synchronisation), then send a marker through.
	<-time.After(3 * ackWait)
	marker := msg(2)
	pub(t, c, topic, marker)
	if d := next(t, ch); d.Message.ID != marker.ID {
		t.Fatalf("got %s attempt %d, want the marker: the held delivery expired", d.Message.ID, d.Attempt)
	} else {
		settle(t, d, 0)
	}
	if info := consumerInfo(t, c, topic, group); info.NumRedelivered != 0 || info.NumAckPending != 1 {
		t.Fatalf("redelivered %d, ack pending %d; want 0, 1", info.NumRedelivered, info.NumAckPending)
	}
	settle(t, held, 0)
}

// WithStream puts several topics in one stream; each group's consumer
// filters its topic.
func TestWithStream_SharedStream(t *testing.T) {
	srv := embeddedServer(t)
	stream := testenv.Unique("SHOP_")
	prefix := testenv.Unique("shop")
	c, _ := connect(t, srv, WithStream(stream, prefix+".>"))
	ta, tb := prefix+".orders", prefix+".payments"
	if c.StreamName(ta) != stream || c.StreamName("other") == stream {
		t.Fatalf("StreamName: %q, %q", c.StreamName(ta), c.StreamName("other"))
	}
	cha := sub(t, c, handoff.Subscription{Topic: ta, Group: "g"})
	chb := sub(t, c, handoff.Subscription{Topic: tb, Group: "g"})
	ma, mb := msg(1), msg(2)
	pub(t, c, ta, ma)
	pub(t, c, tb, mb)
	if d := next(t, cha); d.Message.ID != ma.ID || d.Topic != ta {
		t.Fatalf("topic %s got %s", ta, d.Message.ID)
	} else {
		settle(t, d, 0)
	}
	if d := next(t, chb); d.Message.ID != mb.ID {
		t.Fatalf("topic %s got %s", tb, d.Message.ID)
	} else {
		settle(t, d, 0)
	}
	if n := streamMsgs(t, c, ta); n != 2 {
		t.Fatalf("shared stream holds %d, want 2", n)
	}
}

func TestEmbedded_DataSurvivesRestartOnSameDir(t *testing.T) {
	dir := t.TempDir()
	e, err := natsserver.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	if strings.HasSuffix(e.URL(), ":4222") {
		t.Fatalf("embedded server took the default port: %s", e.URL())
	}
	c, _ := connect(t, &testServer{url: e.URL(), emb: e})
	topic := testenv.Unique("keep.")
	pub(t, c, topic, msg(1), msg(2))
	if _, err := natsserver.Start(dir); !errors.Is(err, natsserver.ErrDirInUse) {
		t.Fatalf("second server on the same dir: %v, want ErrDirInUse", err)
	}
	e.Shutdown()

	e2, err := natsserver.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e2.Shutdown)
	c2, _ := connect(t, &testServer{url: e2.URL(), emb: e2})
	if n := streamMsgs(t, c2, topic); n != 2 {
		t.Fatalf("after restart the stream holds %d messages, want 2", n)
	}
}

func TestOptions_Validated(t *testing.T) {
	nc := &natsgo.Conn{}
	for _, o := range []Option{
		WithAckWait(0), WithDuplicateWindow(time.Millisecond), WithMaxInFlight(0), WithPublishTimeout(0),
		WithReplicas(0), WithMaxAge(-1), WithStream("", "a"), WithStream("a.b", "a"), WithStream("S"),
		WithStream("S", "a..b"), WithStream("S", "a.>.b"), WithLogger(nil),
	} {
		if _, err := New(nc, o); err == nil || !strings.HasPrefix(err.Error(), "nats: With") {
			t.Errorf("option accepted or error unnamed: %v", err)
		}
	}
	if _, err := New(nil); err == nil {
		t.Error("New(nil) accepted")
	}
}

func TestSubjectRule(t *testing.T) {
	for _, tc := range []struct {
		s    string
		wild bool
		ok   bool
	}{
		{"orders", false, true},
		{"orders.placed.v1", false, true},
		{"orders-eu_1", false, true},
		{"", false, false},
		{"a..b", false, false},
		{"a.", false, false},
		{".a", false, false},
		{"a b", false, false},
		{"a\tb", false, false},
		{"a.*", false, false},
		{"a.>", false, false},
		{"a.*", true, true},
		{"a.>", true, true},
		{">", true, true},
		{"a.>.b", true, false},
		{"a.b*", true, false},
	} {
		if got := subjectRule(tc.s, tc.wild) == ""; got != tc.ok {
			t.Errorf("subjectRule(%q, %v) ok = %v, want %v (%s)", tc.s, tc.wild, got, tc.ok, subjectRule(tc.s, tc.wild))
		}
	}
}

func TestSubjectMatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"a", "a", true},
		{"a", "a.b", false},
		{"a.*", "a.b", true},
		{"a.*", "a.b.c", false},
		{"a.>", "a.b.c", true},
		{"a.>", "a", false},
		{">", "x", true},
		{"*.b", "a.b", true},
		{"*.b", "a.c", false},
	} {
		if got := subjectMatch(tc.p, tc.s); got != tc.want {
			t.Errorf("subjectMatch(%q, %q) = %v, want %v", tc.p, tc.s, got, tc.want)
		}
	}
}

func TestSafeName(t *testing.T) {
	for _, tc := range []struct{ in, prefix string }{
		{"orders", "orders"},
		{"orders.placed", "orders_placed_"},
		{"a/b\\c d*>", "a_b_c_d___"},
	} {
		got := safeName(tc.in)
		if validStreamName(got) != nil || !strings.HasPrefix(got, tc.prefix) || (tc.in == tc.prefix) != (got == tc.in) {
			t.Errorf("safeName(%q) = %q", tc.in, got)
		}
	}
	if safeName("a.b") == safeName("a_b") {
		t.Error(`"a.b" and "a_b" share a stream name`)
	}
	if n := safeName(strings.Repeat("x", 500)); len(n) > 200 || validStreamName(n) != nil {
		t.Errorf("long name %q", n)
	}
}

func FuzzDecode(f *testing.F) {
	good := handoff.NATSBinding.Headers(handofftest.Msg("k", 1))
	var b strings.Builder
	for k, v := range good {
		fmt.Fprintf(&b, "%s: %s\n", k, v)
	}
	f.Add(b.String(), []byte(`{"n":1}`))
	f.Add("ce-time: nope\nce-id: x\n", []byte("x"))
	f.Add("", []byte(nil))
	f.Fuzz(func(t *testing.T, headers string, body []byte) {
		h := natsgo.Header{}
		for _, line := range strings.Split(headers, "\n") {
			k, v, _ := strings.Cut(line, ": ")
			h[k] = append(h[k], v)
		}
		m, err := decode(h, body)
		if m == nil {
			t.Fatal("nil message")
		}
		if !bytes.Equal(m.Data, body) {
			t.Fatalf("Data %q, want the body %q", m.Data, body)
		}
		if err == nil {
			if verr := m.Validate(); verr != nil {
				t.Fatalf("decoded without error but invalid: %v", verr)
			}
		}
	})
}

// Stopping a subscription naks its unsettled deliveries: the next member
// of the group gets each once, with the next attempt, long before AckWait.
func TestSubscribe_ShutdownReturnsUnsettled(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *testServer) {
		c, _ := connect(t, srv, WithAckWait(time.Hour))
		topic, group := testenv.Unique("stop."), "g"
		msgs := []*handoff.Message{msg(1), msg(2), msg(3), msg(4)}
		pub(t, c, topic, msgs...)
		ctx, cancel := context.WithCancel(context.Background())
		ch := make(chan *handoff.Delivery, 10)
		done := make(chan error, 1)
		go func() {
			done <- c.Subscribe(ctx, handoff.Subscription{Topic: topic, Group: group}, func(d *handoff.Delivery) { ch <- d })
		}()
		var kept []*handoff.Delivery
		for i := range msgs {
			d := next(t, ch)
			if i%2 == 0 {
				settle(t, d, 0)
			} else {
				kept = append(kept, d)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Subscribe = %v", err)
		}
		if err := kept[0].Settler.Ack(context.Background()); !errors.Is(err, ErrSettled) {
			t.Fatalf("Ack after the subscription returned = %v, want ErrSettled", err)
		}
		ch2 := sub(t, c, handoff.Subscription{Topic: topic, Group: group})
		marker := msg(5)
		pub(t, c, topic, marker)
		want := map[string]int{msgs[1].ID: 2, msgs[3].ID: 2, marker.ID: 1}
		for range 3 {
			d := next(t, ch2)
			if a, ok := want[d.Message.ID]; !ok || a != d.Attempt {
				t.Fatalf("got %s attempt %d; want the unsettled two with attempt 2 and the marker (%v)", d.Message.ID, d.Attempt, want)
			}
			delete(want, d.Message.ID)
			settle(t, d, 0)
		}
		if info := consumerInfo(t, c, topic, group); info.NumAckPending != 0 || info.NumPending != 0 {
			t.Fatalf("ack pending %d, pending %d; want 0, 0", info.NumAckPending, info.NumPending)
		}
	})
}

// Many retries at once: each message comes back exactly once more, with
// attempt 2 (JetStream 2.9 mishandles several plain naks in a row).
func TestRetry_ManyAtOnce(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *testServer) {
		c, _ := connect(t, srv)
		topic, group := testenv.Unique("many."), "g"
		var msgs []*handoff.Message
		for i := range 20 {
			msgs = append(msgs, msg(i))
		}
		pub(t, c, topic, msgs...)
		ch := sub(t, c, handoff.Subscription{Topic: topic, Group: group})
		for range msgs {
			settle(t, next(t, ch), 5*time.Millisecond)
		}
		seen := map[string]int{}
		for range msgs {
			d := next(t, ch)
			if d.Attempt != 2 {
				t.Fatalf("%s: attempt %d, want 2", d.Message.ID, d.Attempt)
			}
			seen[d.Message.ID]++
			settle(t, d, 0)
		}
		for _, m := range msgs {
			if seen[m.ID] != 1 {
				t.Fatalf("%s redelivered %d times, want 1", m.ID, seen[m.ID])
			}
		}
		marker := msg(99)
		pub(t, c, topic, marker)
		if d := next(t, ch); d.Message.ID != marker.ID {
			t.Fatalf("got %s attempt %d, want the marker", d.Message.ID, d.Attempt)
		}
	})
}

// A running subscription survives a restart of the server: nats.go
// reconnects and Consume pulls again; messages published after the
// restart arrive, and unsettled ones are still settleable or redelivered.
func TestSubscribe_SurvivesServerRestart(t *testing.T) {
	srv := embeddedServer(t)
	c, nc := connect(t, srv)
	topic, group := testenv.Unique("restart."), "g"
	ch := sub(t, c, handoff.Subscription{Topic: topic, Group: group})
	m1 := msg(1)
	pub(t, c, topic, m1)
	settle(t, next(t, ch), 0)

	before := nc.Stats().Reconnects
	if err := srv.emb.Restart(); err != nil {
		t.Fatal(err)
	}
	waitConnected(t, nc, before)
	m2 := msg(2)
	pub(t, c, topic, m2)
	d := next(t, ch)
	if d.Message.ID != m2.ID || d.Attempt != 1 {
		t.Fatalf("after restart got %s attempt %d, want %s attempt 1", d.Message.ID, d.Attempt, m2.ID)
	}
	settle(t, d, 0)
}

// Deleting the group's consumer under a running subscription ends it with
// an error saying so (re-creating it would replay the whole stream).
func TestSubscribe_ConsumerDeletedReturnsError(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *testServer) {
		c, _ := connect(t, srv)
		topic, group := testenv.Unique("gone."), "g"
		s := handoff.Subscription{Topic: topic, Group: group}
		done := make(chan error, 1)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		got := make(chan *handoff.Delivery, 1)
		go func() { done <- c.Subscribe(ctx, s, func(d *handoff.Delivery) { got <- d }) }()
		pub(t, c, topic, msg(1))
		settle(t, next(t, got), 0)
		if err := c.js.DeleteConsumer(ctx, c.StreamName(topic), c.ConsumerName(topic, group)); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "was deleted") {
				t.Fatalf("Subscribe = %v, want an error saying the consumer was deleted", err)
			}
		case <-time.After(waitFor):
			t.Fatal("Subscribe still running after its consumer was deleted")
		}
	})
}

// A stream an operator created for the topic's subjects is used as it is.
func TestPublish_UsesExistingStream(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *testServer) {
		c, _ := connect(t, srv)
		prefix := testenv.Unique("pre")
		stream := testenv.Unique("OPS_")
		ctx := context.Background()
		if _, err := c.js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{prefix + ".>"}, Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.js.DeleteStream(context.Background(), stream) })
		topic := prefix + ".orders"
		ch := sub(t, c, handoff.Subscription{Topic: topic, Group: "g"})
		m := msg(1)
		pub(t, c, topic, m)
		if d := next(t, ch); d.Message.ID != m.ID {
			t.Fatalf("got %s, want %s", d.Message.ID, m.ID)
		} else {
			settle(t, d, 0)
		}
		if got := c.StreamName(topic); got != stream {
			t.Fatalf("StreamName = %q, want the existing %q", got, stream)
		}
		st, err := c.js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		if info := st.CachedInfo(); info.State.Msgs != 1 || info.State.Consumers != 1 || info.Config.Storage != jetstream.MemoryStorage {
			t.Fatalf("existing stream: %d messages, %d consumers, storage %v; want 1, 1, memory (left as it was)",
				info.State.Msgs, info.State.Consumers, info.Config.Storage)
		}
		if _, err := c.js.Stream(ctx, safeName(topic)); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatalf("a stream of its own was created for %s: %v", topic, err)
		}
	})
}

// A call with more messages than the client's async window (4096) waits for
// room instead of failing.
func TestPublish_BatchLargerThanAsyncWindow(t *testing.T) {
	c, _ := connect(t, embeddedServer(t))
	topic := testenv.Unique("wide.")
	msgs := make([]*handoff.Message, 10000)
	for i := range msgs {
		msgs[i] = msg(i)
	}
	pub(t, c, topic, msgs...)
	if n := streamMsgs(t, c, topic); n != uint64(len(msgs)) {
		t.Fatalf("stream holds %d messages, want %d", n, len(msgs))
	}
}
