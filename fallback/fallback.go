package fallback

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff"
)

// Func computes a fallback value for key after the call failed with err.
type Func[K comparable, V any] func(ctx context.Context, key K, err error) (V, error)

// Option configures a [Fallback]; options are validated by [New].
type Option func(*config) error

type config struct {
	cacheSize int
	maxStale  time.Duration
	should    func(error) bool
	listener  Listener
	name      string
}

// WithCache keeps the last good value of up to maxEntries keys (the least
// recently used key is evicted first) and serves it when a call fails, if it
// is not older than maxStale. A value older than maxStale is never served.
func WithCache(maxEntries int, maxStale time.Duration) Option {
	return func(c *config) error {
		if maxEntries < 1 {
			return fmt.Errorf("fallback: WithCache: maxEntries must be >= 1, got %d", maxEntries)
		}
		if maxStale <= 0 {
			return fmt.Errorf("fallback: WithCache: maxStale must be > 0, got %v", maxStale)
		}
		c.cacheSize, c.maxStale = maxEntries, maxStale
		return nil
	}
}

// WithShouldFallback decides which errors get a fallback. Default: every
// error except those made by handoff.Permanent (the request itself is bad)
// and context.Canceled (the caller gave up).
func WithShouldFallback(f func(err error) bool) Option {
	return func(c *config) error {
		if f == nil {
			return fmt.Errorf("fallback: WithShouldFallback: function must not be nil")
		}
		c.should = f
		return nil
	}
}

// WithName names the fallback in events.
func WithName(name string) Option {
	return func(c *config) error { c.name = name; return nil }
}

// WithListener registers a hook told about every fallback served.
func WithListener(l Listener) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("fallback: WithListener: listener must not be nil")
		}
		c.listener = l
		return nil
	}
}

// Source says where a fallback value came from.
type Source int

const (
	// SourceCache: the last good value from the cache.
	SourceCache Source = iota + 1
	// SourceFunc: the user's fallback function.
	SourceFunc
)

// String returns "cache" or "func".
func (s Source) String() string {
	switch s {
	case SourceCache:
		return "cache"
	case SourceFunc:
		return "func"
	}
	return "unknown"
}

// Event describes one fallback served.
type Event struct {
	Name   string
	Source Source
	Age    time.Duration // SourceCache: how old the served value is
	Err    error         // the call's error
}

// Listener is told about every fallback served, synchronously from Do.
type Listener interface {
	OnFallback(Event)
}

// ErrNoFallback is wrapped (with the call's error) in the error returned when
// a call failed and no fallback applied: no fresh cached value and no Func.
var ErrNoFallback = errors.New("fallback: no fallback available")

// Fallback serves a substitute when a call fails: the last good value for the
// key (bounded cache, bounded staleness), else the user's [Func]. Create it
// with [New]; it is safe for concurrent use.
type Fallback[K comparable, V any] struct {
	fn     Func[K, V]
	cfg    config
	served atomic.Uint64

	mu      sync.Mutex
	entries map[K]*entry[K, V]
	head    entry[K, V] // sentinel of the LRU list: head.next is most recent
}

type entry[K comparable, V any] struct {
	key        K
	val        V
	at         time.Time
	prev, next *entry[K, V]
}

// New returns a fallback. fn may be nil when WithCache is given; with
// neither, New fails.
func New[K comparable, V any](fn Func[K, V], opts ...Option) (*Fallback[K, V], error) {
	var cfg config
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if fn == nil && cfg.cacheSize == 0 {
		return nil, errors.New("fallback: New: need a Func or WithCache")
	}
	f := &Fallback[K, V]{fn: fn, cfg: cfg}
	if cfg.cacheSize > 0 {
		f.entries = make(map[K]*entry[K, V], min(cfg.cacheSize, 1024))
		f.head.next, f.head.prev = &f.head, &f.head
	}
	return f, nil
}

func (f *Fallback[K, V]) should(err error) bool {
	if f.cfg.should != nil {
		return f.cfg.should(err)
	}
	return !handoff.IsPermanent(err) && !errors.Is(err, context.Canceled)
}

// Do calls call; on success it stores the value for key (when caching) and
// returns it. On an error that should fall back it returns the cached value
// if fresh enough, else fn's result, else an error wrapping both
// [ErrNoFallback] and the call's error. Other errors are returned as is.
func (f *Fallback[K, V]) Do(ctx context.Context, key K, call func(ctx context.Context) (V, error)) (V, error) {
	v, err := call(ctx)
	if err == nil {
		if f.entries != nil {
			f.Put(key, v)
		}
		return v, nil
	}
	if !f.should(err) {
		return v, err
	}
	if cv, age, ok := f.Get(key); ok {
		f.served.Add(1)
		if f.cfg.listener != nil {
			f.cfg.listener.OnFallback(Event{Name: f.cfg.name, Source: SourceCache, Age: age, Err: err})
		}
		return cv, nil
	}
	if f.fn != nil {
		fv, ferr := f.fn(ctx, key, err)
		if ferr == nil {
			f.served.Add(1)
			if f.cfg.listener != nil {
				f.cfg.listener.OnFallback(Event{Name: f.cfg.name, Source: SourceFunc, Err: err})
			}
		}
		return fv, ferr
	}
	var zero V
	return zero, fmt.Errorf("%w: %w", ErrNoFallback, err)
}

// Put stores v as the last good value for key, evicting the least recently
// used key when the cache is full. Without WithCache it does nothing.
func (f *Fallback[K, V]) Put(key K, v V) {
	if f.entries == nil {
		return
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.entries[key]; ok {
		e.val, e.at = v, now
		f.unlink(e)
		f.pushFront(e)
		return
	}
	if len(f.entries) >= f.cfg.cacheSize {
		old := f.head.prev
		f.unlink(old)
		delete(f.entries, old.key)
	}
	e := &entry[K, V]{key: key, val: v, at: now}
	f.entries[key] = e
	f.pushFront(e)
}

// Get returns the cached value for key and its age, if it is not older than
// the maximum staleness. A stale entry is removed.
func (f *Fallback[K, V]) Get(key K) (V, time.Duration, bool) {
	var zero V
	if f.entries == nil {
		return zero, 0, false
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.entries[key]
	if !ok {
		return zero, 0, false
	}
	age := now.Sub(e.at)
	if age > f.cfg.maxStale {
		f.unlink(e)
		delete(f.entries, key)
		return zero, 0, false
	}
	f.unlink(e)
	f.pushFront(e)
	return e.val, age, true
}

// Len returns the number of cached keys (stale ones included until looked up
// or evicted).
func (f *Fallback[K, V]) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.entries)
}

// Served returns how many fallbacks were served, for metrics.
func (f *Fallback[K, V]) Served() uint64 { return f.served.Load() }

func (f *Fallback[K, V]) unlink(e *entry[K, V]) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (f *Fallback[K, V]) pushFront(e *entry[K, V]) {
	e.prev, e.next = &f.head, f.head.next
	f.head.next.prev = e
	f.head.next = e
}
