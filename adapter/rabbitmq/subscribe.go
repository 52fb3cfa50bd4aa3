package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/handoffhq/handoff"
)

// Subscribe consumes the group's queue and its retry queue until ctx is done,
// then returns nil. It declares the topology first (as Provision does), then
// takes the group's lease: of several members of one group only one consumes
// at a time; the others wait as standbys and take over when it stops or its
// connection dies. After a connection loss it reconnects with backoff; it
// returns an error only for a problem reconnecting cannot fix (permissions,
// a queue declared elsewhere with other arguments) or ErrClosed.
func (b *Broker) Subscribe(ctx context.Context, sub handoff.Subscription, deliver func(*handoff.Delivery)) error {
	n, err := b.names(sub)
	if err != nil {
		return fmt.Errorf("rabbitmq: subscribe %s/%s: %w", sub.Topic, sub.Group, err)
	}
	if deliver == nil {
		return fmt.Errorf("rabbitmq: subscribe %s/%s: deliver func is required", sub.Topic, sub.Group)
	}
	limit := sub.MaxInFlight
	if limit <= 0 {
		limit = DefaultMaxInFlight
	}
	limit = min(limit, maxPrefetch)
	bo := b.reconnectBackoff()
	failures := 0
	for {
		if b.isClosed() {
			return ErrClosed
		}
		s := &session{b: b, sub: sub, n: n, limit: limit, deliver: deliver, delays: map[int64]bool{}}
		consumed, err := s.run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrClosed) {
			return ErrClosed
		}
		if isFatal(err) {
			return fmt.Errorf("rabbitmq: subscribe %s/%s: %w", sub.Topic, sub.Group, err)
		}
		if consumed {
			failures = 0
		}
		failures++
		if failures == 1 || failures%10 == 0 {
			b.logger.Warn("rabbitmq: subscription lost its connection; reconnecting",
				"topic", sub.Topic, "group", sub.Group, "attempt", failures, "err", err)
		}
		if err := b.sleep(ctx, bo.Delay(failures)); err != nil {
			if errors.Is(err, ErrClosed) {
				return ErrClosed
			}
			return nil
		}
	}
}

// session is one connection's worth of a subscription.
type session struct {
	b       *Broker
	sub     handoff.Subscription
	n       names
	limit   int
	deliver func(*handoff.Delivery)

	conn    *amqp.Connection
	lockCh  *amqp.Channel
	mainCh  *amqp.Channel
	retryCh *amqp.Channel
	tags    map[*amqp.Channel]string

	mu      sync.RWMutex // settle calls hold it shared; shutdown exclusively
	stopped bool

	pubMu   sync.Mutex // guards pub, returns, delays
	pub     *amqp.Channel
	returns chan amqp.Return
	delays  map[int64]bool // delay buckets declared by this session
}

// run connects, declares, takes the lease and delivers until ctx is done or
// the connection is lost. consumed reports whether it got as far as consuming.
func (s *session) run(ctx context.Context) (consumed bool, err error) {
	conn, err := s.b.dial(ctx, "subscriber "+s.sub.Topic+"/"+s.sub.Group)
	if err != nil {
		return false, err
	}
	s.conn = conn
	defer conn.Close()
	lost := conn.NotifyClose(make(chan *amqp.Error, 1))

	ch, err := conn.Channel()
	if err != nil {
		return false, fmt.Errorf("open channel: %w", err)
	}
	if err := s.b.declare(ch, s.n); err != nil {
		return false, err
	}
	ch.Close()

	if err := s.acquireLease(ctx, lost); err != nil {
		return false, err
	}
	leaseLost := s.lockCh.NotifyCancel(make(chan string, 1))
	s.tags = map[*amqp.Channel]string{}
	defer s.shutdown()
	var mainDel, retryDel <-chan amqp.Delivery
	if s.mainCh, mainDel, err = s.consume(s.n.queue); err != nil {
		return false, err
	}
	if s.retryCh, retryDel, err = s.consume(s.n.retry); err != nil {
		return false, err
	}
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case <-s.b.closing:
			return true, ErrClosed
		case e := <-lost:
			return true, fmt.Errorf("connection lost: %w", closeErr(e))
		case <-leaseLost: // the lock queue was deleted
			return true, fmt.Errorf("lease %s lost: consumer cancelled by the broker", s.n.lock)
		case d, ok := <-mainDel:
			if !ok {
				return true, fmt.Errorf("consumer of %s stopped (channel closed or consumer cancelled by the broker)", s.n.queue)
			}
			s.deliver(s.delivery(d, s.mainCh))
		case d, ok := <-retryDel:
			if !ok {
				return true, fmt.Errorf("consumer of %s stopped (channel closed or consumer cancelled by the broker)", s.n.retry)
			}
			s.deliver(s.delivery(d, s.retryCh))
		}
	}
}

func closeErr(e *amqp.Error) error {
	if e == nil {
		return amqp.ErrClosed
	}
	return e
}

// acquireLease takes the group's lease: an exclusive consumer on the
// group's lock queue. RabbitMQ refuses a second exclusive consumer with
// ACCESS_REFUSED; the standby polls until the holder's consumer is gone.
func (s *session) acquireLease(ctx context.Context, lost <-chan *amqp.Error) error {
	delay := leasePollFirst
	standby := false
	for {
		ch, err := s.conn.Channel()
		if err != nil {
			return fmt.Errorf("open channel: %w", err)
		}
		_, err = ch.Consume(s.n.lock, "", true, true, false, false, nil)
		if err == nil {
			s.lockCh = ch
			if standby {
				s.b.logger.Info("rabbitmq: took over the group", "topic", s.sub.Topic, "group", s.sub.Group)
			}
			return nil
		}
		ch.Close()
		var ae *amqp.Error
		if !errors.As(err, &ae) || ae.Code != amqp.AccessRefused || !strings.Contains(ae.Reason, "exclusive") {
			return fmt.Errorf("take lease %s: %w", s.n.lock, err)
		}
		if !standby {
			standby = true
			s.b.logger.Info("rabbitmq: another member of the group is active; standing by",
				"topic", s.sub.Topic, "group", s.sub.Group)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-s.b.closing:
			t.Stop()
			return ErrClosed
		case e := <-lost:
			t.Stop()
			return fmt.Errorf("connection lost: %w", closeErr(e))
		case <-t.C:
		}
		delay = min(2*delay, leasePollMax)
	}
}

// consume opens a channel with prefetch = MaxInFlight and consumes q on it.
func (s *session) consume(q string) (*amqp.Channel, <-chan amqp.Delivery, error) {
	ch, err := s.conn.Channel()
	if err != nil {
		return nil, nil, fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Qos(s.limit, 0, false); err != nil {
		return nil, nil, fmt.Errorf("set prefetch on %s: %w", q, err)
	}
	tag := "handoff-" + handoff.NewID()
	del, err := ch.Consume(q, tag, false, false, false, false, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("consume %s: %w", q, err)
	}
	s.tags[ch] = tag
	return ch, del, nil
}

// shutdown stops deliveries, waits for settle calls in progress, and closes
// the channels: RabbitMQ requeues what is left unsettled, in queue order.
func (s *session) shutdown() {
	for ch, tag := range s.tags {
		ch.Cancel(tag, false)
	}
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	for ch := range s.tags {
		ch.Close()
	}
	s.pubMu.Lock()
	if s.pub != nil {
		s.pub.Close()
	}
	s.pubMu.Unlock()
	if s.lockCh != nil {
		s.lockCh.Close() // releases the lease last
	}
}

// delivery decodes d into a handoff.Delivery settled on ch.
func (s *session) delivery(d amqp.Delivery, ch *amqp.Channel) *handoff.Delivery {
	m, err := decode(d)
	if err != nil {
		err = fmt.Errorf("rabbitmq: decode delivery %s from %s: %w", d.MessageId, s.n.queue, err)
	}
	st := &settler{s: s, ch: ch, d: d, attempt: attemptOf(d.Headers), id: m.ID}
	return &handoff.Delivery{Message: m, Err: err, Topic: s.sub.Topic, Attempt: st.attempt, Settler: st}
}

// decode reads a message in CloudEvents binary mode from a delivery. On error
// the message holds what could be read, with the body in Data and the id
// taken from the message_id property when the header was missing.
func decode(d amqp.Delivery) (*handoff.Message, error) {
	h := make(map[string]string, len(d.Headers)+1)
	for k, v := range d.Headers {
		if s, ok := headerString(v); ok {
			h[k] = s
		}
	}
	if d.ContentType != "" {
		h[handoff.AMQPBinding.ContentType] = d.ContentType
	}
	m, err := handoff.AMQPBinding.DecodeMap(h, d.Body)
	if err != nil && m.ID == "" {
		m.ID = d.MessageId
	}
	return m, err
}

// headerString renders an AMQP header value as an attribute string. Other
// CloudEvents SDKs send time as an AMQP timestamp and some extensions as
// numbers or booleans.
func headerString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case []byte:
		return string(v), true
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano), true
	case bool, int, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64:
		return fmt.Sprint(v), true
	}
	return "", false
}

// attemptOf is the attempt header of a retried copy (1 when absent) plus
// the quorum queue's x-delivery-count: deliveries of this copy that were
// returned unsettled (a consumer stopped or died).
func attemptOf(h amqp.Table) int {
	a := 1
	if v, ok := toInt(h[AttemptHeader]); ok && v >= 1 {
		a = v
	}
	if v, ok := toInt(h["x-delivery-count"]); ok && v > 0 {
		a += v
	}
	return a
}

func toInt(v any) (int, bool) {
	switch v := v.(type) {
	case int:
		return v, true
	case int8:
		return int(v), true
	case int16:
		return int(v), true
	case int32:
		return int(v), true
	case int64:
		return int(v), true
	case uint8:
		return int(v), true
	case uint16:
		return int(v), true
	case uint32:
		return int(v), true
	case uint64:
		return int(v), true
	case string:
		n, err := strconv.Atoi(v)
		return n, err == nil
	}
	return 0, false
}

// settle runs f unless the session has stopped; shutdown waits for it.
func (s *session) settle(ch *amqp.Channel, f func() error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.stopped || ch.IsClosed() {
		return ErrStale
	}
	err := f()
	if errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("%w: %w", ErrStale, err)
	}
	return err
}

// publishCopy publishes a copy of d, with the attempt header set, to the
// delay queue of delay's bucket (or straight to the retry queue for a zero
// delay), and waits for its confirm.
func (s *session) publishCopy(ctx context.Context, d amqp.Delivery, attempt int, delay time.Duration) error {
	h := make(amqp.Table, len(d.Headers)+1)
	for k, v := range d.Headers {
		if k == "x-death" || k == "x-delivery-count" || k == delayHeader || strings.HasPrefix(k, "x-first-death-") || strings.HasPrefix(k, "x-last-death-") {
			continue // broker bookkeeping of the old copy
		}
		h[k] = v
	}
	h[AttemptHeader] = int32(attempt)
	p := amqp.Publishing{
		Headers: h, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding,
		DeliveryMode: amqp.Persistent, Priority: d.Priority, CorrelationId: d.CorrelationId,
		ReplyTo: d.ReplyTo, MessageId: d.MessageId, Timestamp: d.Timestamp, Type: d.Type,
		AppId: d.AppId, Body: d.Body,
	}
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	if s.pub == nil || s.pub.IsClosed() {
		ch, err := s.conn.Channel()
		if err == nil {
			err = ch.Confirm(false)
		}
		if err != nil {
			return fmt.Errorf("open confirm channel: %w", err)
		}
		s.pub, s.returns = ch, make(chan amqp.Return, 4)
		ch.NotifyReturn(s.returns)
		clear(s.delays) // declarations are per channel only in our cache's eyes; redeclaring is idempotent
	}
	// The routing key is always the retry queue: through the default exchange
	// at once, or kept by dead-lettering after the delay queue's TTL.
	ex, q := "", s.n.retry
	if delay > 0 {
		ms := delayBucket(delay)
		if !s.delays[ms] {
			if err := s.b.declareDelay(s.pub, ms); err != nil {
				return err
			}
			s.delays[ms] = true
		}
		ex, q = s.b.delayExchange(), s.b.delayQueue(ms)
		h[delayHeader] = strconv.FormatInt(ms, 10)
	}
	dc, err := s.pub.PublishWithDeferredConfirmWithContext(ctx, ex, s.n.retry, true, false, p)
	if err != nil {
		return fmt.Errorf("publish to %s: %w", q, err)
	}
	acked, err := dc.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("wait for confirm from %s: %w", q, err)
	}
	if !acked {
		if s.pub.IsClosed() {
			return fmt.Errorf("publish to %s: %w", q, amqp.ErrClosed)
		}
		return fmt.Errorf("publish to %s: %w", q, ErrNacked)
	}
	select {
	case r := <-s.returns:
		return fmt.Errorf("publish to %s (%s): %w", q, r.ReplyText, ErrUnroutable)
	default:
	}
	return nil
}

// settler settles one delivery on the channel it came from.
type settler struct {
	s       *session
	ch      *amqp.Channel
	d       amqp.Delivery
	attempt int
	id      string
	busy    atomic.Bool // a settle call is running or has succeeded
}

// Ack acknowledges the delivery (basic.ack; RabbitMQ does not confirm acks).
func (st *settler) Ack(ctx context.Context) error {
	if !st.busy.CompareAndSwap(false, true) {
		return fmt.Errorf("rabbitmq: ack %s: %w", st.id, ErrSettled)
	}
	err := st.s.settle(st.ch, func() error { return st.ch.Ack(st.d.DeliveryTag, false) })
	if err != nil {
		st.busy.Store(false)
		return fmt.Errorf("rabbitmq: ack %s: %w", st.id, err)
	}
	return nil
}

// Retry publishes a delayed copy with the next attempt number through the
// group's delay queue (TTL, then dead-lettered to the retry queue), waits
// for its confirm, then acknowledges the original.
func (st *settler) Retry(ctx context.Context, delay time.Duration) error {
	if delay > MaxRetryDelay {
		return fmt.Errorf("rabbitmq: retry %s after %v: %w (max %v)", st.id, delay, ErrDelayTooLong, MaxRetryDelay)
	}
	if !st.busy.CompareAndSwap(false, true) {
		return fmt.Errorf("rabbitmq: retry %s: %w", st.id, ErrSettled)
	}
	copied := false
	err := st.s.settle(st.ch, func() error {
		if err := st.s.publishCopy(ctx, st.d, st.attempt+1, delay); err != nil {
			return err
		}
		copied = true
		return st.ch.Ack(st.d.DeliveryTag, false)
	})
	if err != nil {
		if !copied { // nothing happened: the caller may settle again
			st.busy.Store(false)
		}
		return fmt.Errorf("rabbitmq: retry %s: %w", st.id, err)
	}
	return nil
}
