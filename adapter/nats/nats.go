package nats

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/handoffhq/handoff"
)

// Errors returned by the adapter.
var (
	// ErrInvalidTopic is matched by errors for a topic that is not a legal
	// NATS publish subject.
	ErrInvalidTopic = errors.New("nats: invalid topic")
	// ErrSettled is returned when a delivery is settled twice, or after its
	// subscription returned (the adapter then nak'd it for prompt redelivery).
	ErrSettled = errors.New("nats: delivery already settled")
	// ErrClosed is returned by a closed Client.
	ErrClosed = errors.New("nats: client closed")
	// ErrNotConnected is matched by the error of a call made while the
	// connection is down; the error names the server and the cause.
	ErrNotConnected = errors.New("nats: not connected")
)

// Defaults.
const (
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultAckWait         = 30 * time.Second
	DefaultMaxInFlight     = 1000
	DefaultPublishTimeout  = 30 * time.Second
)

var (
	_ handoff.Publisher  = (*Client)(nil)
	_ handoff.Subscriber = (*Client)(nil)
)

// Client is a handoff Publisher and Subscriber on NATS JetStream. It uses a
// connection owned by the caller; Close does not close it.
type Client struct {
	nc  *natsgo.Conn
	js  jetstream.JetStream
	cfg config

	mu          sync.Mutex
	ensured     map[string]string // topic → stream name known to hold it
	replayReady bool              // the replay stream exists
	replayCons  map[string]bool   // replay consumers this client made or checked
	closed      bool

	lastMaxPayload atomic.Int64

	probeMu  sync.Mutex
	probeAt  time.Time
	probeErr error
}

type streamSpec struct {
	name     string
	subjects []string
}

type config struct {
	duplicates     time.Duration
	ackWait        time.Duration
	maxInFlight    int
	publishTimeout time.Duration
	replicas       int
	maxAge         time.Duration
	streams        []streamSpec
	log            *slog.Logger
}

// Option configures a Client.
type Option func(*config) error

// WithDuplicateWindow sets the duplicate window (StreamConfig.Duplicates) of
// streams the adapter creates: a message re-published with the same id
// within it is stored once. Default 2 minutes.
func WithDuplicateWindow(d time.Duration) Option {
	return func(c *config) error {
		if d < 100*time.Millisecond {
			return fmt.Errorf("nats: WithDuplicateWindow(%v): must be at least 100ms", d)
		}
		c.duplicates = d
		return nil
	}
}

// WithAckWait sets the consumers' AckWait: how long the server waits for a
// settlement before redelivering. The adapter signals progress for
// deliveries unsettled longer than half of it. Default 30s.
func WithAckWait(d time.Duration) Option {
	return func(c *config) error {
		if d < 100*time.Millisecond {
			return fmt.Errorf("nats: WithAckWait(%v): must be at least 100ms", d)
		}
		c.ackWait = d
		return nil
	}
}

// WithMaxInFlight sets the MaxAckPending used when Subscription.MaxInFlight
// is zero. Default 1000.
func WithMaxInFlight(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("nats: WithMaxInFlight(%d): must be at least 1", n)
		}
		c.maxInFlight = n
		return nil
	}
}

// WithPublishTimeout bounds the wait for one message's PubAck when the
// Publish context has no earlier deadline. Default 30s.
func WithPublishTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("nats: WithPublishTimeout(%v): must be positive", d)
		}
		c.publishTimeout = d
		return nil
	}
}

// WithReplicas sets the replica count of streams the adapter creates
// (clusters). Default 1.
func WithReplicas(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 5 {
			return fmt.Errorf("nats: WithReplicas(%d): must be between 1 and 5", n)
		}
		c.replicas = n
		return nil
	}
}

// WithMaxAge sets the MaxAge of streams the adapter creates: older messages
// are removed, whether consumed or not. Default 0: kept until removed by hand.
func WithMaxAge(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("nats: WithMaxAge(%v): must not be negative", d)
		}
		c.maxAge = d
		return nil
	}
}

// WithStream binds topics to a named stream: every topic matching one of
// subjects (NATS wildcards allowed: "orders.>", "orders.*") is stored in
// stream name, which the adapter creates with these subjects if it is
// missing, or extends with them if it lacks them. Topics matching no
// WithStream get a stream of their own, named after the topic. May be
// given several times.
func WithStream(name string, subjects ...string) Option {
	return func(c *config) error {
		if err := validStreamName(name); err != nil {
			return fmt.Errorf("nats: WithStream(%q): name %w", name, err)
		}
		if len(subjects) == 0 {
			return fmt.Errorf("nats: WithStream(%q): at least one subject is required", name)
		}
		for _, s := range subjects {
			if rule := subjectRule(s, true); rule != "" {
				return fmt.Errorf("nats: WithStream(%q): subject %q: %s", name, s, rule)
			}
		}
		for _, o := range c.streams {
			if o.name == name {
				return fmt.Errorf("nats: WithStream(%q): stream given twice", name)
			}
		}
		c.streams = append(c.streams, streamSpec{name: name, subjects: append([]string(nil), subjects...)})
		return nil
	}
}

// WithLogger sets the logger. Default: discard.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("nats: WithLogger: logger is nil")
		}
		c.log = l
		return nil
	}
}

// New returns a Client on nc. It does no I/O: streams and consumers are
// created (or checked) on first use of each topic.
func New(nc *natsgo.Conn, opts ...Option) (*Client, error) {
	if nc == nil {
		return nil, errors.New("nats: New: connection is nil")
	}
	cfg := config{
		duplicates:     DefaultDuplicateWindow,
		ackWait:        DefaultAckWait,
		maxInFlight:    DefaultMaxInFlight,
		publishTimeout: DefaultPublishTimeout,
		replicas:       1,
		log:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("nats: New: nil option")
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(cfg.publishTimeout),
		jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return nil, fmt.Errorf("nats: New: %w", err)
	}
	return &Client{nc: nc, js: js, cfg: cfg, ensured: make(map[string]string), replayCons: make(map[string]bool)}, nil
}

// Connect dials url with options suited to the adapter: reconnect forever
// with a short wait, and a name for the server's monitoring. Further
// nats.go options are applied after these.
func Connect(url string, opts ...natsgo.Option) (*natsgo.Conn, error) {
	base := []natsgo.Option{
		natsgo.Name("handoff"),
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(250 * time.Millisecond),
		natsgo.RetryOnFailedConnect(false),
		// No reconnect buffer: a message published while the connection
		// is down fails at once instead of being sent after the reconnect,
		// where it would overtake the earlier messages of its key that
		// were lost with the old connection.
		natsgo.ReconnectBufSize(-1),
	}
	nc, err := natsgo.Connect(url, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("nats: connect %s: %w", url, err)
	}
	return nc, nil
}

// JetStream returns the JetStream context the client uses, for
// administration (stream and consumer info) by the caller.
func (c *Client) JetStream() jetstream.JetStream { return c.js }

// Close marks the client closed: later Publish and Subscribe calls fail
// with ErrClosed. Running subscriptions are stopped by their contexts. The
// connection stays open; its owner closes it.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// StreamName returns the stream that holds topic: once the topic was used,
// the stream found or created for it; before, the stream of the first
// WithStream whose subjects match it, else the topic's own stream, named
// from the topic with characters illegal in stream names replaced.
func (c *Client) StreamName(topic string) string {
	c.mu.Lock()
	name, ok := c.ensured[topic]
	c.mu.Unlock()
	if ok {
		return name
	}
	name, _ = c.streamFor(topic)
	return name
}

// ConsumerName returns the durable consumer name used for group on topic:
// the group's name in the topic's own stream, the group's and the topic's
// in a stream shared by several topics.
func (c *Client) ConsumerName(topic, group string) string {
	if c.StreamName(topic) != safeName(topic) {
		return safeName(group + "." + topic)
	}
	return safeName(group)
}

// streamFor returns the stream name for topic and whether it is shared
// with other topics (a WithStream stream).
func (c *Client) streamFor(topic string) (string, bool) {
	for _, s := range c.cfg.streams {
		for _, p := range s.subjects {
			if subjectMatch(p, topic) {
				return s.name, true
			}
		}
	}
	return safeName(topic), false
}

// ensureStream makes sure the stream holding topic exists and covers it.
// An existing stream's other settings are left alone.
func (c *Client) ensureStream(ctx context.Context, topic string) (string, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return "", ErrClosed
	}
	if name, ok := c.ensured[topic]; ok {
		c.mu.Unlock()
		return name, nil
	}
	c.mu.Unlock()

	name, shared := c.streamFor(topic)
	if !shared {
		// A stream made by someone else may hold the topic already: use it.
		found, err := c.js.StreamNameBySubject(ctx, topic)
		switch {
		case err == nil:
			c.mu.Lock()
			c.ensured[topic] = found
			c.mu.Unlock()
			return found, nil
		case !errors.Is(err, jetstream.ErrStreamNotFound):
			return "", fmt.Errorf("nats: find the stream of %s: %w", topic, err)
		}
	}
	subjects := []string{topic}
	if shared {
		for _, s := range c.cfg.streams {
			if s.name == name {
				subjects = s.subjects
			}
		}
	}
	for try := 0; ; try++ {
		st, err := c.js.Stream(ctx, name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			cfg := jetstream.StreamConfig{
				Name:       name,
				Subjects:   subjects,
				Storage:    jetstream.FileStorage,
				Retention:  jetstream.LimitsPolicy,
				Discard:    jetstream.DiscardOld,
				Duplicates: c.cfg.duplicates,
				Replicas:   c.cfg.replicas,
				MaxAge:     c.cfg.maxAge,
			}
			if _, err = c.js.CreateStream(ctx, cfg); errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && try == 0 {
				continue // created concurrently: look again
			}
			if err != nil {
				return "", fmt.Errorf("nats: create stream %s for %s: %w", name, topic, err)
			}
			c.cfg.log.Debug("nats: stream created", "stream", name, "subjects", subjects)
		case err != nil:
			return "", fmt.Errorf("nats: stream %s for %s: %w", name, topic, err)
		default:
			cfg := st.CachedInfo().Config
			missing := false
			for _, s := range subjects {
				if !coveredBy(cfg.Subjects, s) {
					cfg.Subjects = append(cfg.Subjects, s)
					missing = true
				}
			}
			if missing {
				if _, err := c.js.UpdateStream(ctx, cfg); err != nil {
					return "", fmt.Errorf("nats: add subjects %v to stream %s: %w", subjects, name, err)
				}
			}
		}
		break
	}
	c.mu.Lock()
	c.ensured[topic] = name
	c.mu.Unlock()
	return name, nil
}

// forget drops topic from the cache of ensured streams (after the stream
// was found missing).
func (c *Client) forget(topic string) {
	c.mu.Lock()
	delete(c.ensured, topic)
	c.mu.Unlock()
}

func coveredBy(patterns []string, subject string) bool {
	for _, p := range patterns {
		if subjectMatch(p, subject) {
			return true
		}
	}
	return false
}

// subjectRule returns the rule subject breaks, or "" when it is legal.
// Wildcards ("*" and ">" tokens, ">" only last) are allowed when wild.
func subjectRule(s string, wild bool) string {
	if s == "" {
		return "must not be empty"
	}
	for _, r := range s {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' || r < 0x20 || r == 0x7f {
			return "must not contain whitespace or control characters"
		}
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		switch {
		case t == "":
			return `must not have empty tokens (no leading, trailing or double ".")`
		case t == "*" || t == ">":
			if !wild {
				return `must not contain the wildcards "*" or ">" (a publish subject is literal)`
			}
			if t == ">" && i != len(toks)-1 {
				return `">" must be the last token`
			}
		case strings.ContainsAny(t, "*>") && wild:
			return `"*" and ">" must be whole tokens`
		}
	}
	return ""
}

func validTopic(topic string) error {
	if rule := subjectRule(topic, false); rule != "" {
		return fmt.Errorf("%w %q: a NATS subject %s", ErrInvalidTopic, topic, rule)
	}
	return nil
}

// subjectMatch reports whether the literal subject matches pattern.
func subjectMatch(pattern, subject string) bool {
	pt := strings.Split(pattern, ".")
	st := strings.Split(subject, ".")
	for i, p := range pt {
		if p == ">" {
			return len(st) > i
		}
		if i >= len(st) || (p != "*" && p != st[i]) {
			return false
		}
	}
	return len(pt) == len(st)
}

func validStreamName(name string) error {
	if name == "" {
		return errors.New("must not be empty")
	}
	if len(name) > 200 {
		return errors.New("must be at most 200 characters")
	}
	for _, r := range name {
		if !nameChar(r) {
			return fmt.Errorf("must contain only letters, digits, '-' and '_' (found %q)", r)
		}
	}
	return nil
}

func nameChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

// safeName maps s to a legal stream or consumer name. Names that needed a
// change get a hash of the original appended, so distinct inputs ("a.b"
// and "a_b") never share a name.
func safeName(s string) string {
	var b strings.Builder
	changed := false
	for _, r := range s {
		if nameChar(r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
			changed = true
		}
	}
	out := b.String()
	if len(out) > 120 {
		out = out[:120]
		changed = true
	}
	if changed || out == "" {
		h := fnv.New32a()
		h.Write([]byte(s))
		out = fmt.Sprintf("%s_%08x", out, h.Sum32())
	}
	return out
}
