package bulkhead

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrFull is returned when a call can neither run nor wait: the concurrency
// limit is reached and the queue is full (or disabled), or the queue wait
// limit passed. It is not retryable (retry.IsRetryable reports false).
var ErrFull error = rejectError("bulkhead: full")

type rejectError string

func (e rejectError) Error() string { return string(e) }

// Retryable reports false: retrying a shed call at once only adds load.
func (rejectError) Retryable() bool { return false }

// Option configures a [Bulkhead]; options are validated by [New].
type Option func(*config) error

type config struct {
	maxQueue int
	maxWait  time.Duration
	listener Listener
}

// WithMaxQueue lets up to n callers wait for a slot when all are taken.
// Default 0: a call that finds no free slot fails at once with [ErrFull].
func WithMaxQueue(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("bulkhead: WithMaxQueue: n must be >= 0, got %d", n)
		}
		c.maxQueue = n
		return nil
	}
}

// WithMaxWait bounds how long a queued caller waits for a slot before it
// gets [ErrFull]. Default 0: it waits until its context is done.
func WithMaxWait(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("bulkhead: WithMaxWait: duration must be >= 0, got %v", d)
		}
		c.maxWait = d
		return nil
	}
}

// WithListener registers a hook told about every rejected call.
func WithListener(l Listener) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("bulkhead: WithListener: listener must not be nil")
		}
		c.listener = l
		return nil
	}
}

// Listener is told about every call the bulkhead rejects (shed). It is
// called synchronously from Acquire; keep it short.
type Listener interface {
	OnReject(Rejection)
}

// Rejection describes a rejected call.
type Rejection struct {
	Name string
	// Queued is true when the call waited in the queue and timed out there.
	Queued bool
	// Err is [ErrFull] or the context's error.
	Err error
}

// Snapshot is a point-in-time view of a bulkhead, for metrics.
type Snapshot struct {
	Name          string
	MaxConcurrent int
	InFlight      int
	Queued        int
	Rejected      uint64
}

// Bulkhead limits concurrent calls. Create it with [New]; it is safe for
// concurrent use.
type Bulkhead struct {
	inflight atomic.Int64
	queued   atomic.Int64
	rejected atomic.Uint64
	max      int64
	name     string
	cfg      config

	mu      sync.Mutex
	waiters []*waiter // FIFO
}

type waiter struct {
	ch      chan struct{}
	granted bool // guarded by mu
}

// New returns a bulkhead that lets at most maxConcurrent calls run at once.
func New(name string, maxConcurrent int, opts ...Option) (*Bulkhead, error) {
	if maxConcurrent < 1 {
		return nil, fmt.Errorf("bulkhead: New: maxConcurrent must be >= 1, got %d", maxConcurrent)
	}
	var cfg config
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	return &Bulkhead{max: int64(maxConcurrent), name: name, cfg: cfg}, nil
}

// Name returns the bulkhead's name.
func (b *Bulkhead) Name() string { return b.name }

// TryAcquire takes a slot if one is free and nobody is queued, without
// waiting. A true result must be paired with one [Bulkhead.Release].
func (b *Bulkhead) TryAcquire() bool {
	if b.queued.Load() != 0 {
		return false
	}
	for {
		n := b.inflight.Load()
		if n >= b.max {
			return false
		}
		if b.inflight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Acquire takes a slot, waiting in the queue if the options allow. It
// returns nil when the caller may proceed (then call [Bulkhead.Release]
// exactly once), [ErrFull] when it is shed, or the context's error when ctx
// is done while waiting. The fast path is two atomic operations and does
// not allocate.
func (b *Bulkhead) Acquire(ctx context.Context) error {
	if b.TryAcquire() {
		return nil
	}
	return b.acquireSlow(ctx)
}

func (b *Bulkhead) acquireSlow(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	if len(b.waiters) == 0 && b.tryTake() {
		b.mu.Unlock()
		return nil
	}
	if len(b.waiters) >= b.cfg.maxQueue {
		b.mu.Unlock()
		return b.reject(false, ErrFull)
	}
	w := &waiter{ch: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.queued.Add(1)
	b.grantLocked() // a slot may have been released before queued was visible
	b.mu.Unlock()

	var timeout <-chan time.Time
	if b.cfg.maxWait > 0 {
		t := time.NewTimer(b.cfg.maxWait)
		defer t.Stop()
		timeout = t.C
	}
	var err error
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timeout:
		err = ErrFull
	}
	b.mu.Lock()
	if w.granted {
		b.mu.Unlock()
		b.Release() // granted while we gave up: hand the slot on
		return b.reject(true, err)
	}
	for i, x := range b.waiters {
		if x == w {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			b.queued.Add(-1)
			break
		}
	}
	b.mu.Unlock()
	return b.reject(true, err)
}

func (b *Bulkhead) reject(queued bool, err error) error {
	b.rejected.Add(1)
	if b.cfg.listener != nil {
		b.cfg.listener.OnReject(Rejection{Name: b.name, Queued: queued, Err: err})
	}
	return err
}

func (b *Bulkhead) tryTake() bool {
	for {
		n := b.inflight.Load()
		if n >= b.max {
			return false
		}
		if b.inflight.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// grantLocked hands free slots to waiters in FIFO order; b.mu must be held.
func (b *Bulkhead) grantLocked() {
	for len(b.waiters) > 0 && b.tryTake() {
		w := b.waiters[0]
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
		b.queued.Add(-1)
		w.granted = true
		close(w.ch)
	}
}

// Release returns a slot taken by a successful Acquire or TryAcquire.
func (b *Bulkhead) Release() {
	b.inflight.Add(-1)
	if b.queued.Load() != 0 {
		b.mu.Lock()
		b.grantLocked()
		b.mu.Unlock()
	}
}

// Do runs fn inside a slot: Acquire, fn, Release. It returns the Acquire
// error without calling fn, or fn's error.
func (b *Bulkhead) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := b.Acquire(ctx); err != nil {
		return err
	}
	defer b.Release()
	return fn(ctx)
}

// Snapshot returns current counts.
func (b *Bulkhead) Snapshot() Snapshot {
	return Snapshot{
		Name:          b.name,
		MaxConcurrent: int(b.max),
		InFlight:      int(b.inflight.Load()),
		Queued:        int(b.queued.Load()),
		Rejected:      b.rejected.Load(),
	}
}
