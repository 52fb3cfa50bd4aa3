package memory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/handoffhq/handoff"
)

// ErrClosed is returned by a closed Broker.
var ErrClosed = errors.New("memory: broker closed")

// Broker is an in-memory message broker. Each topic is an append-only log;
// each consumer group has its own cursor, its unsettled deliveries and its
// scheduled redeliveries. Members of one group share its messages. The zero
// value is not usable; call NewBroker.
type Broker struct {
	mu      sync.Mutex
	topics  map[string]*topic
	closed  bool
	maxSize int
}

type topic struct {
	log    []*handoff.Message
	groups map[string]*group
}

type group struct {
	next    int               // index in the log of the next first delivery
	ready   []redelivery      // redeliveries whose delay has passed, in due order
	pending map[*settler]bool // delivered, not yet settled
	wake    chan struct{}     // closed and replaced when work arrives
}

type redelivery struct {
	msg     *handoff.Message
	attempt int
}

// Option configures a Broker.
type Option func(*Broker) error

// WithMaxMessageSize makes Publish refuse messages larger than n bytes
// (handoff.Message.Size). Zero means no limit.
func WithMaxMessageSize(n int) Option {
	return func(b *Broker) error {
		if n < 0 {
			return fmt.Errorf("memory: WithMaxMessageSize(%d): must be ≥ 0", n)
		}
		b.maxSize = n
		return nil
	}
}

// NewBroker returns an empty broker.
func NewBroker(opts ...Option) (*Broker, error) {
	b := &Broker{topics: make(map[string]*topic)}
	for _, o := range opts {
		if err := o(b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Close stops all subscriptions. Publishing afterwards fails with ErrClosed.
func (b *Broker) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, t := range b.topics {
		for _, g := range t.groups {
			g.signal()
		}
	}
	return nil
}

func (g *group) signal() {
	close(g.wake)
	g.wake = make(chan struct{})
}

func (b *Broker) topic(name string) *topic {
	t := b.topics[name]
	if t == nil {
		t = &topic{groups: make(map[string]*group)}
		b.topics[name] = t
	}
	return t
}

func (t *topic) group(name string) *group {
	g := t.groups[name]
	if g == nil {
		// A new group starts at the beginning of the log, as a new durable
		// consumer with DeliverAll does.
		g = &group{pending: make(map[*settler]bool), wake: make(chan struct{})}
		t.groups[name] = g
	}
	return g
}

// Publish appends msgs to the topic's log. All are validated first: if one is
// invalid or too large, none is published.
func (b *Broker) Publish(ctx context.Context, topicName string, msgs ...*handoff.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: publish to %s: %w", topicName, err)
	}
	if topicName == "" {
		return errors.New("memory: publish: topic is required")
	}
	for _, m := range msgs {
		if err := m.Validate(); err != nil {
			return fmt.Errorf("memory: publish to %s: %w", topicName, err)
		}
		if err := handoff.CheckSize(m, b.maxSize); err != nil {
			return fmt.Errorf("memory: publish to %s: %w", topicName, err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	t := b.topic(topicName)
	for _, m := range msgs {
		t.log = append(t.log, m.Clone())
	}
	for _, g := range t.groups {
		g.signal()
	}
	return nil
}

// Redeliver hands msgs to one group of the topic, and to no other: they go
// to the head of the group's redeliveries, with Attempt 1 (the group is
// created if it is new, and then also gets the topic's log, as a new group
// does). All are validated first.
func (b *Broker) Redeliver(ctx context.Context, topicName, group string, msgs ...*handoff.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: redeliver to %s/%s: %w", topicName, group, err)
	}
	if topicName == "" || group == "" {
		return errors.New("memory: redeliver: topic and group are required")
	}
	for _, m := range msgs {
		if err := m.Validate(); err != nil {
			return fmt.Errorf("memory: redeliver to %s/%s: %w", topicName, group, err)
		}
		if err := handoff.CheckSize(m, b.maxSize); err != nil {
			return fmt.Errorf("memory: redeliver to %s/%s: %w", topicName, group, err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	g := b.topic(topicName).group(group)
	for _, m := range msgs {
		g.ready = append(g.ready, redelivery{msg: m.Clone(), attempt: 1})
	}
	g.signal()
	return nil
}

// CheckSize reports whether Publish would refuse m for its size
// (outbox.WithBrokerLimit).
func (b *Broker) CheckSize(ctx context.Context, topic string, m *handoff.Message) error {
	return handoff.CheckSize(m, b.maxSize)
}

// Provision creates the group so that it receives messages published from now
// on. (Groups start at the beginning of the log anyway; this exists for
// symmetry with brokers that need it.)
func (b *Broker) Provision(ctx context.Context, sub handoff.Subscription) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.topic(sub.Topic).group(sub.Group)
	return nil
}

// Subscribe delivers the group's messages until ctx is done. Deliveries left
// unsettled when it returns are redelivered to the group at once.
func (b *Broker) Subscribe(ctx context.Context, sub handoff.Subscription, deliver func(*handoff.Delivery)) error {
	if sub.Topic == "" || sub.Group == "" {
		return errors.New("memory: subscribe: Subscription.Topic and Subscription.Group are required")
	}
	limit := sub.MaxInFlight
	if limit <= 0 {
		limit = 1000
	}
	b.mu.Lock()
	g := b.topic(sub.Topic).group(sub.Group)
	t := b.topics[sub.Topic]
	b.mu.Unlock()

	mine := make(map[*settler]bool)
	defer func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for s := range mine {
			if g.pending[s] {
				delete(g.pending, s)
				s.done = true
				g.ready = append(g.ready, redelivery{msg: s.msg, attempt: s.attempt + 1})
			}
		}
		g.signal()
	}()

	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return nil
		}
		// Forget settled deliveries of this subscriber.
		inflight := 0
		for s := range mine {
			if g.pending[s] {
				inflight++
			} else {
				delete(mine, s)
			}
		}
		var d *handoff.Delivery
		if inflight < limit {
			var rd redelivery
			switch {
			case len(g.ready) > 0:
				rd = g.ready[0]
				g.ready = g.ready[1:]
			case g.next < len(t.log):
				rd = redelivery{msg: t.log[g.next], attempt: 1}
				g.next++
			}
			if rd.msg != nil {
				s := &settler{b: b, g: g, msg: rd.msg, attempt: rd.attempt}
				g.pending[s] = true
				mine[s] = true
				d = &handoff.Delivery{Message: rd.msg.Clone(), Topic: sub.Topic, Attempt: rd.attempt, Settler: s}
			}
		}
		wake := g.wake
		b.mu.Unlock()
		if d != nil {
			deliver(d)
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
	}
}

type settler struct {
	b       *Broker
	g       *group
	msg     *handoff.Message
	attempt int
	done    bool
}

var errSettled = errors.New("memory: delivery already settled")

func (s *settler) Ack(ctx context.Context) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.done {
		return errSettled
	}
	s.done = true
	delete(s.g.pending, s)
	s.g.signal()
	return nil
}

func (s *settler) Retry(ctx context.Context, delay time.Duration) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.done {
		return errSettled
	}
	s.done = true
	delete(s.g.pending, s)
	s.g.signal()
	rd := redelivery{msg: s.msg, attempt: s.attempt + 1}
	g, b := s.g, s.b
	time.AfterFunc(delay, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		g.ready = append(g.ready, rd)
		g.signal()
	})
	return nil
}
