package hedge

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Option configures a [Hedger]; options are validated by [New].
type Option func(*config) error

type config struct {
	maxHedges  int
	percentile float64
	minDelay   time.Duration
	listener   Listener
}

// WithMaxHedges sets how many extra attempts may be started (default 1).
func WithMaxHedges(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 10 {
			return fmt.Errorf("hedge: WithMaxHedges: n must be in [1, 10], got %d", n)
		}
		c.maxHedges = n
		return nil
	}
}

// WithPercentile makes the delay adaptive: once 32 calls have succeeded, the
// delay is the p-th percentile (0 < p < 100, e.g. 95) of the latest 256
// successful calls' latencies, but never below minDelay. Until then the
// fixed delay given to [New] applies.
func WithPercentile(p float64, minDelay time.Duration) Option {
	return func(c *config) error {
		if !(p > 0 && p < 100) {
			return fmt.Errorf("hedge: WithPercentile: p must be in (0, 100), got %v", p)
		}
		if minDelay < 0 {
			return fmt.Errorf("hedge: WithPercentile: minDelay must be >= 0, got %v", minDelay)
		}
		c.percentile, c.minDelay = p, minDelay
		return nil
	}
}

// WithListener registers a hook told about every hedge started.
func WithListener(l Listener) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("hedge: WithListener: listener must not be nil")
		}
		c.listener = l
		return nil
	}
}

// Listener is told when a hedged attempt starts, synchronously from Do.
type Listener interface {
	OnHedge(Event)
}

// Event describes one hedged attempt.
type Event struct {
	Name    string
	Attempt int           // 2 for the first hedge
	Delay   time.Duration // the delay that elapsed before it
}

const (
	ringSize     = 256
	minSamples   = 32
	recomputeGap = 32
)

// Hedger sends hedged requests: when a call has not answered after a delay,
// it starts another and takes the first success, cancelling the rest. Use it
// only for idempotent reads. A nil *Hedger disables hedging. Create it with
// [New]; it is safe for concurrent use.
type Hedger struct {
	name  string
	delay time.Duration
	cfg   config
	cur   atomic.Int64 // current delay in ns

	mu      sync.Mutex
	samples [ringSize]time.Duration
	n       int
}

// New returns a hedger that starts a hedge after delay (> 0).
func New(name string, delay time.Duration, opts ...Option) (*Hedger, error) {
	if delay <= 0 {
		return nil, fmt.Errorf("hedge: New: delay must be > 0, got %v", delay)
	}
	cfg := config{maxHedges: 1}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	h := &Hedger{name: name, delay: delay, cfg: cfg}
	h.cur.Store(int64(delay))
	return h, nil
}

// Delay returns the current hedging delay.
func (h *Hedger) Delay() time.Duration { return time.Duration(h.cur.Load()) }

func (h *Hedger) observe(d time.Duration) {
	if h.cfg.percentile == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples[h.n%ringSize] = d
	h.n++
	if h.n < minSamples || h.n%recomputeGap != 0 {
		return
	}
	s := slices.Clone(h.samples[:min(h.n, ringSize)])
	slices.Sort(s)
	i := int(float64(len(s)-1) * h.cfg.percentile / 100)
	h.cur.Store(int64(max(s[i], h.cfg.minDelay)))
}

type result[T any] struct {
	v   T
	err error
}

// Do calls fn, and after the hedger's delay with no answer calls it again
// (up to the maximum hedges), returning the first success; the other
// attempts' contexts are cancelled and their results discarded. If every
// attempt fails it returns the last error. Errors do not trigger hedges
// (that is retry's job). With h nil, Do is fn(ctx). fn runs in its own
// goroutine, so it must be safe to run concurrently with itself.
func Do[T any](ctx context.Context, h *Hedger, fn func(ctx context.Context) (T, error)) (T, error) {
	if h == nil {
		return fn(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan result[T], 1+h.cfg.maxHedges) // buffered: losers never block
	launch := func() {
		go func() {
			v, err := fn(ctx)
			ch <- result[T]{v, err}
		}()
	}
	start := time.Now()
	delay := h.Delay()
	launch()
	launched, running := 1, 1
	timer := time.NewTimer(delay)
	defer timer.Stop()
	var zero T
	var last error
	for {
		select {
		case r := <-ch:
			running--
			if r.err == nil {
				h.observe(time.Since(start))
				return r.v, nil
			}
			last = r.err
			if running == 0 {
				return zero, last
			}
		case <-timer.C:
			if launched <= h.cfg.maxHedges {
				launched++
				running++
				if h.cfg.listener != nil {
					h.cfg.listener.OnHedge(Event{Name: h.name, Attempt: launched, Delay: time.Since(start)})
				}
				launch()
				timer.Reset(delay)
			}
		case <-ctx.Done():
			return zero, ctx.Err()
		}
	}
}
