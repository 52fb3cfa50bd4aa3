package nats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/handoffhq/handoff"
)

// Publish stores msgs in the topic's stream. Every message is checked first
// (handoff validation, header values, the server's max_payload); if one
// fails, nothing is sent. Then all are published asynchronously, each with
// its id as Nats-Msg-Id, and Publish returns once the server acknowledged
// every one (a duplicate within the stream's window counts as stored).
func (c *Client) Publish(ctx context.Context, topic string, msgs ...*handoff.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nats: publish to %s: %w", topic, err)
	}
	if err := validTopic(topic); err != nil {
		return fmt.Errorf("nats: publish: %w", err)
	}
	if len(msgs) == 0 {
		return nil
	}
	limit := int(c.nc.MaxPayload())
	out := make([]*natsgo.Msg, len(msgs))
	for i, m := range msgs {
		nm, err := encode(topic, m, limit)
		if err != nil {
			return fmt.Errorf("nats: publish to %s: %w", topic, err)
		}
		out[i] = nm
	}
	if _, err := c.ensureStream(ctx, topic); err != nil {
		return err
	}

	stall := c.cfg.publishTimeout
	if dl, ok := ctx.Deadline(); ok {
		stall = min(stall, max(time.Until(dl), time.Millisecond))
	}
	futures := make([]jetstream.PubAckFuture, 0, len(out))
	for i, nm := range out {
		f, err := c.js.PublishMsgAsync(nm, jetstream.WithStallWait(stall))
		if err != nil {
			return fmt.Errorf("nats: publish %s to %s: %w", msgs[i].ID, topic, err)
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if errors.Is(err, jetstream.ErrNoStreamResponse) {
				c.forget(topic) // the stream went away: create it again next time
			}
			return fmt.Errorf("nats: publish %s to %s: %w", msgs[i].ID, topic, err)
		case <-ctx.Done():
			return fmt.Errorf("nats: publish %s to %s: waiting for ack: %w", msgs[i].ID, topic, ctx.Err())
		}
	}
	return nil
}

// encode turns m into a NATS message in CloudEvents binary mode, after
// checking it. limit is the server's max_payload (0: unknown).
func encode(topic string, m *handoff.Message, limit int) (*natsgo.Msg, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	h := handoff.NATSBinding.Headers(m)
	hdr := make(natsgo.Header, len(h)+1)
	for k, v := range h {
		if strings.ContainsAny(v, "\r\n") {
			// NATS headers are line based: a line break would corrupt them.
			attr := strings.TrimPrefix(k, handoff.NATSBinding.Prefix)
			if k == handoff.NATSBinding.ContentType {
				attr = "datacontenttype"
			}
			return nil, &handoff.ValidationError{ID: m.ID, Attribute: attr, Rule: "must not contain line breaks (NATS header value)"}
		}
		hdr[k] = []string{v}
	}
	hdr[jetstream.MsgIDHeader] = []string{m.ID}
	nm := &natsgo.Msg{Subject: topic, Header: hdr, Data: m.Data}
	if limit > 0 {
		if n := nm.Size() - len(nm.Subject); n > limit {
			return nil, &handoff.ValidationError{ID: m.ID, Attribute: "data",
				Rule: fmt.Sprintf("message is %d bytes with its headers, over the server's max_payload of %d", n, limit)}
		}
	}
	return nm, nil
}

// decode reads a delivered NATS message. On error the message holds what
// could be read, with the body in Data.
func decode(h natsgo.Header, body []byte) (*handoff.Message, error) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return handoff.NATSBinding.Decode(keys, h.Get, body)
}
