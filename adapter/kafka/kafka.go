package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/handoffhq/handoff"
)

// Sentinel errors.
var (
	// ErrClosed is returned by a closed Client.
	ErrClosed = errors.New("kafka: client closed")
	// ErrRevoked is returned by a settle whose partition was revoked from
	// this member (rebalance or shutdown) before its offset could be
	// committed. The record is delivered again to the partition's new owner.
	ErrRevoked = errors.New("kafka: partition no longer assigned to this member")
	// ErrSettled is returned when a delivery is settled a second time.
	ErrSettled = errors.New("kafka: delivery already settled")
)

// Header names the adapter adds to retry records, next to the CloudEvents
// headers of the original record.
const (
	HeaderAttempt    = "handoff_attempt"     // delivery attempt of the retry record, decimal
	HeaderNotBefore  = "handoff_not_before"  // unix milliseconds before which it is not delivered
	HeaderRetryToken = "handoff_retry_token" // names the Retry call that made the record
)

// DefaultMaxInFlight is the in-flight limit used when Subscription.MaxInFlight is zero.
const DefaultMaxInFlight = 1000

// RetryTopic returns the name of the retry topic the adapter uses for a
// subscription: "<topic>.<group>.retry". Create it like the topic itself
// when topics are managed outside the application.
func RetryTopic(topic, group string) string { return topic + "." + group + ".retry" }

// Client publishes to and subscribes from Kafka with franz-go. It is both a
// handoff.Publisher and a handoff.Subscriber. Create it with New; the zero
// value is not usable.
type Client struct {
	seeds []string
	cfg   config

	mu      sync.Mutex
	prod    *kgo.Client
	adm     *kadm.Client
	closed  bool
	done    chan struct{}
	created map[string]bool // topics this client has ensured exist
	lim     limits
}

type config struct {
	kopts       []kgo.Opt
	partitions  int32
	replication int16
	create      bool
	maxSize     int
	drain       time.Duration
	log         *slog.Logger
}

// Option configures a Client.
type Option func(*config) error

// WithCreateTopics makes the client create every topic it publishes to or
// subscribes from, and each subscription's retry topic, with the given
// number of partitions and replication factor (-1 for either means the
// broker's default). Existing topics are left alone. Without it, topics must
// exist (or the broker must auto-create them): in production, manage topics
// with your usual tooling and leave this off.
func WithCreateTopics(partitions int32, replicationFactor int16) Option {
	return func(c *config) error {
		if partitions == 0 || partitions < -1 {
			return fmt.Errorf("kafka: WithCreateTopics(%d, %d): partitions must be ≥ 1 or -1", partitions, replicationFactor)
		}
		if replicationFactor == 0 || replicationFactor < -1 {
			return fmt.Errorf("kafka: WithCreateTopics(%d, %d): replication factor must be ≥ 1 or -1", partitions, replicationFactor)
		}
		c.create, c.partitions, c.replication = true, partitions, replicationFactor
		return nil
	}
}

// WithMaxMessageSize makes Publish refuse, before anything is sent, any
// message whose handoff.Message.Size is over n bytes. Zero means no check of
// its own; records over the producer's batch limit (franz-go's
// ProducerBatchMaxBytes, 1,000,012 by default) or the broker's
// max.message.bytes still fail, with an error naming the message id.
func WithMaxMessageSize(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("kafka: WithMaxMessageSize(%d): must be ≥ 0", n)
		}
		c.maxSize = n
		return nil
	}
}

// WithDrainTimeout bounds how long a subscription waits, on shutdown and
// when a rebalance takes partitions away, for deliveries already handed out
// to be settled before it commits and lets go. Deliveries still unsettled
// after it are delivered again to the next owner. Default 2s.
func WithDrainTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("kafka: WithDrainTimeout(%v): must be ≥ 0", d)
		}
		c.drain = d
		return nil
	}
}

// WithLogger logs rebalances, commit failures and franz-go's warnings.
// Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("kafka: WithLogger(nil): logger is required")
		}
		c.log = l
		return nil
	}
}

// WithClientOptions adds franz-go options to every client the adapter
// creates (TLS, SASL, timeouts, batch sizes, session and heartbeat
// intervals). The adapter's own settings are applied after them and win:
// acks from all in-sync replicas, the murmur2 key partitioner, the group,
// its topics, the start offset, manual commits and the rebalance callbacks.
// Do not disable idempotent writes (kgo.DisableIdempotentWrite): retries
// could then reorder records.
func WithClientOptions(opts ...kgo.Opt) Option {
	return func(c *config) error {
		for i, o := range opts {
			if o == nil {
				return fmt.Errorf("kafka: WithClientOptions: option %d is nil", i)
			}
		}
		c.kopts = append(c.kopts, opts...)
		return nil
	}
}

// New returns a client for the Kafka cluster reachable at the seed brokers
// ("host:port"). Nothing connects until the first Publish, Provision or
// Subscribe.
func New(seeds []string, opts ...Option) (*Client, error) {
	if len(seeds) == 0 {
		return nil, errors.New("kafka: New: at least one seed broker is required")
	}
	for _, s := range seeds {
		if strings.TrimSpace(s) == "" {
			return nil, errors.New("kafka: New: seed broker address is empty")
		}
	}
	cfg := config{drain: 2 * time.Second, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	return &Client{
		seeds:   append([]string(nil), seeds...),
		cfg:     cfg,
		done:    make(chan struct{}),
		created: make(map[string]bool),
	}, nil
}

// baseOpts are the options every client of the adapter gets; the user's
// come first so that ours win.
func (c *Client) baseOpts() []kgo.Opt {
	opts := append([]kgo.Opt(nil), c.cfg.kopts...)
	return append(opts,
		kgo.SeedBrokers(c.seeds...),
		kgo.WithLogger(kgoLogger{c.cfg.log}),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// Hash keys with murmur2 exactly as the Java client does, so a key
		// lands on the same partition whichever producer wrote it.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
	)
}

// producer returns the shared producing client, creating it on first use.
func (c *Client) producer() (*kgo.Client, *kadm.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, nil, ErrClosed
	}
	if c.prod == nil {
		cl, err := kgo.NewClient(c.baseOpts()...)
		if err != nil {
			return nil, nil, fmt.Errorf("kafka: new producer: %w", err)
		}
		c.prod, c.adm = cl, kadm.NewClient(cl)
	}
	return c.prod, c.adm, nil
}

// Close closes the producing client and makes running subscriptions return.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.done)
	if c.prod != nil {
		c.prod.Close()
	}
	return nil
}

// ensureTopics creates the topics when WithCreateTopics is set.
func (c *Client) ensureTopics(ctx context.Context, topics ...string) error {
	if !c.cfg.create {
		return nil
	}
	var missing []string
	c.mu.Lock()
	for _, t := range topics {
		if !c.created[t] {
			missing = append(missing, t)
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	_, adm, err := c.producer()
	if err != nil {
		return err
	}
	resps, err := adm.CreateTopics(ctx, c.cfg.partitions, c.cfg.replication, nil, missing...)
	if err != nil {
		return fmt.Errorf("kafka: create topics %v: %w", missing, err)
	}
	for _, t := range missing {
		r, ok := resps[t]
		if !ok {
			return fmt.Errorf("kafka: create topic %s: no answer from the broker", t)
		}
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka: create topic %s: %w", t, r.Err)
		}
	}
	c.mu.Lock()
	for _, t := range missing {
		c.created[t] = true
	}
	c.mu.Unlock()
	return nil
}

// Publish validates every message, then produces them all to topic at once
// (key = PartitionKey, CloudEvents Kafka binding headers, value = data) and
// returns when the brokers have acknowledged every record with acks=all.
// A message that is invalid or over WithMaxMessageSize fails the call before
// anything is produced. A record refused by the client or broker (too large,
// say) fails with an error naming its message id; the broker refuses whole
// batches, so other records of the call sharing its batch may fail with it
// (each named), while the rest are produced. The client stays usable.
func (c *Client) Publish(ctx context.Context, topic string, msgs ...*handoff.Message) error {
	if topic == "" {
		return errors.New("kafka: publish: topic is required")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafka: publish to %s: %w", topic, err)
	}
	for _, m := range msgs {
		if err := m.Validate(); err != nil {
			return fmt.Errorf("kafka: publish to %s: %w", topic, err)
		}
		if err := handoff.CheckSize(m, c.cfg.maxSize); err != nil {
			return fmt.Errorf("kafka: publish to %s: %w", topic, err)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	prod, _, err := c.producer()
	if err != nil {
		return err
	}
	if err := c.ensureTopics(ctx, topic); err != nil {
		return err
	}
	recs := make([]*kgo.Record, len(msgs))
	ids := make(map[*kgo.Record]string, len(msgs))
	for i, m := range msgs {
		recs[i] = encode(topic, m)
		ids[recs[i]] = m.ID
	}
	var errs []error
	for _, r := range prod.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("kafka: publish %s to %s: %w", ids[r.Record], topic, r.Err))
		}
	}
	return errors.Join(errs...)
}

// encode maps a message to a record in CloudEvents binary mode.
func encode(topic string, m *handoff.Message) *kgo.Record {
	h := handoff.KafkaBinding.Headers(m)
	r := &kgo.Record{Topic: topic, Value: m.Data, Headers: make([]kgo.RecordHeader, 0, len(h))}
	if m.PartitionKey != "" {
		r.Key = []byte(m.PartitionKey)
	}
	for k, v := range h {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return r
}

// Provision creates the subscription's topic and retry topic when
// WithCreateTopics is set; otherwise it checks that both exist and names
// the missing ones. Kafka keeps messages published before a group exists,
// and a new group starts from the earliest retained record, so provisioning
// is not needed for durability.
func (c *Client) Provision(ctx context.Context, sub handoff.Subscription) error {
	if sub.Topic == "" || sub.Group == "" {
		return errors.New("kafka: provision: Subscription.Topic and Subscription.Group are required")
	}
	retry := RetryTopic(sub.Topic, sub.Group)
	if c.cfg.create {
		return c.ensureTopics(ctx, sub.Topic, retry)
	}
	_, adm, err := c.producer()
	if err != nil {
		return err
	}
	details, err := adm.ListTopics(ctx, sub.Topic, retry)
	if err != nil {
		return fmt.Errorf("kafka: provision %s: %w", sub.Topic, err)
	}
	var missing []string
	for _, t := range []string{sub.Topic, retry} {
		if !details.Has(t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("kafka: provision %s/%s: topics %v do not exist (create them or use WithCreateTopics)", sub.Topic, sub.Group, missing)
	}
	return nil
}

// kgoLogger passes franz-go's log lines to slog.
type kgoLogger struct{ l *slog.Logger }

func (k kgoLogger) Level() kgo.LogLevel {
	if k.l.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelInfo // franz-go's debug level is for its own developers
	}
	if k.l.Enabled(context.Background(), slog.LevelInfo) {
		return kgo.LogLevelWarn // franz-go's info level is chatty
	}
	if k.l.Enabled(context.Background(), slog.LevelError) {
		return kgo.LogLevelError
	}
	return kgo.LogLevelNone
}

func (k kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	case kgo.LogLevelInfo:
		lv = slog.LevelInfo
	}
	k.l.Log(context.Background(), lv, "kgo: "+msg, keyvals...)
}
