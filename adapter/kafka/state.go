package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The subscription core: per-partition buffers of polled records, the
// choice of what to deliver next, settle bookkeeping and the contiguous
// commit watermark. It does no I/O itself: committing and pausing go
// through the two small interfaces below, so it can be tested without a
// broker (and in a synctest bubble for the retry due times).

type committer interface {
	commit(ctx context.Context, items []commitItem) error
}

// commitItem is one partition's commit: the watermark, and in the commit
// metadata the offsets above it that are settled already (see skipMeta).
type commitItem struct {
	topic     string
	partition int32
	offset    int64
	meta      string
}

type pauser interface {
	PauseFetchPartitions(map[string][]int32) map[string][]int32
	ResumeFetchPartitions(map[string][]int32)
}

type entryState uint8

const (
	stBuffered  entryState = iota // polled, not yet delivered
	stDelivered                   // handed out, not settled
	stSettling                    // a Retry is producing its copy
	stSettled                     // acked or moved to the retry topic
)

type entry struct {
	rec   *kgo.Record
	p     *partState
	due   time.Time // retry records: not delivered before
	token string    // retry records: the HeaderRetryToken of the Retry that made it
	state entryState
}

type partState struct {
	topic     string
	partition int32
	retry     bool
	entries   []*entry // offset order; settled ones are dropped from the front
	pending   []*entry // polled, not yet delivered, in offset order
	inflight  int
	end       int64          // offset after the last polled record, -1 before any
	committed int64          // last committed offset, -1 unknown
	ver       int64          // settles so far
	comVer    int64          // settles covered by the last commit
	skip      map[int64]bool // settled above the committed offset, from commit metadata
	draining  bool           // being revoked: deliver nothing more
	gone      bool           // revoked or lost: settles no longer commit
	paused    bool
}

// watermark is the offset to commit: that of the first record not yet
// settled, or the one after the last polled record when all are settled.
// It never passes an unsettled record.
func (p *partState) watermark() int64 {
	i := 0
	for i < len(p.entries) && p.entries[i].state == stSettled {
		p.entries[i] = nil
		i++
	}
	p.entries = p.entries[i:]
	if len(p.entries) > 0 {
		return p.entries[0].rec.Offset
	}
	return p.end
}

type tpKey struct {
	topic     string
	partition int32
}

type core struct {
	main, retry string
	limit       int // deliveries in flight per kind (main, retry)
	bufCap      int // buffered records per partition before it is paused
	log         *slog.Logger
	cm          committer
	pz          pauser

	mu            sync.Mutex
	parts         map[tpKey]*partState
	order         []*partState // for round robin across main partitions
	rr            int
	mainInflight  int
	retryInflight int
	closing       bool                 // shutting down: the drain is done, revokes do not wait
	changed       chan struct{}        // closed and replaced on every change
	wake          chan struct{}        // one pending wake-up for the delivering loop
	retries       map[string]time.Time // this member's Retry calls by token: zero while running, then due time
	retryDirty    bool                 // retry records may have become deliverable: scan them
	retryDue      time.Time            // earliest due time found by the last scan

	commitMu sync.Mutex // serialises commits, coalescing concurrent ones
	pauseMu  sync.Mutex // serialises pause decisions with their application
}

func newCore(main, retry string, limit int, log *slog.Logger) *core {
	return &core{
		main: main, retry: retry, limit: limit, bufCap: max(limit, 16), log: log,
		parts:   make(map[tpKey]*partState),
		retries: make(map[string]time.Time),
		changed: make(chan struct{}),
		wake:    make(chan struct{}, 1),
	}
}

// signal wakes the delivering loop and every waiter on c.changed. Call with c.mu held.
func (c *core) signalLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// assign starts tracking newly assigned partitions.
func (c *core) assign(tps map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for t, ps := range tps {
		if t != c.main && t != c.retry {
			continue
		}
		for _, p := range ps {
			k := tpKey{t, p}
			if old := c.parts[k]; old != nil {
				c.dropLocked(old)
			}
			ps := &partState{topic: t, partition: p, retry: t == c.retry, end: -1, committed: -1}
			c.parts[k] = ps
			c.order = append(c.order, ps)
		}
	}
	c.signalLocked()
}

// dropLocked forgets a partition: its buffered records are discarded and
// its in-flight deliveries no longer count against the limit.
func (c *core) dropLocked(p *partState) {
	if p.gone {
		return
	}
	p.gone = true
	if p.retry {
		c.retryInflight -= p.inflight
	} else {
		c.mainInflight -= p.inflight
	}
	p.inflight, p.pending = 0, nil
	c.retryDirty = true
	delete(c.parts, tpKey{p.topic, p.partition})
	for i, q := range c.order {
		if q == p {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
}

// buffer adds polled records to their partitions. Records of partitions no
// longer assigned are dropped (their new owner reads them again).
func (c *core) buffer(recs []*kgo.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range recs {
		p := c.parts[tpKey{r.Topic, r.Partition}]
		if p == nil || p.draining || r.Offset < p.end {
			continue
		}
		e := &entry{rec: r, p: p}
		p.end = r.Offset + 1
		if p.skip[r.Offset] {
			// Settled by an earlier member after an unsettled
			// record; the commit metadata says so.
			delete(p.skip, r.Offset)
			e.state = stSettled
			p.entries = append(p.entries, e)
			continue
		}
		if p.retry {
			e.due = notBefore(r)
			e.token = headerValue(r, HeaderRetryToken)
			c.retryDirty = true
		}
		p.entries = append(p.entries, e)
		p.pending = append(p.pending, e)
	}
	c.signalLocked()
}

func headerValue(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// beginRetry and endRetry bracket a Retry call made by this member. Its
// copy is not delivered before the call has returned, and then not before
// delay has passed since: the caller (the consumer runtime) learns that it
// waits for a redelivery only when Retry returns, and a redelivery arriving
// before that would be taken for a new message and queued behind the very
// messages it holds back. (Other members go by handoff_not_before alone.)
func (c *core) beginRetry(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retries[token] = time.Time{}
}

func (c *core) endRetry(token string, delay time.Duration, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if ok {
		c.retries[token] = now.Add(delay)
	} else {
		delete(c.retries, token)
	}
	if len(c.retries) > 10000 {
		// Copies consumed by other members never come here.
		for k, t := range c.retries {
			if !t.IsZero() && now.Sub(t) > time.Hour {
				delete(c.retries, k)
			}
		}
	}
	c.retryDirty = true
	c.signalLocked()
}

// notBefore reads the retry due time of a record; zero when absent or bad
// (a bad header is reported on delivery).
func notBefore(r *kgo.Record) time.Time {
	for _, h := range r.Headers {
		if h.Key == HeaderNotBefore {
			ms, err := strconv.ParseInt(string(h.Value), 10, 64)
			if err != nil {
				return time.Time{}
			}
			return time.UnixMilli(ms)
		}
	}
	return time.Time{}
}

// next picks the next record to deliver and marks it delivered. When none
// can go now, it returns the earliest time a buffered retry record falls due
// (zero if none is waiting for its time).
//
// Retry records are preferred and have an in-flight allowance of their own,
// so a window full of main-topic records held back by the consumer runtime
// (waiting behind a retry of the same key) never blocks the retry that
// releases them. Within a retry partition a record is delivered as soon as
// it is due, even if an earlier one with a longer delay still waits.
func (c *core) next(now time.Time) (*entry, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var earliest time.Time
	if c.retryInflight < c.limit {
		// Scan the waiting retry records only when something changed or
		// the earliest due time has come, not on every main delivery.
		if c.retryDirty || (!c.retryDue.IsZero() && !now.Before(c.retryDue)) {
			c.retryDirty, c.retryDue = false, time.Time{}
			for _, p := range c.order {
				if !p.retry || p.draining {
					continue
				}
				for i, e := range p.pending {
					due := e.due
					if local, mine := c.retries[e.token]; mine && e.token != "" {
						if local.IsZero() {
							continue // its Retry call has not returned
						}
						if local.After(due) {
							due = local
						}
					}
					if !due.After(now) {
						c.takeLocked(e, i)
						delete(c.retries, e.token)
						c.retryDirty = true // more may be due
						return e, time.Time{}
					}
					if c.retryDue.IsZero() || due.Before(c.retryDue) {
						c.retryDue = due
					}
				}
			}
		}
		earliest = c.retryDue
	}
	if c.mainInflight < c.limit {
		n := len(c.order)
		for i := 0; i < n; i++ {
			p := c.order[(c.rr+i)%n]
			if p.retry || p.draining || len(p.pending) == 0 {
				continue
			}
			c.rr = (c.rr + i + 1) % n
			e := p.pending[0]
			c.takeLocked(e, 0)
			return e, time.Time{}
		}
	}
	return nil, earliest
}

func (c *core) takeLocked(e *entry, i int) {
	e.state = stDelivered
	p := e.p
	copy(p.pending[i:], p.pending[i+1:])
	p.pending[len(p.pending)-1] = nil
	p.pending = p.pending[:len(p.pending)-1]
	e.p.inflight++
	if e.p.retry {
		c.retryInflight++
	} else {
		c.mainInflight++
	}
}

// settle marks a delivered record settled, after running before (the retry
// produce) if given, and commits the partition's watermark if it moved.
// The commit is synchronous: when settle returns nil, every record up to the
// watermark is committed.
func (c *core) settle(ctx context.Context, e *entry, before func(context.Context) error) error {
	c.mu.Lock()
	p := e.p
	if e.state != stDelivered {
		c.mu.Unlock()
		return ErrSettled
	}
	if p.gone {
		c.mu.Unlock()
		return fmt.Errorf("kafka: settle %s/%d@%d: %w", p.topic, p.partition, e.rec.Offset, ErrRevoked)
	}
	if before != nil {
		e.state = stSettling
		c.mu.Unlock()
		err := before(ctx)
		c.mu.Lock()
		if err != nil {
			e.state = stDelivered
			c.mu.Unlock()
			return err
		}
		if p.gone {
			e.state = stSettled
			c.mu.Unlock()
			return fmt.Errorf("kafka: settle %s/%d@%d: %w", p.topic, p.partition, e.rec.Offset, ErrRevoked)
		}
	}
	e.state = stSettled
	p.inflight--
	if p.retry {
		c.retryInflight--
		c.retryDirty = true
	} else {
		c.mainInflight--
	}
	p.ver++
	ver := p.ver
	c.signalLocked()
	c.mu.Unlock()
	return c.commitUpTo(ctx, p, ver)
}

// commitUpTo makes sure the commit of p covers its settle number ver.
// Concurrent callers queue on commitMu; the first commits every partition
// with new settles, and the others find theirs already done.
func (c *core) commitUpTo(ctx context.Context, p *partState, ver int64) error {
	c.mu.Lock()
	done := p.comVer >= ver
	c.mu.Unlock()
	if done {
		return nil
	}
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	c.mu.Lock()
	if p.comVer >= ver {
		c.mu.Unlock()
		return nil
	}
	if p.gone {
		c.mu.Unlock()
		return fmt.Errorf("kafka: commit %s/%d: %w", p.topic, p.partition, ErrRevoked)
	}
	items, parts, vers := c.uncommittedLocked(c.order)
	c.mu.Unlock()
	if err := c.cm.commit(ctx, items); err != nil {
		return fmt.Errorf("kafka: commit %s/%d: %w", p.topic, p.partition, err)
	}
	c.markCommitted(items, parts, vers)
	return nil
}

// uncommittedLocked returns the commits of the given partitions that have
// settles their last commit does not cover.
func (c *core) uncommittedLocked(ps []*partState) ([]commitItem, []*partState, []int64) {
	var (
		items []commitItem
		parts []*partState
		vers  []int64
	)
	for _, q := range ps {
		if q.gone || q.ver == q.comVer {
			continue
		}
		w := q.watermark()
		if w < 0 {
			continue
		}
		items = append(items, commitItem{topic: q.topic, partition: q.partition, offset: w, meta: skipMeta(w, q.entries)})
		parts = append(parts, q)
		vers = append(vers, q.ver)
	}
	return items, parts, vers
}

func (c *core) markCommitted(items []commitItem, parts []*partState, vers []int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, q := range parts {
		q.committed = max(q.committed, items[i].offset)
		q.comVer = max(q.comVer, vers[i])
	}
}

// shutdown stops all delivery and makes later revokes skip their wait.
func (c *core) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closing = true
	for _, p := range c.order {
		p.draining = true
	}
}

// commitAll commits every partition with settles not yet committed.
func (c *core) commitAll(ctx context.Context) error {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	c.mu.Lock()
	items, parts, vers := c.uncommittedLocked(c.order)
	c.mu.Unlock()
	if len(parts) == 0 {
		return nil
	}
	if err := c.cm.commit(ctx, items); err != nil {
		return fmt.Errorf("kafka: commit: %w", err)
	}
	c.markCommitted(items, parts, vers)
	return nil
}

// Commit metadata lists the records settled above the committed offset, so
// that the next owner of the partition does not deliver them again:
// "handoff1:<offset>:<delta>,<delta>,..." with deltas from the offset in
// base 36. It is cut to metaMax bytes (Kafka's offset.metadata.max.bytes is
// 4096 by default); records that do not fit are simply delivered again.
const (
	metaPrefix = "handoff1:"
	metaMax    = 3000
)

func skipMeta(w int64, entries []*entry) string {
	var b []byte
	for _, e := range entries {
		if e.state != stSettled || e.rec.Offset <= w {
			continue
		}
		if b == nil {
			b = append(b, metaPrefix...)
			b = strconv.AppendInt(b, w, 10)
			b = append(b, ':')
		} else {
			b = append(b, ',')
		}
		n := len(b)
		b = strconv.AppendInt(b, e.rec.Offset-w, 36)
		if len(b) > metaMax {
			b = b[:n-1]
			break
		}
	}
	return string(b)
}

// parseSkipMeta reads skipMeta's output for a partition committed at
// offset; anything else (another tool's metadata, a different offset)
// yields nil.
func parseSkipMeta(meta string, offset int64) map[int64]bool {
	rest, ok := strings.CutPrefix(meta, metaPrefix)
	if !ok {
		return nil
	}
	ws, list, ok := strings.Cut(rest, ":")
	if !ok {
		return nil
	}
	w, err := strconv.ParseInt(ws, 10, 64)
	if err != nil || w != offset || w < 0 {
		return nil
	}
	skip := make(map[int64]bool)
	for _, d := range strings.Split(list, ",") {
		n, err := strconv.ParseInt(d, 36, 64)
		if err != nil || n <= 0 || n > math.MaxInt64-w {
			return nil
		}
		skip[w+n] = true
	}
	return skip
}

// fetched applies the commit metadata of newly assigned partitions.
func (c *core) fetched(tp tpKey, offset int64, meta string) {
	skip := parseSkipMeta(meta, offset)
	if skip == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.parts[tp]; p != nil && p.end < 0 {
		p.skip = skip
	}
}

// drain waits until the given partitions (nil: all) have nothing in flight,
// or until timeout or ctx.
func (c *core) drain(ctx context.Context, timeout time.Duration, match func(*partState) bool) {
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	for {
		c.mu.Lock()
		busy := false
		for _, p := range c.order {
			if p.inflight > 0 && (match == nil || match(p)) {
				busy = true
				break
			}
		}
		ch := c.changed
		c.mu.Unlock()
		if !busy || timeout <= 0 {
			return
		}
		select {
		case <-ch:
		case <-timer:
			return
		case <-ctx.Done():
			return
		}
	}
}

// revoke stops delivering the partitions, waits up to timeout for their
// deliveries in flight, commits their contiguous watermark and forgets them.
// commit is false when the partitions are lost (the group generation is
// gone, a commit would fail).
func (c *core) revoke(ctx context.Context, tps map[string][]int32, timeout time.Duration, commit bool) {
	c.mu.Lock()
	if c.closing {
		timeout = 0
	}
	var ps []*partState
	for t, parts := range tps {
		for _, n := range parts {
			if p := c.parts[tpKey{t, n}]; p != nil {
				p.draining = true
				ps = append(ps, p)
			}
		}
	}
	c.mu.Unlock()
	if len(ps) == 0 {
		return
	}
	if commit && !c.closing {
		mine := make(map[*partState]bool, len(ps))
		for _, p := range ps {
			mine[p] = true
		}
		c.drain(ctx, timeout, func(p *partState) bool { return mine[p] })
	}
	c.commitMu.Lock()
	if commit {
		c.mu.Lock()
		items, parts, vers := c.uncommittedLocked(ps)
		c.mu.Unlock()
		if len(parts) > 0 {
			if err := c.cm.commit(ctx, items); err != nil {
				c.log.Warn("kafka: commit on revoke failed; records after the last commit are delivered again", "commits", items, "err", err)
			} else {
				c.markCommitted(items, parts, vers)
			}
		}
	}
	resume := make(map[string][]int32)
	c.mu.Lock()
	for _, p := range ps {
		if p.paused {
			resume[p.topic] = append(resume[p.topic], p.partition)
			p.paused = false
		}
		c.dropLocked(p)
	}
	c.signalLocked()
	c.mu.Unlock()
	c.commitMu.Unlock()
	// Paused partitions stay paused in franz-go across assignments.
	if len(resume) > 0 && c.pz != nil {
		c.pauseMu.Lock()
		c.pz.ResumeFetchPartitions(resume)
		c.pauseMu.Unlock()
	}
}

// adjustPauses pauses fetching for partitions whose buffer is full and
// resumes those that have room again.
func (c *core) adjustPauses() {
	if c.pz == nil {
		return
	}
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	pause := make(map[string][]int32)
	resume := make(map[string][]int32)
	c.mu.Lock()
	for _, p := range c.order {
		want := len(p.pending) >= c.bufCap
		if want == p.paused {
			continue
		}
		p.paused = want
		if want {
			pause[p.topic] = append(pause[p.topic], p.partition)
		} else {
			resume[p.topic] = append(resume[p.topic], p.partition)
		}
	}
	c.mu.Unlock()
	if len(pause) > 0 {
		c.pz.PauseFetchPartitions(pause)
	}
	if len(resume) > 0 {
		c.pz.ResumeFetchPartitions(resume)
	}
}

// closeAll forgets every partition: settles from now on return ErrRevoked.
func (c *core) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range append([]*partState(nil), c.order...) {
		c.dropLocked(p)
	}
	c.signalLocked()
}

// inflight reports the deliveries in flight, main and retry.
func (c *core) inflight() (main, retry int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mainInflight, c.retryInflight
}
