package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/internal/backoff"
)

var (
	// ErrClosed is returned by a closed Broker.
	ErrClosed = errors.New("rabbitmq: broker closed")
	// ErrUnroutable is returned (wrapped, naming the message id) by Publish
	// when the broker returned a mandatory message because no queue is bound
	// to the topic's exchange: no group of the topic has been provisioned.
	ErrUnroutable = errors.New("rabbitmq: message routed to no queue (no group provisioned for the topic)")
	// ErrNacked is returned (wrapped, naming the message id) by Publish when
	// the broker refused a message with a negative publisher confirm.
	ErrNacked = errors.New("rabbitmq: message refused by the broker (publisher nack)")
	// ErrName is returned when a topic or group cannot be mapped to
	// RabbitMQ names.
	ErrName = errors.New("rabbitmq: invalid name")
	// ErrStale is returned by a settle call whose delivery came over a
	// channel that has closed since (subscription stopped or connection
	// lost). The broker redelivers such a message by itself.
	ErrStale = errors.New("rabbitmq: delivery's channel is closed; the broker redelivers the message")
	// ErrSettled is returned by a second settle call on one delivery.
	ErrSettled = errors.New("rabbitmq: delivery already settled")
	// ErrDelayTooLong is returned by Retry for a delay over MaxRetryDelay.
	ErrDelayTooLong = errors.New("rabbitmq: retry delay too long")
)

// MaxRetryDelay is the longest delay Retry accepts (about 24.8 days): the
// largest delay bucket that fits RabbitMQ's x-message-ttl.
const MaxRetryDelay = time.Duration(1<<31) * time.Millisecond

const (
	// DefaultMaxInFlight is the prefetch used when Subscription.MaxInFlight is zero.
	DefaultMaxInFlight = 256
	// DefaultMaxMessageSize is RabbitMQ's own default max_message_size (128 MiB).
	DefaultMaxMessageSize = 128 << 20
	// AttemptHeader carries the delivery attempt of a retried copy.
	AttemptHeader = "handoff-attempt"

	sep            = "/"
	confirmWindow  = 1024 // messages published before waiting for their confirms
	maxPrefetch    = 65535
	maxNameLen     = 255
	dialTimeout    = 10 * time.Second
	leasePollFirst = 50 * time.Millisecond
	leasePollMax   = time.Second
)

// Broker is a RabbitMQ publisher and subscriber. Publish uses one connection
// with a small pool of confirm-mode channels; each Subscribe call uses a
// connection of its own. Both reconnect by themselves after a connection
// loss. A Broker is safe for concurrent use.
type Broker struct {
	url          string
	prefix       string
	maxSize      int
	pubChannels  int
	logger       *slog.Logger
	reconnectMax time.Duration
	name         string

	closing   chan struct{}
	closeOnce sync.Once

	pmu      sync.Mutex // guards conn, declared, idle
	conn     *amqp.Connection
	declared map[string]bool // exchanges declared on conn
	idle     []*pubChan
	sem      chan struct{} // one token per publishing channel

	// Names of everything declared, for tests that clean up after themselves.
	tmu        sync.Mutex
	queues     map[string]bool
	exchanges  map[string]bool
	onDial     func(net.Conn) // test hook: sees every TCP connection made
	onDialLock sync.Mutex
}

// Option configures a Broker.
type Option func(*Broker) error

// WithPrefix sets the prefix of every exchange and queue name the adapter
// declares (default "handoff."). It must not start with "amq.".
func WithPrefix(p string) Option {
	return func(b *Broker) error {
		if strings.HasPrefix(p, "amq.") {
			return fmt.Errorf("rabbitmq: WithPrefix(%q): must not start with the reserved \"amq.\"", p)
		}
		if len(p) > 100 {
			return fmt.Errorf("rabbitmq: WithPrefix(%q): must be at most 100 bytes", p)
		}
		b.prefix = p
		return nil
	}
}

// WithMaxMessageSize makes Publish refuse, before sending anything, a message
// larger than n bytes (handoff.Message.Size). The default is RabbitMQ's own
// default max_message_size, 128 MiB; set it to the server's value if that
// was changed. Zero means no limit on the client side.
func WithMaxMessageSize(n int) Option {
	return func(b *Broker) error {
		if n < 0 {
			return fmt.Errorf("rabbitmq: WithMaxMessageSize(%d): must be ≥ 0", n)
		}
		b.maxSize = n
		return nil
	}
}

// WithPublishChannels sets how many Publish calls run at once, each on its
// own confirm-mode channel (default 4). Further calls wait for a channel.
func WithPublishChannels(n int) Option {
	return func(b *Broker) error {
		if n < 1 || n > 1024 {
			return fmt.Errorf("rabbitmq: WithPublishChannels(%d): must be in [1, 1024]", n)
		}
		b.pubChannels = n
		return nil
	}
}

// WithLogger sets the logger for connection losses and reconnects (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(b *Broker) error {
		if l == nil {
			return errors.New("rabbitmq: WithLogger(nil): logger is required")
		}
		b.logger = l
		return nil
	}
}

// WithReconnectMaxDelay caps the backoff between reconnection attempts
// (default 5s; the first retry comes after at most 100ms).
func WithReconnectMaxDelay(d time.Duration) Option {
	return func(b *Broker) error {
		if d < 10*time.Millisecond {
			return fmt.Errorf("rabbitmq: WithReconnectMaxDelay(%v): must be ≥ 10ms", d)
		}
		b.reconnectMax = d
		return nil
	}
}

// WithConnectionName sets the connection_name shown in the management UI
// (default "handoff").
func WithConnectionName(name string) Option {
	return func(b *Broker) error {
		if name == "" {
			return errors.New("rabbitmq: WithConnectionName(\"\"): name is required")
		}
		b.name = name
		return nil
	}
}

// New returns a Broker for the AMQP URL (amqp://user:pass@host:5672/vhost).
// It does not connect: the first Publish, Provision or Subscribe does.
func New(url string, opts ...Option) (*Broker, error) {
	if _, err := amqp.ParseURI(url); err != nil {
		return nil, fmt.Errorf("rabbitmq: New: url: %w", err)
	}
	b := &Broker{
		url:          url,
		prefix:       "handoff.",
		maxSize:      DefaultMaxMessageSize,
		pubChannels:  4,
		logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		reconnectMax: 5 * time.Second,
		name:         "handoff",
		closing:      make(chan struct{}),
		queues:       map[string]bool{},
		exchanges:    map[string]bool{},
	}
	for _, o := range opts {
		if err := o(b); err != nil {
			return nil, err
		}
	}
	b.sem = make(chan struct{}, b.pubChannels)
	return b, nil
}

// Close closes the publishing connection and makes running subscriptions
// return ErrClosed (without waiting for them). Calls afterwards fail with
// ErrClosed.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() { close(b.closing) })
	b.pmu.Lock()
	defer b.pmu.Unlock()
	b.idle = nil
	if b.conn != nil {
		err := b.conn.Close()
		b.conn = nil
		if err != nil && !errors.Is(err, amqp.ErrClosed) {
			return fmt.Errorf("rabbitmq: close: %w", err)
		}
	}
	return nil
}

func (b *Broker) isClosed() bool {
	select {
	case <-b.closing:
		return true
	default:
		return false
	}
}

func (b *Broker) reconnectBackoff() backoff.Exponential {
	return backoff.Exponential{Initial: 100 * time.Millisecond, Max: b.reconnectMax}
}

// dial opens a connection, giving up when ctx is done.
func (b *Broker) dial(ctx context.Context, role string) (*amqp.Connection, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(b.name + " " + role)
	c, err := amqp.DialConfig(b.url, amqp.Config{
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Properties: props,
		Dial: func(network, addr string) (net.Conn, error) {
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			var d net.Dialer
			conn, err := d.DialContext(dctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Bounds the AMQP handshake; amqp091 clears it once open.
			if err := conn.SetDeadline(time.Now().Add(dialTimeout)); err != nil {
				conn.Close()
				return nil, err
			}
			b.onDialLock.Lock()
			hook := b.onDial
			b.onDialLock.Unlock()
			if hook != nil {
				hook(conn)
			}
			return conn, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: connect: %w", err)
	}
	return c, nil
}

// sleep waits d or until ctx is done or the broker closes.
func (b *Broker) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-b.closing:
		return ErrClosed
	case <-t.C:
		return nil
	}
}

// names maps a subscription to the RabbitMQ objects behind it.
type names struct {
	exchange string // topic exchange, one per handoff topic
	queue    string // the group's quorum queue
	retry    string // the group's retry queue: delayed copies arrive here
	lock     string // classic queue whose exclusive consumer is the group's lease
}

// delayExchange is the headers exchange routing a retried copy to the delay
// queue of its bucket. Names with a separator right after the prefix cannot
// collide with a topic's (topics are not empty and contain no separator).
func (b *Broker) delayExchange() string { return b.prefix + sep + "delay" }

// delayQueue is the delay queue of a bucket, shared by every group.
func (b *Broker) delayQueue(ms int64) string {
	return fmt.Sprintf("%s%sdelay%s%d", b.prefix, sep, sep, ms)
}

// delayHeader selects the delay queue in the delay exchange.
const delayHeader = "handoff-delay"

func checkName(kind, s string) error {
	if s == "" {
		return fmt.Errorf("%w: %s is required", ErrName, kind)
	}
	if strings.Contains(s, sep) {
		return fmt.Errorf("%w: %s %q must not contain %q", ErrName, kind, s, sep)
	}
	return nil
}

func (b *Broker) exchangeName(topic string) (string, error) {
	if err := checkName("topic", topic); err != nil {
		return "", err
	}
	ex := b.prefix + topic
	if strings.HasPrefix(ex, "amq.") {
		return "", fmt.Errorf("%w: topic %q: exchange names starting with \"amq.\" are reserved", ErrName, topic)
	}
	if len(ex) > maxNameLen {
		return "", fmt.Errorf("%w: topic %q: exchange name is over %d bytes", ErrName, topic, maxNameLen)
	}
	return ex, nil
}

func (b *Broker) names(sub handoff.Subscription) (names, error) {
	ex, err := b.exchangeName(sub.Topic)
	if err != nil {
		return names{}, err
	}
	if err := checkName("group", sub.Group); err != nil {
		return names{}, err
	}
	q := ex + sep + sub.Group
	n := names{exchange: ex, queue: q, retry: q + sep + "retry", lock: q + sep + "lock"}
	if len(n.retry) > maxNameLen {
		return names{}, fmt.Errorf("%w: topic %q group %q: queue names would be over %d bytes", ErrName, sub.Topic, sub.Group, maxNameLen)
	}
	return n, nil
}

func (b *Broker) track(exchange string, queues ...string) {
	b.tmu.Lock()
	defer b.tmu.Unlock()
	if exchange != "" {
		b.exchanges[exchange] = true
	}
	for _, q := range queues {
		b.queues[q] = true
	}
}

func quorumArgs(sac bool) amqp.Table {
	t := amqp.Table{"x-queue-type": "quorum"}
	if sac {
		t["x-single-active-consumer"] = true
	}
	return t
}

// declareExchange declares the topic's durable topic exchange.
func declareExchange(ch *amqp.Channel, ex string) error {
	if err := ch.ExchangeDeclare(ex, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("rabbitmq: declare exchange %s: %w", ex, err)
	}
	return nil
}

// declare declares the subscription's exchange, queues and binding on ch.
func (b *Broker) declare(ch *amqp.Channel, n names) error {
	if err := declareExchange(ch, n.exchange); err != nil {
		return err
	}
	for _, q := range []string{n.queue, n.retry} {
		if _, err := ch.QueueDeclare(q, true, false, false, false, quorumArgs(true)); err != nil {
			return fmt.Errorf("rabbitmq: declare queue %s: %w", q, err)
		}
	}
	if err := ch.QueueBind(n.queue, "#", n.exchange, false, nil); err != nil {
		return fmt.Errorf("rabbitmq: bind queue %s to %s: %w", n.queue, n.exchange, err)
	}
	// The lease queue holds no messages; only its exclusive consumer matters
	// (quorum queues ignore the exclusive flag, classic queues enforce it).
	if _, err := ch.QueueDeclare(n.lock, true, false, false, false, amqp.Table{"x-queue-type": "classic"}); err != nil {
		return fmt.Errorf("rabbitmq: declare queue %s: %w", n.lock, err)
	}
	b.track(n.exchange, n.queue, n.retry, n.lock)
	return nil
}

// declareDelay declares the delay queue of one bucket, shared by all groups:
// a quorum queue whose uniform TTL dead-letters every message, in order, to
// the default exchange with the routing key it was published with (the
// group's retry queue), and its binding in the delay exchange.
func (b *Broker) declareDelay(ch *amqp.Channel, ms int64) error {
	ex, q := b.delayExchange(), b.delayQueue(ms)
	if err := ch.ExchangeDeclare(ex, amqp.ExchangeHeaders, true, false, false, false, nil); err != nil {
		return fmt.Errorf("rabbitmq: declare exchange %s: %w", ex, err)
	}
	args := amqp.Table{
		"x-queue-type":           "quorum",
		"x-message-ttl":          ms,
		"x-dead-letter-exchange": "",
		// At-least-once dead-lettering (RabbitMQ ≥ 3.10) needs reject-publish.
		"x-dead-letter-strategy": "at-least-once",
		"x-overflow":             "reject-publish",
	}
	if _, err := ch.QueueDeclare(q, true, false, false, false, args); err != nil {
		return fmt.Errorf("rabbitmq: declare delay queue %s: %w", q, err)
	}
	bind := amqp.Table{"x-match": "all", delayHeader: strconv.FormatInt(ms, 10)}
	if err := ch.QueueBind(q, "", ex, false, bind); err != nil {
		return fmt.Errorf("rabbitmq: bind delay queue %s: %w", q, err)
	}
	b.track(ex, q)
	return nil
}

// Provision declares the subscription's exchange, queues and binding without
// consuming, so that messages published from now on are kept for the group.
// It is idempotent.
func (b *Broker) Provision(ctx context.Context, sub handoff.Subscription) error {
	n, err := b.names(sub)
	if err != nil {
		return fmt.Errorf("rabbitmq: provision %s/%s: %w", sub.Topic, sub.Group, err)
	}
	conn, err := b.pubConn(ctx)
	if err != nil {
		return fmt.Errorf("rabbitmq: provision %s/%s: %w", sub.Topic, sub.Group, err)
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("rabbitmq: provision %s/%s: open channel: %w", sub.Topic, sub.Group, err)
	}
	defer ch.Close()
	if err := b.declare(ch, n); err != nil {
		return fmt.Errorf("rabbitmq: provision %s/%s: %w", sub.Topic, sub.Group, err)
	}
	return nil
}

// delayBucket rounds a delay up to the next bucket, in milliseconds: every
// value up to 8ms, then values m·2^e with m in 4..7, so a delay is rounded up
// by less than 25% and a handful of queues serves any backoff policy.
func delayBucket(d time.Duration) int64 {
	ms := int64((d + time.Millisecond - 1) / time.Millisecond)
	if ms < 1 {
		ms = 1
	}
	if ms <= 8 {
		return ms
	}
	for e := uint(1); ; e++ {
		unit := int64(1) << e
		m := (ms + unit - 1) / unit
		if m <= 7 {
			return m << e
		}
	}
}

// isFatal reports whether a declaration error will not go away by
// reconnecting: access refused, or an object existing with other arguments.
func isFatal(err error) bool {
	var ae *amqp.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case amqp.AccessRefused, amqp.PreconditionFailed, amqp.NotAllowed:
			return true
		}
	}
	return false
}
