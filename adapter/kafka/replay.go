package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/handoffhq/handoff"
)

// Redeliver sends msgs to group of topic, and to no other group: it
// produces them to the group's retry topic (RetryTopic), which only that
// group consumes, as records due at once with attempt 1. It returns once the
// brokers acknowledged every record (acks=all). Kafka does not deduplicate
// across producer sessions, so there is no duplicate answer to tell apart;
// the message ids stay, for the group's inbox.
func (c *Client) Redeliver(ctx context.Context, topic, group string, msgs ...*handoff.Message) error {
	if topic == "" || group == "" {
		return errors.New("kafka: redeliver: topic and group are required")
	}
	where := "group " + group + " of " + topic
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafka: redeliver to %s: %w", where, err)
	}
	for _, m := range msgs {
		if err := m.Validate(); err != nil {
			return fmt.Errorf("kafka: redeliver to %s: %w", where, err)
		}
		if err := handoff.CheckSize(m, c.cfg.maxSize); err != nil {
			return fmt.Errorf("kafka: redeliver to %s: %w", where, err)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	prod, _, err := c.producer()
	if err != nil {
		return err
	}
	retry := RetryTopic(topic, group)
	if err := c.ensureTopics(ctx, retry); err != nil {
		return err
	}
	now := []byte(strconv.FormatInt(time.Now().UnixMilli(), 10))
	recs := make([]*kgo.Record, len(msgs))
	ids := make(map[*kgo.Record]string, len(msgs))
	for i, m := range msgs {
		r := encode(retry, m)
		r.Headers = append(r.Headers,
			kgo.RecordHeader{Key: HeaderAttempt, Value: []byte("1")},
			kgo.RecordHeader{Key: HeaderNotBefore, Value: now})
		recs[i], ids[r] = r, m.ID
	}
	var errs []error
	for _, r := range prod.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("kafka: redeliver %s to %s (topic %s): %w", ids[r.Record], where, retry, r.Err))
		}
	}
	return errors.Join(errs...)
}

// Check reports whether a broker of the cluster answers: nil, or why not,
// naming the seed brokers. relay.Relay calls it at start and while the
// broker is down, to log the outage with its cause.
func (c *Client) Check(ctx context.Context) error {
	prod, _, err := c.producer()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := prod.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: no broker of %v answers: %w", c.seeds, err)
	}
	return nil
}

// limits caches each topic's max.message.bytes.
type limits struct {
	mu   sync.Mutex
	byTo map[string]topicLimit
}

type topicLimit struct {
	bytes int // 0: unknown
	until time.Time
}

// recordBatchSize is an upper bound of the bytes of a record batch holding
// only the record of m: what franz-go measures against
// ProducerBatchMaxBytes and a broker against max.message.bytes.
func recordBatchSize(topic string, m *handoff.Message) int {
	r := encode(topic, m)
	const batchHeader, varint = 61, 10
	n := batchHeader + 4*varint + 1 + len(r.Key) + len(r.Value) + varint
	for _, h := range r.Headers {
		n += 2*varint + len(h.Key) + len(h.Value)
	}
	return n
}

// CheckSize reports whether Publish would refuse m for its size: its record
// batch over the producer's ProducerBatchMaxBytes (1,000,012 by default) or
// over the topic's max.message.bytes, as the cluster reports it (looked up
// once in a while; while the cluster cannot be asked, the producer's limit
// alone is checked). outbox.WithBrokerLimit uses it.
func (c *Client) CheckSize(ctx context.Context, topic string, m *handoff.Message) error {
	if err := handoff.CheckSize(m, c.cfg.maxSize); err != nil {
		return err
	}
	prod, _, err := c.producer()
	if err != nil {
		return nil // a closed client refuses at Publish; the size is no reason here
	}
	limit, what := 1000012, "the producer's ProducerBatchMaxBytes"
	if v, ok := prod.OptValue(kgo.ProducerBatchMaxBytes).(int32); ok && v > 0 {
		limit = int(v)
	}
	if t := c.topicMaxBytes(ctx, topic); t > 0 && t < limit {
		limit, what = t, "topic "+topic+"'s max.message.bytes"
	}
	if n := recordBatchSize(topic, m); n > limit {
		return &handoff.ValidationError{ID: m.ID, Attribute: "data",
			Rule: fmt.Sprintf("message is %d bytes as a Kafka record batch, over %s of %d; %s", n, what, limit, handoff.ClaimCheckHint)}
	}
	return nil
}

// topicMaxBytes returns topic's max.message.bytes, or 0 when unknown. A
// look-up is bounded to 2 seconds; its answer is kept 5 minutes, a failure
// 30 seconds.
func (c *Client) topicMaxBytes(ctx context.Context, topic string) int {
	c.lim.mu.Lock()
	if c.lim.byTo == nil {
		c.lim.byTo = make(map[string]topicLimit)
	}
	if l, ok := c.lim.byTo[topic]; ok && time.Now().Before(l.until) {
		c.lim.mu.Unlock()
		return l.bytes
	}
	c.lim.mu.Unlock()
	_, adm, err := c.producer()
	if err != nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	got := topicLimit{until: time.Now().Add(30 * time.Second)}
	if rcs, err := adm.DescribeTopicConfigs(ctx, topic); err == nil {
		for _, rc := range rcs {
			if rc.Err != nil {
				continue
			}
			for _, cfg := range rc.Configs {
				if cfg.Key == "max.message.bytes" && cfg.Value != nil {
					if n, err := strconv.Atoi(*cfg.Value); err == nil && n > 0 {
						got = topicLimit{bytes: n, until: time.Now().Add(5 * time.Minute)}
					}
				}
			}
		}
	}
	c.lim.mu.Lock()
	c.lim.byTo[topic] = got
	c.lim.mu.Unlock()
	return got.bytes
}
