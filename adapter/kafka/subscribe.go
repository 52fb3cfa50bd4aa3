package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/handoffhq/handoff"
)

// pollMax bounds the records taken from franz-go per poll.
const pollMax = 500

// Subscribe joins the consumer group sub.Group on sub.Topic and on the
// group's retry topic (RetryTopic) and delivers their records until ctx is
// done. A new group starts from the earliest retained record.
//
// Offsets are committed per partition only up to the first record not yet
// settled, so a crash or rebalance never skips an unfinished record; records
// settled after an unfinished one are named in the commit metadata, and the
// next owner of the partition skips them. Up to
// sub.MaxInFlight main-topic records (and as many retry records) are out at
// once; fetching pauses for partitions whose buffer is full.
//
// On cancellation it stops delivering, waits up to the drain timeout for
// deliveries in flight, commits, leaves the group and returns nil.
func (c *Client) Subscribe(ctx context.Context, sub handoff.Subscription, deliver func(*handoff.Delivery)) error {
	if sub.Topic == "" || sub.Group == "" {
		return errors.New("kafka: subscribe: Subscription.Topic and Subscription.Group are required")
	}
	if sub.MaxInFlight < 0 {
		return fmt.Errorf("kafka: subscribe %s/%s: MaxInFlight %d must be ≥ 0", sub.Topic, sub.Group, sub.MaxInFlight)
	}
	if deliver == nil {
		return errors.New("kafka: subscribe: deliver is required")
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	limit := sub.MaxInFlight
	if limit == 0 {
		limit = DefaultMaxInFlight
	}
	retryTopic := RetryTopic(sub.Topic, sub.Group)
	if err := c.ensureTopics(ctx, sub.Topic, retryTopic); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	core := newCore(sub.Topic, retryTopic, limit, c.cfg.log.With("topic", sub.Topic, "group", sub.Group))
	drain := c.cfg.drain
	// Java's fetch.max.wait.ms default (franz-go waits 5s): a fetch for
	// partitions with nothing new does not hold up partitions joining the
	// fetch session later, such as after a rebalance. Overridable.
	opts := append([]kgo.Opt{kgo.FetchMaxWait(500 * time.Millisecond)}, c.baseOpts()...)
	opts = append(opts,
		kgo.ConsumerGroup(sub.Group),
		kgo.ConsumeTopics(sub.Topic, retryTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		// Polled records are moved to our buffers before the next
		// rebalance callback may run, so a revoke never races them.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, tps map[string][]int32) {
			core.log.Debug("kafka: partitions assigned", "partitions", tps)
			core.assign(tps)
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, _ *kgo.Client, tps map[string][]int32) {
			core.log.Debug("kafka: partitions revoked", "partitions", tps)
			core.revoke(ctx, tps, drain, true)
		}),
		kgo.OnOffsetsFetched(func(_ context.Context, _ *kgo.Client, resp *kmsg.OffsetFetchResponse) error {
			offsetsFetched(core, resp)
			return nil
		}),
		kgo.OnPartitionsLost(func(ctx context.Context, _ *kgo.Client, tps map[string][]int32) {
			core.log.Warn("kafka: partitions lost", "partitions", tps)
			core.revoke(ctx, tps, 0, false)
		}),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka: subscribe %s/%s: %w", sub.Topic, sub.Group, err)
	}
	core.cm = groupCommitter{cl}
	core.pz = cl

	pollCtx, stopPoll := context.WithCancel(context.Background())
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		c.poll(pollCtx, cl, core)
	}()

	s := &subscription{c: c, core: core, topic: sub.Topic, retryTopic: retryTopic, token: newToken()}
	s.run(ctx, deliver)

	// Shut down: no more fetching, let settles in flight finish, commit
	// the contiguous watermarks, then leave the group (the final revoke
	// commits again, which is then a no-op).
	stopPoll()
	<-pollDone
	dctx, cancel := context.WithTimeout(context.Background(), drain+10*time.Second)
	defer cancel()
	core.drain(dctx, drain, nil)
	core.shutdown()
	if err := core.commitAll(dctx); err != nil {
		core.log.Warn("kafka: final commit failed; records after the last commit are delivered again", "err", err)
	}
	// Leaving is bounded, so an unreachable broker cannot hold Subscribe.
	lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer lcancel()
	cl.AllowRebalance()
	if err := cl.LeaveGroupContext(lctx); err != nil {
		core.log.Warn("kafka: leave group", "err", err)
	}
	cl.Close()
	core.closeAll()
	return nil
}

// poll moves fetched records into the core until ctx is done.
func (c *Client) poll(ctx context.Context, cl *kgo.Client, core *core) {
	recs := make([]*kgo.Record, 0, pollMax)
	for {
		fs := cl.PollRecords(ctx, pollMax)
		if ctx.Err() != nil || fs.IsClientClosed() {
			cl.AllowRebalance()
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				core.log.Warn("kafka: fetch error", "fetch_topic", t, "partition", p, "err", err)
			}
		})
		recs = recs[:0]
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		core.buffer(recs)
		cl.AllowRebalance()
		core.adjustPauses()
	}
}

// groupCommitter commits through the group member, which guards against
// committing with a stale generation, and puts each partition's skip list
// in the commit metadata.
type groupCommitter struct{ cl *kgo.Client }

func (g groupCommitter) commit(ctx context.Context, items []commitItem) error {
	offs := make(map[string]map[int32]kgo.EpochOffset)
	meta := make(map[tpKey]string)
	for _, it := range items {
		if offs[it.topic] == nil {
			offs[it.topic] = make(map[int32]kgo.EpochOffset)
		}
		offs[it.topic][it.partition] = kgo.EpochOffset{Epoch: -1, Offset: it.offset}
		if it.meta != "" {
			meta[tpKey{it.topic, it.partition}] = it.meta
		}
	}
	ctx = kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			for j := range t.Partitions {
				if m, ok := meta[tpKey{t.Topic, t.Partitions[j].Partition}]; ok {
					t.Partitions[j].Metadata = &m
				}
			}
		}
		return nil
	})
	var rerr error
	g.cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			rerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && rerr == nil {
					rerr = fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err)
				}
			}
		}
	})
	return rerr
}

// offsetsFetched hands the commit metadata of newly assigned partitions to
// the core. The response carries topics at the top level (OffsetFetch v0-7)
// or per group (v8+).
func offsetsFetched(core *core, resp *kmsg.OffsetFetchResponse) {
	each := func(topic string, partition int32, offset int64, meta *string) {
		if meta != nil && offset >= 0 {
			core.fetched(tpKey{topic, partition}, offset, *meta)
		}
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			each(t.Topic, p.Partition, p.Offset, p.Metadata)
		}
	}
	for _, g := range resp.Groups {
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				each(t.Topic, p.Partition, p.Offset, p.Metadata)
			}
		}
	}
}

type subscription struct {
	c          *Client
	core       *core
	topic      string
	retryTopic string
	token      string        // random prefix of this subscription's retry tokens
	seq        atomic.Uint64 // retry token counter
}

// run is the delivering loop: one goroutine, records of a partition in order.
func (s *subscription) run(ctx context.Context, deliver func(*handoff.Delivery)) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if ctx.Err() != nil {
			return
		}
		e, due := s.core.next(time.Now())
		if e != nil {
			deliver(s.delivery(e))
			s.core.adjustPauses()
			continue
		}
		var tc <-chan time.Time
		if !due.IsZero() {
			if timer == nil {
				timer = time.NewTimer(time.Until(due))
			} else {
				timer.Reset(time.Until(due))
			}
			tc = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-s.c.done:
			return
		case <-s.core.wake:
		case <-tc:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

func (s *subscription) delivery(e *entry) *handoff.Delivery {
	msg, attempt, err := decode(e.rec, e.p.retry)
	return &handoff.Delivery{
		Message: msg,
		Err:     err,
		Topic:   s.topic,
		Attempt: attempt,
		Settler: &settler{s: s, e: e, attempt: attempt},
	}
}

// decode reads a record in CloudEvents binary mode. On error the message
// holds what could be read, with the value in Data.
func decode(r *kgo.Record, retry bool) (*handoff.Message, int, error) {
	keys := make([]string, 0, len(r.Headers))
	vals := make(map[string]string, len(r.Headers))
	attempt := 1
	var errAttempt error
	for _, h := range r.Headers {
		switch {
		case h.Key == HeaderAttempt:
			if !retry {
				continue
			}
			n, err := strconv.Atoi(string(h.Value))
			if err != nil || n < 1 {
				errAttempt = fmt.Errorf("kafka: decode %s/%d@%d: header %s %q is not a positive integer", r.Topic, r.Partition, r.Offset, HeaderAttempt, h.Value)
				continue
			}
			attempt = n
		case h.Key == HeaderRetryToken:
			continue
		case h.Key == HeaderNotBefore:
			if !retry {
				continue
			}
			if _, err := strconv.ParseInt(string(h.Value), 10, 64); err != nil {
				errAttempt = fmt.Errorf("kafka: decode %s/%d@%d: header %s %q is not unix milliseconds", r.Topic, r.Partition, r.Offset, HeaderNotBefore, h.Value)
			}
		default:
			if _, dup := vals[h.Key]; !dup {
				keys = append(keys, h.Key)
				vals[h.Key] = string(h.Value)
			}
		}
	}
	m, err := handoff.KafkaBinding.Decode(keys, func(k string) string { return vals[k] }, r.Value)
	if err != nil {
		return m, attempt, fmt.Errorf("kafka: decode %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	return m, attempt, errAttempt
}

type settler struct {
	s       *subscription
	e       *entry
	attempt int
}

// Ack settles the record and commits its partition's watermark if it moved;
// when it returns nil the commit is done (or the record waits behind an
// earlier unsettled one, which will carry it when it is settled).
func (st *settler) Ack(ctx context.Context) error {
	return st.s.core.settle(ctx, st.e, nil)
}

// Retry produces a copy of the record to the group's retry topic, with
// handoff_attempt one higher and handoff_not_before now+delay, waits for the
// acknowledgement, and only then settles the original.
func (st *settler) Retry(ctx context.Context, delay time.Duration) error {
	if delay < 0 {
		delay = 0
	}
	token := st.s.token + strconv.FormatUint(st.s.seq.Add(1), 36)
	st.s.core.beginRetry(token)
	produced := false
	defer func() { st.s.core.endRetry(token, delay, produced) }()
	return st.s.core.settle(ctx, st.e, func(ctx context.Context) error {
		prod, _, err := st.s.c.producer()
		if err != nil {
			return err
		}
		r := st.e.rec
		cp := &kgo.Record{Topic: st.s.retryTopic, Key: r.Key, Value: r.Value}
		for _, h := range r.Headers {
			if h.Key != HeaderAttempt && h.Key != HeaderNotBefore && h.Key != HeaderRetryToken {
				cp.Headers = append(cp.Headers, h)
			}
		}
		cp.Headers = append(cp.Headers,
			kgo.RecordHeader{Key: HeaderAttempt, Value: []byte(strconv.Itoa(st.attempt + 1))},
			kgo.RecordHeader{Key: HeaderNotBefore, Value: []byte(strconv.FormatInt(time.Now().Add(delay).UnixMilli(), 10))},
			kgo.RecordHeader{Key: HeaderRetryToken, Value: []byte(token)},
		)
		if err := prod.ProduceSync(ctx, cp).FirstErr(); err != nil {
			return fmt.Errorf("kafka: retry %s/%d@%d to %s: %w", r.Topic, r.Partition, r.Offset, st.s.retryTopic, err)
		}
		produced = true
		return nil
	})
}

// newToken returns a random prefix for retry tokens.
func newToken() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "-"
}
