package nats

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/handoffhq/handoff"
)

// Provision creates the subscription's stream and durable consumer, so that
// a group exists before anything is published. (A new group starts from the
// first retained message anyway; Subscribe provisions too.)
func (c *Client) Provision(ctx context.Context, sub handoff.Subscription) error {
	_, err := c.ensureConsumer(ctx, sub)
	return err
}

func (c *Client) maxInFlight(sub handoff.Subscription) int {
	if sub.MaxInFlight > 0 {
		return sub.MaxInFlight
	}
	return c.cfg.maxInFlight
}

// ensureConsumer creates or updates the group's durable pull consumer.
func (c *Client) ensureConsumer(ctx context.Context, sub handoff.Subscription) (jetstream.Consumer, error) {
	if err := validTopic(sub.Topic); err != nil {
		return nil, fmt.Errorf("nats: subscribe: %w", err)
	}
	if sub.Group == "" {
		return nil, errors.New("nats: subscribe: Subscription.Group is required")
	}
	if sub.MaxInFlight < 0 {
		return nil, fmt.Errorf("nats: subscribe %s/%s: Subscription.MaxInFlight %d must not be negative", sub.Topic, sub.Group, sub.MaxInFlight)
	}
	for try := 0; ; try++ {
		stream, err := c.ensureStream(ctx, sub.Topic)
		if err != nil {
			return nil, err
		}
		cfg := jetstream.ConsumerConfig{
			Durable:       c.ConsumerName(sub.Topic, sub.Group),
			Description:   "handoff group " + sub.Group + " on " + sub.Topic,
			DeliverPolicy: jetstream.DeliverAllPolicy,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       c.cfg.ackWait,
			MaxDeliver:    -1,
			MaxAckPending: c.maxInFlight(sub),
			FilterSubject: sub.Topic,
		}
		// Leave an existing consumer alone when it already has the settings
		// wanted: JetStream 2.9 rewinds a consumer's delivery state on some
		// updates, even those that change nothing.
		if cons, err := c.js.Consumer(ctx, stream, cfg.Durable); err == nil {
			have := cons.CachedInfo().Config
			if have.MaxAckPending == cfg.MaxAckPending && have.AckWait == cfg.AckWait &&
				have.FilterSubject == cfg.FilterSubject && have.AckPolicy == cfg.AckPolicy {
				return cons, nil
			}
		}
		cons, err := c.js.CreateOrUpdateConsumer(ctx, stream, cfg)
		if errors.Is(err, jetstream.ErrStreamNotFound) && try == 0 {
			c.forget(sub.Topic) // deleted behind our back: create it again
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("nats: consumer %s on stream %s: %w", cfg.Durable, stream, err)
		}
		return cons, nil
	}
}

// Subscribe delivers the group's messages until ctx is done, then returns
// nil. It consumes, with Consume, the group's durable pull consumer of the
// topic's stream (one per topic and group; members of a group share it) and
// the group's replay consumer (see ReplayStream), which brings the dead
// letters replayed to this group only. Deliveries unsettled when it returns
// are nak'd with a 1ms delay, so the server redelivers them promptly;
// settling them later returns ErrSettled. It survives reconnects and server
// restarts; it returns an error when a consumer cannot be set up, when the
// connection is closed for good, or when a consumer was deleted.
func (c *Client) Subscribe(ctx context.Context, sub handoff.Subscription, deliver func(*handoff.Delivery)) error {
	if deliver == nil {
		return errors.New("nats: subscribe: deliver is nil")
	}
	cons, err := c.ensureConsumer(ctx, sub)
	if err == nil {
		var rcons jetstream.Consumer
		if rcons, err = c.ensureReplayConsumer(ctx, sub); err == nil {
			return c.subscribe(ctx, sub, deliver, []source{
				{cons: cons, stream: c.StreamName(sub.Topic), name: c.ConsumerName(sub.Topic, sub.Group)},
				{cons: rcons, stream: ReplayStream, name: replayConsumerName(sub.Topic, sub.Group)},
			})
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// source is one consumer a subscription consumes.
type source struct {
	cons         jetstream.Consumer
	stream, name string
}

func (c *Client) subscribe(ctx context.Context, sub handoff.Subscription, deliver func(*handoff.Delivery), srcs []source) error {
	s := &subscription{
		c:         c,
		sub:       sub,
		unsettled: make(map[*settler]struct{}),
		wake:      make(chan struct{}, 1),
		srcs:      srcs,
		epoch:     c.nc.Stats().Reconnects,
		settled:   map[string]map[uint64]bool{},
		acking:    map[*settler]struct{}{},
	}
	if len(srcs) > 0 {
		s.mainCons = srcs[0].name
		_, s.mainShared = c.streamFor(sub.Topic)
	}
	stopBeats := make(chan struct{})
	beatsDone := make(chan struct{}, 2)
	go func() {
		defer func() { beatsDone <- struct{}{} }()
		s.heartbeats(stopBeats)
	}()
	go func() {
		defer func() { beatsDone <- struct{}{} }()
		s.watchReconnects(stopBeats)
	}()
	defer func() {
		close(stopBeats)
		<-beatsDone
		<-beatsDone
		s.mu.Lock()
		s.resyncGen++ // a resync still running changes nothing now
		if s.holdTimer != nil {
			s.holdTimer.Stop()
		}
		s.mu.Unlock()
	}()

	cctx, stopConsuming := context.WithCancel(ctx)
	defer stopConsuming()
	errc := make(chan error, len(srcs))
	var wg sync.WaitGroup
	for _, src := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.consume(cctx, src); err != nil {
				errc <- err
			}
		}()
	}
	err := s.loop(ctx, errc, deliver)
	stopConsuming()
	wg.Wait() // each consumption drained: what was on the wire is queued
	s.shutdown()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// consume runs Consume on one consumer until ctx is done (then drains it and
// returns nil), resuming when consumption stops by itself; it returns an
// error when the connection is closed for good or the consumer was deleted.
func (s *subscription) consume(ctx context.Context, src source) error {
	c, sub := s.c, s.sub
	batch := min(c.maxInFlight(sub), 500)
	backoff := 100 * time.Millisecond
	cons := src.cons
	for {
		cc, err := cons.Consume(s.receive,
			jetstream.PullMaxMessages(batch),
			jetstream.PullHeartbeat(consumeHeartbeat),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				c.cfg.log.Warn("nats: consume", "topic", sub.Topic, "group", sub.Group, "consumer", src.name, "err", err)
			}))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("nats: subscribe %s/%s: consume %s: %w", sub.Topic, sub.Group, src.name, err)
		}
		select {
		case <-ctx.Done():
			cc.Drain() // messages already on the wire still reach receive
			select {
			case <-cc.Closed():
			case <-time.After(2 * time.Second):
				cc.Stop()
			}
			return nil
		case <-cc.Closed():
		}
		// Consumption ended without our asking (consumer deleted, ...).
		if c.nc.IsClosed() {
			return fmt.Errorf("nats: subscribe %s/%s: %w", sub.Topic, sub.Group, jetstream.ErrConnectionClosed)
		}
		// Go on if the consumer still exists; if it was deleted, say so
		// rather than create it again, which would replay the stream.
		c.cfg.log.Warn("nats: consumption stopped; resuming", "topic", sub.Topic, "group", sub.Group, "consumer", src.name)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			cons, err = c.js.Consumer(ctx, src.stream, src.name)
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
				return fmt.Errorf("nats: subscribe %s/%s: consumer %s on stream %s was deleted: %w", sub.Topic, sub.Group, src.name, src.stream, err)
			}
			if err == nil {
				break
			}
			if c.nc.IsClosed() {
				return fmt.Errorf("nats: subscribe %s/%s: %w", sub.Topic, sub.Group, jetstream.ErrConnectionClosed)
			}
			c.cfg.log.Warn("nats: look up consumer", "topic", sub.Topic, "group", sub.Group, "consumer", src.name, "err", err)
		}
	}
}

// consumeHeartbeat is the idle heartbeat asked of the server in each pull
// request. It bounds how long a consumption can go without a pull request
// waiting at the server: when neither a message nor a heartbeat came for
// twice this long, nats.go pulls again.
//
// That happens. nats.go's Consume renews its pull requests only from its
// message handler, and skips the renewal while it is still sending the
// previous request; when the last messages the server may send for that
// request arrive before it finished sending (a goroutine descheduled under
// load), no request is left and none is sent, and with the default
// heartbeat (half of the 30s expiry) nothing was delivered for 30s
// (nats.go v1.55.0 and v1.56.0, pullSubscription.checkPending and
// fetchInProgress). A pull request the server drops (MaxWaiting reached)
// ends the same way. The cost: a heartbeat a second from the server per
// idle consumption.
const consumeHeartbeat = time.Second

// subscription is one running Subscribe call.
type subscription struct {
	c   *Client
	sub handoff.Subscription

	mu        sync.Mutex
	queue     []*settler            // received, not yet handed to deliver, in order
	unsettled map[*settler]struct{} // received (queued or delivered), not settled
	stopped   bool
	received  uint64        // count of messages received, numbering them
	wake      chan struct{} // signalled when the queue grows

	// After a reconnect (resync.go).
	srcs       []source
	mainCons   string // the topic's consumer (the first source)
	mainShared bool   // its stream holds other topics too
	epoch      uint64 // nc's reconnect count last seen
	resyncGen  uint64
	holding    bool                       // deliveries are held until lost ones are back
	lost       map[uint64]bool            // stream sequences of the main source not back yet
	lostKnown  bool                       // lost is complete
	arrived    []uint64                   // main-source sequences received before lost was known
	holdTimer  *time.Timer                // ends a hold after AckWait and a grace
	settled    map[string]map[uint64]bool // consumer → sequences settled here
	acking     map[*settler]struct{}      // acks not confirmed yet
}

// receive runs on nats.go's dispatch goroutine, in the server's order. It
// never blocks: the server sends at most MaxAckPending unsettled messages.
func (s *subscription) receive(m jetstream.Msg) {
	st := &settler{s: s, msg: m, beat: time.Now()}
	if meta, err := m.Metadata(); err == nil {
		st.sseq, st.cons, st.delivered = meta.Sequence.Stream, meta.Consumer, meta.NumDelivered
	}
	s.mu.Lock()
	s.received++
	st.n = s.received
	if s.stopped {
		s.mu.Unlock()
		_ = m.Nak() // arrived while shutting down: let another member have it now
		return
	}
	s.checkEpoch()
	s.noteReceived(st)
	s.queue = append(s.queue, st)
	s.unsettled[st] = struct{}{}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// loop hands queued messages to deliver until ctx is done (nil) or a
// consumption fails for good (its error).
func (s *subscription) loop(ctx context.Context, errc <-chan error, deliver func(*handoff.Delivery)) error {
	for {
		if ctx.Err() != nil {
			return nil
		}
		s.mu.Lock()
		var st *settler
		if len(s.queue) > 0 && !s.holding {
			st = s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
		}
		s.mu.Unlock()
		if st != nil {
			deliver(s.delivery(st))
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case err := <-errc:
			return err
		}
	}
}

func (s *subscription) delivery(st *settler) *handoff.Delivery {
	d := &handoff.Delivery{Topic: s.sub.Topic, Attempt: 1, Settler: st}
	if st.delivered > 0 {
		d.Attempt = int(st.delivered)
	}
	d.Message, d.Err = decode(st.msg.Headers(), st.msg.Data())
	if d.Err != nil {
		d.Err = fmt.Errorf("nats: decode message on %s: %w", st.msg.Subject(), d.Err)
	}
	return d
}

// heartbeats tells the server that deliveries unsettled for more than half
// of AckWait are still being worked on, so that a message held back by the
// runtime (behind an earlier one of its key) is not redelivered meanwhile.
func (s *subscription) heartbeats(stop <-chan struct{}) {
	wait := s.c.cfg.ackWait
	t := time.NewTicker(wait / 4)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			var due []jetstream.Msg
			s.mu.Lock()
			for st := range s.unsettled {
				if now.Sub(st.beat) >= wait/2 {
					st.beat = now
					due = append(due, st.msg)
				}
			}
			s.mu.Unlock()
			for _, m := range due {
				_ = m.InProgress() // a lost signal only means an early redelivery
			}
		}
	}
}

// shutdown, once consumption stopped, naks every unsettled delivery so the
// server redelivers it promptly instead of after AckWait.
func (s *subscription) shutdown() {
	s.mu.Lock()
	s.stopped = true
	sts := make([]*settler, 0, len(s.unsettled))
	for st := range s.unsettled {
		st.done = true
		sts = append(sts, st)
	}
	clear(s.unsettled)
	slices.SortFunc(sts, func(a, b *settler) int { return cmp.Compare(a.n, b.n) })
	left := make([]jetstream.Msg, len(sts))
	for i, st := range sts {
		left[i] = st.msg
	}
	s.queue = nil
	s.mu.Unlock()
	// A nak with a tiny delay rather than a plain one: JetStream 2.9 loses
	// or duplicates redeliveries that become due while no pull request is
	// waiting (nats-io/nats.net.v1#812); the delay lets the next member's
	// pull request arrive first when it is quick.
	for _, m := range left {
		_ = m.NakWithDelay(time.Millisecond)
	}
	if len(left) > 0 && !s.c.nc.IsClosed() {
		if s.c.nc.FlushTimeout(2*time.Second) == nil && !s.c.server29() {
			// The server queues delayed naks for redelivery on a 10ms timer:
			// wait for it, so that the next member of the group gets them
			// before messages published after this return.
			time.Sleep(shutdownSettle)
		}
	}
}

// shutdownSettle is how long Subscribe waits, after its naks reached the
// server, for them to be due for redelivery.
const shutdownSettle = 30 * time.Millisecond

// server29 reports whether the connected server is older than 2.10.
func (c *Client) server29() bool {
	var major, minor int
	if _, err := fmt.Sscanf(c.nc.ConnectedServerVersion(), "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major < 2 || major == 2 && minor < 10
}

// settler settles one delivery.
type settler struct {
	s    *subscription
	msg  jetstream.Msg
	beat time.Time // last reset of the server's ack timer; guarded by s.mu
	done bool      // guarded by s.mu
	n    uint64    // receive order within the subscription
	// From the delivery's metadata.
	sseq      uint64 // stream sequence
	cons      string // consumer name
	delivered uint64 // delivery count
}

func (st *settler) settle() error {
	st.s.mu.Lock()
	defer st.s.mu.Unlock()
	if st.done {
		return ErrSettled
	}
	st.done = true
	delete(st.s.unsettled, st)
	st.s.noteSettled(st)
	return nil
}

func (st *settler) id() string {
	if id := st.msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
		return id
	}
	if meta, err := st.msg.Metadata(); err == nil {
		return fmt.Sprintf("stream sequence %d", meta.Sequence.Stream)
	}
	return "?"
}

// Ack acknowledges the delivery and waits for the server to confirm it.
func (st *settler) Ack(ctx context.Context) error {
	if err := st.settle(); err != nil {
		return fmt.Errorf("nats: ack %s: %w", st.id(), err)
	}
	st.s.mu.Lock()
	st.s.acking[st] = struct{}{}
	st.s.mu.Unlock()
	err := st.msg.DoubleAck(ctx)
	st.s.mu.Lock()
	delete(st.s.acking, st)
	if err != nil {
		// Maybe not acked: after a reconnect it counts as lost.
		delete(st.s.settled[st.cons], st.sseq)
	}
	st.s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("nats: ack %s: %w", st.id(), err)
	}
	return nil
}

// Retry naks the delivery with a delay (NakWithDelay): the server
// redelivers it no sooner than delay from now, with the delivery count one
// higher. It returns once the nak reached the server (a flush).
func (st *settler) Retry(ctx context.Context, delay time.Duration) error {
	if err := st.settle(); err != nil {
		return fmt.Errorf("nats: retry %s: %w", st.id(), err)
	}
	if delay < time.Millisecond {
		delay = time.Millisecond // a plain nak: NakWithDelay(0) sends one
	}
	if err := st.msg.NakWithDelay(delay); err != nil {
		return fmt.Errorf("nats: retry %s: %w", st.id(), err)
	}
	fctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(ctx, st.s.c.cfg.publishTimeout)
		defer cancel()
	}
	if err := st.s.c.nc.FlushWithContext(fctx); err != nil {
		return fmt.Errorf("nats: retry %s: flush: %w", st.id(), err)
	}
	return nil
}
