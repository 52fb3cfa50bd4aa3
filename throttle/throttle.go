package throttle

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff/internal/clock"
)

// ErrThrottled is returned by [Throttle.Allow] when the call is rejected
// locally. It is not retryable (retry.IsRetryable reports false).
var ErrThrottled error = rejectError("throttle: rejected locally")

type rejectError string

func (e rejectError) Error() string { return string(e) }

// Retryable reports false: retrying a throttled call at once defeats it.
func (rejectError) Retryable() bool { return false }

// Option configures a [Throttle]; options are validated by [New].
type Option func(*config) error

type config struct {
	k        float64
	window   time.Duration
	buckets  int
	listener Listener
}

// WithK sets the multiplier K (default 2): the backend may reject up to
// 1 - 1/K of requests before the client starts rejecting locally. Lower is
// more aggressive; K must be at least 1.
func WithK(k float64) Option {
	return func(c *config) error {
		if !(k >= 1 && k <= 1000) {
			return fmt.Errorf("throttle: WithK: k must be in [1, 1000], got %v", k)
		}
		c.k = k
		return nil
	}
}

// WithWindow sets the sliding window over which requests and accepts are
// counted (default 2 minutes), kept in 12 buckets.
func WithWindow(d time.Duration) Option {
	return func(c *config) error {
		if d < 12*time.Millisecond {
			return fmt.Errorf("throttle: WithWindow: duration must be at least 12ms, got %v", d)
		}
		c.window = d
		return nil
	}
}

// WithListener registers a hook told about every locally rejected request.
func WithListener(l Listener) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("throttle: WithListener: listener must not be nil")
		}
		c.listener = l
		return nil
	}
}

// Listener is told about each local rejection, synchronously from Allow.
type Listener interface {
	OnThrottle(Rejection)
}

// Rejection describes one local rejection.
type Rejection struct {
	Name        string
	Probability float64 // the rejection probability at that moment
}

// Snapshot is a point-in-time view, for metrics.
type Snapshot struct {
	Name        string
	Requests    int64 // in the window
	Accepts     int64 // in the window
	Probability float64
}

type bucket struct {
	id       atomic.Int64
	requests atomic.Int64
	accepts  atomic.Int64
}

// Throttle is adaptive client-side throttling (Google SRE book, "Handling
// Overload"): it counts requests and the backend's accepts over a sliding
// window and rejects a new request locally with probability
// max(0, (requests − K·accepts) / (requests + 1)). Create it with [New]; it
// is safe for concurrent use.
type Throttle struct {
	name    string
	cfg     config
	clk     *clock.Coarse
	width   int64
	buckets []bucket
	mu      sync.Mutex
}

// New returns a throttle with an empty window.
func New(name string, opts ...Option) (*Throttle, error) {
	cfg := config{k: 2, window: 2 * time.Minute, buckets: 12}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	width := int64(cfg.window) / int64(cfg.buckets)
	t := &Throttle{name: name, cfg: cfg, width: width, buckets: make([]bucket, cfg.buckets),
		clk: clock.New(max(time.Duration(width)/8, time.Millisecond))}
	for i := range t.buckets {
		t.buckets[i].id.Store(-1 << 62)
	}
	return t, nil
}

func (t *Throttle) cur(now int64) *bucket {
	id := now / t.width
	b := &t.buckets[id%int64(len(t.buckets))]
	if b.id.Load() != id {
		t.mu.Lock()
		if b.id.Load() < id {
			b.requests.Store(0)
			b.accepts.Store(0)
			b.id.Store(id)
		}
		t.mu.Unlock()
	}
	return b
}

func (t *Throttle) totals(now int64) (req, acc int64) {
	cur := now / t.width
	n := int64(len(t.buckets))
	for i := range t.buckets {
		b := &t.buckets[i]
		if id := b.id.Load(); id > cur-n && id <= cur {
			req += b.requests.Load()
			acc += b.accepts.Load()
		}
	}
	return req, acc
}

func (t *Throttle) probability(req, acc int64) float64 {
	p := (float64(req) - t.cfg.k*float64(acc)) / float64(req+1)
	return max(p, 0)
}

// Allow counts a request and decides whether to send it. It returns nil when
// the request may go (then report the backend's answer with [Throttle.Record])
// or [ErrThrottled]. It reads the coarse clock and sums the window's buckets.
func (t *Throttle) Allow() error {
	now := t.clk.Now()
	req, acc := t.totals(now) // the past requests, this one excluded
	t.cur(now).requests.Add(1)
	p := t.probability(req, acc)
	if p > 0 && rand.Float64() < p {
		if t.cfg.listener != nil {
			t.cfg.listener.OnThrottle(Rejection{Name: t.name, Probability: p})
		}
		return ErrThrottled
	}
	return nil
}

// Record reports whether the backend accepted a request that Allow let
// through. Count as "not accepted" only rejections that show overload
// (HTTP 429/503, gRPC RESOURCE_EXHAUSTED/UNAVAILABLE, connection errors),
// not application errors.
func (t *Throttle) Record(accepted bool) {
	if accepted {
		t.cur(t.clk.Now()).accepts.Add(1)
	}
}

// Snapshot returns the window's counts and the current probability.
func (t *Throttle) Snapshot() Snapshot {
	req, acc := t.totals(t.clk.Exact())
	return Snapshot{Name: t.name, Requests: req, Accepts: acc, Probability: t.probability(req, acc)}
}
