package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/handoffhq/handoff"
)

// pubChan is a confirm-mode channel with its return listener. It is used by
// one Publish call at a time.
type pubChan struct {
	conn    *amqp.Connection
	ch      *amqp.Channel
	returns chan amqp.Return
	closed  chan *amqp.Error // the reason, when the broker closes the channel
}

// pubConn returns the publishing connection, dialling (with backoff, until
// ctx is done) when there is none or it was lost.
func (b *Broker) pubConn(ctx context.Context) (*amqp.Connection, error) {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	if b.isClosed() {
		return nil, ErrClosed
	}
	if b.conn != nil && !b.conn.IsClosed() {
		return b.conn, nil
	}
	lost := b.conn != nil
	b.conn, b.idle, b.declared = nil, nil, nil
	bo := b.reconnectBackoff()
	for attempt := 1; ; attempt++ {
		c, err := b.dial(ctx, "publisher")
		if err == nil {
			if lost || attempt > 1 {
				b.logger.Info("rabbitmq: publisher connected", "attempt", attempt)
			}
			b.conn, b.declared = c, map[string]bool{}
			return c, nil
		}
		if isFatal(err) {
			return nil, err
		}
		if attempt == 1 || attempt%10 == 0 {
			b.logger.Warn("rabbitmq: publisher cannot connect; retrying", "attempt", attempt, "err", err)
		}
		if serr := b.sleep(ctx, bo.Delay(attempt)); serr != nil {
			return nil, fmt.Errorf("%w (gave up reconnecting: %w)", err, serr)
		}
	}
}

// getChan takes a publishing channel from the pool, opening one if needed.
func (b *Broker) getChan(ctx context.Context) (*pubChan, error) {
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.closing:
		return nil, ErrClosed
	}
	conn, err := b.pubConn(ctx)
	if err != nil {
		<-b.sem
		return nil, err
	}
	b.pmu.Lock()
	for len(b.idle) > 0 {
		pc := b.idle[len(b.idle)-1]
		b.idle = b.idle[:len(b.idle)-1]
		if pc.conn == conn && !pc.ch.IsClosed() {
			b.pmu.Unlock()
			return pc, nil
		}
	}
	b.pmu.Unlock()
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		<-b.sem
		return nil, fmt.Errorf("open confirm channel: %w", err)
	}
	pc := &pubChan{conn: conn, ch: ch, returns: make(chan amqp.Return, confirmWindow+16), closed: make(chan *amqp.Error, 1)}
	ch.NotifyReturn(pc.returns)
	ch.NotifyClose(pc.closed)
	return pc, nil
}

// putChan gives a channel back to the pool, or drops it when it is unusable.
func (b *Broker) putChan(pc *pubChan, ok bool) {
	b.pmu.Lock()
	if ok && b.conn == pc.conn && !pc.ch.IsClosed() {
		b.idle = append(b.idle, pc)
	} else {
		pc.ch.Close()
	}
	b.pmu.Unlock()
	<-b.sem
}

// ensureExchange declares the topic's exchange once per connection.
func (b *Broker) ensureExchange(pc *pubChan, ex string) error {
	b.pmu.Lock()
	done := b.conn == pc.conn && b.declared[ex]
	b.pmu.Unlock()
	if done {
		return nil
	}
	if err := declareExchange(pc.ch, ex); err != nil {
		return err
	}
	b.track(ex)
	b.pmu.Lock()
	if b.conn == pc.conn && b.declared != nil {
		b.declared[ex] = true
	}
	b.pmu.Unlock()
	return nil
}

// checkMessage applies the adapter's rules on top of Message.Validate.
func (b *Broker) checkMessage(m *handoff.Message) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if err := handoff.CheckSize(m, b.maxSize); err != nil {
		return err
	}
	if len(m.Type) > 255 {
		return &handoff.ValidationError{ID: m.ID, Attribute: "type", Rule: "must be at most 255 bytes (it is the AMQP routing key)"}
	}
	return nil
}

// publishing maps a message to an AMQP publishing in CloudEvents binary mode.
func publishing(m *handoff.Message) amqp.Publishing {
	h := handoff.AMQPBinding.Headers(m)
	delete(h, handoff.AMQPBinding.ContentType) // sent as the content-type property
	t := make(amqp.Table, len(h))
	for k, v := range h {
		t[k] = v
	}
	p := amqp.Publishing{
		Headers:      t,
		ContentType:  m.DataContentType,
		DeliveryMode: amqp.Persistent,
		MessageId:    m.ID,
		Body:         m.Data,
	}
	if !m.Time.IsZero() {
		p.Timestamp = m.Time
	}
	return p
}

// Publish sends msgs to the topic's exchange and returns once RabbitMQ has
// confirmed every one (for quorum queues: stored on a majority). Messages
// are validated first; an invalid or oversize one fails the call before
// anything is sent. A message routed to no queue fails the call with
// ErrUnroutable, and one refused by the broker with ErrNacked, each naming
// the message id; the other messages of the call may have been published.
func (b *Broker) Publish(ctx context.Context, topic string, msgs ...*handoff.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rabbitmq: publish to %s: %w", topic, err)
	}
	ex, err := b.exchangeName(topic)
	if err != nil {
		return fmt.Errorf("rabbitmq: publish: %w", err)
	}
	for _, m := range msgs {
		if err := b.checkMessage(m); err != nil {
			return fmt.Errorf("rabbitmq: publish to %s: %w", topic, err)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	pc, err := b.getChan(ctx)
	if err != nil {
		return fmt.Errorf("rabbitmq: publish to %s: %w", topic, err)
	}
	ok := false
	defer func() { b.putChan(pc, ok) }()
	if err := b.ensureExchange(pc, ex); err != nil {
		return fmt.Errorf("rabbitmq: publish to %s: %w", topic, err)
	}
	for start := 0; start < len(msgs); start += confirmWindow {
		if err := publishWindow(ctx, pc, ex, msgs[start:min(start+confirmWindow, len(msgs))]); err != nil {
			ok = errors.Is(err, ErrUnroutable) || errors.Is(err, ErrNacked)
			return fmt.Errorf("rabbitmq: publish to %s: %w", topic, err)
		}
	}
	ok = true
	return nil
}

// publishWindow publishes msgs asynchronously and waits for all their
// confirms. The broker sends basic.return before the basic.ack of the same
// message, and amqp091 hands the return to our buffered channel before it
// processes the ack: once every confirm is in, every return is in pc.returns.
func publishWindow(ctx context.Context, pc *pubChan, ex string, msgs []*handoff.Message) error {
	return publishWindowTo(ctx, pc, ex, "", msgs)
}

// publishWindowTo is publishWindow with a fixed routing key (when not
// empty) instead of each message's type.
func publishWindowTo(ctx context.Context, pc *pubChan, ex, key string, msgs []*handoff.Message) error {
	dcs := make([]*amqp.DeferredConfirmation, len(msgs))
	for i, m := range msgs {
		rk := key
		if rk == "" {
			rk = m.Type
		}
		dc, err := pc.ch.PublishWithDeferredConfirmWithContext(ctx, ex, rk, true, false, publishing(m))
		if err != nil {
			if pc.ch.IsClosed() {
				err = pc.closeReason()
			}
			return fmt.Errorf("send %s: %w", m.ID, err)
		}
		dcs[i] = dc
	}
	var nacked error
	for i, dc := range dcs {
		acked, err := dc.WaitContext(ctx)
		if err != nil {
			return fmt.Errorf("wait for confirm of %s: %w", msgs[i].ID, err)
		}
		if !acked && nacked == nil {
			if pc.ch.IsClosed() {
				return fmt.Errorf("confirm of %s: channel closed before the broker confirmed: %w", msgs[i].ID, pc.closeReason())
			}
			nacked = fmt.Errorf("%s: %w", msgs[i].ID, ErrNacked)
		}
	}
	var returned []amqp.Return
	for drained := false; !drained; {
		select {
		case r := <-pc.returns:
			returned = append(returned, r)
		default:
			drained = true
		}
	}
	if len(returned) > 0 {
		return fmt.Errorf("%s (%d of %d messages) returned by the broker (%s): %w",
			returned[0].MessageId, len(returned), len(msgs), returned[0].ReplyText, ErrUnroutable)
	}
	return nacked
}

// restartPublisher drops the publishing connection (tests: a connection loss).
func (b *Broker) restartPublisher() {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	if b.conn != nil {
		b.conn.Close()
	}
}

// closeReason is why the broker closed the channel (for example a message
// over the server's max_message_size), or amqp.ErrClosed.
func (pc *pubChan) closeReason() error {
	select {
	case e, ok := <-pc.closed:
		if ok && e != nil {
			return e
		}
	case <-time.After(time.Second): // the reason follows the close closely
	}
	return amqp.ErrClosed
}

// Redeliver sends msgs to group of topic, and to no other group: straight
// to the group's own queue through the default exchange (the topology is
// declared first, as Provision does), with publisher confirms. The
// messages keep their ids; RabbitMQ does not deduplicate, so there is no
// duplicate answer to tell apart. It returns once RabbitMQ confirmed every
// one.
func (b *Broker) Redeliver(ctx context.Context, topic, group string, msgs ...*handoff.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("rabbitmq: redeliver to %s/%s: %w", topic, group, err)
	}
	n, err := b.names(handoff.Subscription{Topic: topic, Group: group})
	if err != nil {
		return fmt.Errorf("rabbitmq: redeliver to %s/%s: %w", topic, group, err)
	}
	for _, m := range msgs {
		if err := b.checkMessage(m); err != nil {
			return fmt.Errorf("rabbitmq: redeliver to %s/%s: %w", topic, group, err)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	pc, err := b.getChan(ctx)
	if err != nil {
		return fmt.Errorf("rabbitmq: redeliver to %s/%s: %w", topic, group, err)
	}
	ok := false
	defer func() { b.putChan(pc, ok) }()
	b.pmu.Lock()
	done := b.conn == pc.conn && b.declared["queue "+n.queue]
	b.pmu.Unlock()
	if !done {
		if err := b.declare(pc.ch, n); err != nil {
			return fmt.Errorf("rabbitmq: redeliver to %s/%s: %w", topic, group, err)
		}
		b.pmu.Lock()
		if b.conn == pc.conn && b.declared != nil {
			b.declared["queue "+n.queue] = true
			b.declared[n.exchange] = true
		}
		b.pmu.Unlock()
	}
	for start := 0; start < len(msgs); start += confirmWindow {
		if err := publishWindowTo(ctx, pc, "", n.queue, msgs[start:min(start+confirmWindow, len(msgs))]); err != nil {
			ok = errors.Is(err, ErrUnroutable) || errors.Is(err, ErrNacked)
			return fmt.Errorf("rabbitmq: redeliver to %s/%s: %w", topic, group, err)
		}
	}
	ok = true
	return nil
}

// CheckSize reports whether Publish would refuse m for its size (over
// WithMaxMessageSize; RabbitMQ does not announce its max_message_size, so
// set the option to the server's value if it was changed from 128 MiB).
// outbox.WithBrokerLimit uses it.
func (b *Broker) CheckSize(ctx context.Context, topic string, m *handoff.Message) error {
	return handoff.CheckSize(m, b.maxSize)
}

// Check reports whether the broker can be reached: nil when the publishing
// connection is up or can be opened within a few seconds, else why not.
// relay.Relay calls it at start and while the broker is down, to log the
// outage with its cause.
func (b *Broker) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := b.pubConn(ctx); err != nil {
		return fmt.Errorf("rabbitmq: %s: %w", redactURL(b.url), err)
	}
	return nil
}

// redactURL hides the password of an AMQP URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
