package nats

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/handoffhq/handoff"
)

// Publish stores msgs in the topic's stream. Every message is checked first
// (handoff validation, header values, the server's max_payload); if one
// fails, nothing is sent. Then all are published asynchronously, each with
// its handoff.Message.DedupKey as Nats-Msg-Id, and Publish returns once the
// server acknowledged every one. A message stored already within the
// stream's duplicate window counts as stored (a relay's re-publish), except
// a replay (handoff.Message.IsReplay), which was meant as a new delivery: the
// server's duplicate answer then fails the call with handoff.ErrDuplicate.
// While the connection is down Publish fails at once with an error matching
// ErrNotConnected that names the server and why it cannot be reached.
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
	limit := c.maxPayload()
	out := make([]*natsgo.Msg, len(msgs))
	for i, m := range msgs {
		nm, err := encode(topic, m, limit)
		if err != nil {
			return fmt.Errorf("nats: publish to %s: %w", topic, err)
		}
		out[i] = nm
	}
	if err := c.connected(); err != nil {
		return fmt.Errorf("nats: publish to %s: %w", topic, err)
	}
	if _, err := c.ensureStream(ctx, topic); err != nil {
		return err
	}
	return c.publishAll(ctx, out, msgs, topic, false, func() { c.forget(topic) })
}

// publishAll publishes nms asynchronously and waits for every PubAck. A
// duplicate answer is an error when a new delivery was meant: always when
// fresh is set, else for replays. lost is called when the stream went away.
func (c *Client) publishAll(ctx context.Context, nms []*natsgo.Msg, msgs []*handoff.Message, where string, fresh bool, lost func()) error {
	stall := c.cfg.publishTimeout
	if dl, ok := ctx.Deadline(); ok {
		stall = min(stall, max(time.Until(dl), time.Millisecond))
	}
	// Order per key: a connection that drops mid-batch loses the tail of
	// what it had sent, while what is published after the reconnect is
	// stored; republishing the lost part would then put it after later
	// messages. So the batch is sent on one connection only: once the
	// connection is not the one it started on (or is down), nothing more
	// is sent, and the call fails after the acks of what was sent. A retry
	// sends the whole batch again in order (the stored prefix is absorbed
	// by the duplicate window).
	epoch := c.nc.Stats().Reconnects
	futures := make([]jetstream.PubAckFuture, 0, len(nms))
	var sendErr error
	for i, nm := range nms {
		if !c.nc.IsConnected() {
			sendErr = fmt.Errorf("nats: publish %s to %s: %d of %d messages not sent: %w", msgs[i].ID, where, len(nms)-i, len(nms), c.unreachable())
			break
		}
		if c.nc.Stats().Reconnects != epoch {
			sendErr = fmt.Errorf("nats: publish %s to %s: the connection was re-established during the batch; %d of %d messages not sent (retry the batch in order)",
				msgs[i].ID, where, len(nms)-i, len(nms))
			break
		}
		f, err := c.js.PublishMsgAsync(nm, jetstream.WithStallWait(stall))
		if err != nil {
			sendErr = fmt.Errorf("nats: publish %s to %s: %w", msgs[i].ID, where, err)
			break
		}
		futures = append(futures, f)
	}
	if sendErr != nil {
		// The acks of what was sent are not awaited: the batch failed and
		// is retried whole.
		return sendErr
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack != nil && ack.Duplicate && (fresh || msgs[i].IsReplay()) {
				return fmt.Errorf("nats: publish %s to %s: stream %s holds Nats-Msg-Id %q already (within its duplicate window): %w",
					msgs[i].ID, where, ack.Stream, msgs[i].DedupKey(), handoff.ErrDuplicate)
			}
		case err := <-f.Err():
			if errors.Is(err, jetstream.ErrNoStreamResponse) && lost != nil {
				lost() // the stream went away: create it again next time
			}
			if !c.nc.IsConnected() {
				err = fmt.Errorf("%w (%w)", err, c.unreachable())
			}
			return fmt.Errorf("nats: publish %s to %s: %w", msgs[i].ID, where, err)
		case <-ctx.Done():
			return fmt.Errorf("nats: publish %s to %s: waiting for ack: %w", msgs[i].ID, where, ctx.Err())
		}
	}
	return nil
}

// CheckSize reports whether Publish would refuse m for its size: data and
// headers over the server's max_payload (the last value the server
// announced; before the first connection, handoff.DefaultMaxMessageSize by
// handoff.Message.Size). outbox.WithBrokerLimit uses it, so a message the
// relay could never publish is refused when it is written.
func (c *Client) CheckSize(ctx context.Context, topic string, m *handoff.Message) error {
	limit := c.maxPayload()
	if limit <= 0 {
		return handoff.CheckSize(m, handoff.DefaultMaxMessageSize)
	}
	_, err := encode(topic, m, limit)
	var ve *handoff.ValidationError
	if errors.As(err, &ve) && ve.Attribute == "data" {
		return err
	}
	return nil // other rules are Validate's, which the writer runs itself
}

// maxPayload is the server's max_payload, remembered across disconnects
// (0 before the first connection).
func (c *Client) maxPayload() int {
	if n := int(c.nc.MaxPayload()); n > 0 {
		c.lastMaxPayload.Store(int64(n))
		return n
	}
	return int(c.lastMaxPayload.Load())
}

// Check reports whether the client is connected: nil, or an error matching
// ErrNotConnected naming the server and why it cannot be reached.
// relay.Relay calls it at start and while the broker is down, to log the
// outage with its cause.
func (c *Client) Check(ctx context.Context) error {
	return c.connected()
}

func (c *Client) connected() error {
	if c.nc.IsConnected() {
		return nil
	}
	return c.unreachable()
}

// unreachable explains why the connection is down: the servers it tries
// and what a TCP dial to them answers (nats.go keeps no reconnect error).
// The answer is cached for a second, so a caller retrying in a loop does
// not dial in a loop.
func (c *Client) unreachable() error {
	if c.nc.IsClosed() {
		return fmt.Errorf("%w: %w", ErrNotConnected, jetstream.ErrConnectionClosed)
	}
	c.probeMu.Lock()
	defer c.probeMu.Unlock()
	if time.Since(c.probeAt) < time.Second && c.probeErr != nil {
		return c.probeErr
	}
	var addrs []string
	var cause error
	for _, s := range c.nc.Servers() {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			continue
		}
		addrs = append(addrs, u.Redacted())
		if cause == nil && len(addrs) <= 3 {
			conn, err := net.DialTimeout("tcp", u.Host, time.Second)
			if err != nil {
				cause = err
			} else {
				conn.Close()
			}
		}
	}
	if cause == nil {
		cause = fmt.Errorf("the server answers TCP, but the NATS connection is %v", c.nc.Status())
	}
	c.probeAt = time.Now()
	c.probeErr = fmt.Errorf("%w to %s (%v): %w", ErrNotConnected, strings.Join(addrs, ", "), c.nc.Status(), cause)
	return c.probeErr
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
	hdr[jetstream.MsgIDHeader] = []string{m.DedupKey()}
	nm := &natsgo.Msg{Subject: topic, Header: hdr, Data: m.Data}
	if limit > 0 {
		if n := nm.Size() - len(nm.Subject); n > limit {
			return nil, &handoff.ValidationError{ID: m.ID, Attribute: "data",
				Rule: fmt.Sprintf("message is %d bytes with its NATS headers, over the server's max_payload of %d; %s", n, limit, handoff.ClaimCheckHint)}
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
