package breaker

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// countWindow holds the outcomes of the last len(slots) calls in a ring.
// Each slot is swapped atomically and the aggregate counters are adjusted by
// the difference, so the counts are exact once concurrent writers finish.
type countWindow struct {
	seq   atomic.Uint64
	full  atomic.Bool // seq has reached size
	fails atomic.Int64
	slows atomic.Int64
	size  uint64
	magic uint64 // for fastmod by size
	slots []atomic.Uint32
}

func newCountWindow(size int) *countWindow {
	return &countWindow{size: uint64(size), magic: ^uint64(0)/uint64(size) + 1, slots: make([]atomic.Uint32, size)}
}

// slot returns i mod size for i < 2³² without a division (Lemire's fastmod).
// The sequence is reduced to 32 bits first, so once every 2³² calls the
// ring skips ahead: one window's order is perturbed, the counts stay exact.
func (w *countWindow) slot(i uint64) uint64 {
	hi, _ := bits.Mul64(w.magic*uint64(uint32(i)), w.size)
	return hi
}

// steady reports the steady state of a healthy dependency: the window is
// full of plain successes, so recording one more success would overwrite a
// success with a success and can be skipped: three loads, no write, no
// shared cache line dirtied under contention.
func (w *countWindow) steady() bool {
	return w.full.Load() && w.fails.Load() == 0 && w.slows.Load() == 0
}

func (w *countWindow) record(code uint32) Snapshot {
	if code == codePresent && w.steady() {
		return Snapshot{}
	}
	i := w.seq.Add(1)
	if i >= w.size && !w.full.Load() {
		w.full.Store(true)
	}
	s := &w.slots[w.slot(i-1)]
	old := s.Load()
	if old != code { // steady state: the slot already holds the same outcome, skip the write
		old = s.Swap(code)
	}
	if d := int64(code&codeFail) - int64(old&codeFail); d != 0 {
		w.fails.Add(d / int64(codeFail))
	}
	if d := int64(code&codeSlow) - int64(old&codeSlow); d != 0 {
		w.slows.Add(d / int64(codeSlow))
	}
	if code&(codeFail|codeSlow) == 0 && i > w.size {
		// A success cannot raise the rates, and the minimum number of calls
		// was passed long ago: nothing to evaluate.
		return Snapshot{}
	}
	return Snapshot{Calls: int64(min(i, w.size)), Failures: w.fails.Load(), SlowCalls: w.slows.Load()}
}

func (w *countWindow) snapshot() Snapshot {
	return Snapshot{Calls: int64(min(w.seq.Load(), w.size)), Failures: w.fails.Load(), SlowCalls: w.slows.Load()}
}

type bucket struct {
	id    atomic.Int64
	calls atomic.Int64
	fails atomic.Int64
	slows atomic.Int64
}

// timeWindow counts calls in len(buckets) buckets of width nanoseconds; bucket
// k holds the calls whose (coarse) time t has t/width == id. cur caches the
// bucket of the latest call, so the common case checks its range with two
// multiplications instead of dividing.
type timeWindow struct {
	width   int64
	cur     atomic.Pointer[bucket]
	buckets []bucket
	mu      sync.Mutex // serialises bucket reuse
}

func newTimeWindow(d time.Duration, n int, now int64) *timeWindow {
	w := &timeWindow{width: max(int64(d)/int64(n), 1), buckets: make([]bucket, n)}
	for i := range w.buckets {
		w.buckets[i].id.Store(-1)
	}
	w.bucketFor(max(now, 0))
	return w
}

func (w *timeWindow) bucketFor(now int64) *bucket {
	id := now / w.width
	b := &w.buckets[id%int64(len(w.buckets))]
	if b.id.Load() != id {
		w.mu.Lock()
		if b.id.Load() < id {
			b.calls.Store(0)
			b.fails.Store(0)
			b.slows.Store(0)
			b.id.Store(id)
		}
		w.mu.Unlock()
	}
	w.cur.Store(b)
	return b
}

func (w *timeWindow) record(now int64, code uint32) Snapshot {
	b := w.cur.Load()
	if id := b.id.Load(); id < 0 || now < id*w.width || now >= (id+1)*w.width {
		b = w.bucketFor(now)
	}
	b.calls.Add(1)
	if code&codeFail != 0 {
		b.fails.Add(1)
	}
	if code&codeSlow != 0 {
		b.slows.Add(1)
	}
	if code&(codeFail|codeSlow) == 0 {
		return Snapshot{}
	}
	return w.snapshot(now)
}

func (w *timeWindow) snapshot(now int64) Snapshot {
	cur := now / w.width
	n := int64(len(w.buckets))
	var s Snapshot
	for i := range w.buckets {
		b := &w.buckets[i]
		if id := b.id.Load(); id >= 0 && id > cur-n && id <= cur {
			s.Calls += b.calls.Load()
			s.Failures += b.fails.Load()
			s.SlowCalls += b.slows.Load()
		}
	}
	return s
}
