package retry

import (
	"fmt"
	"sync/atomic"
	"time"
)

const milli = 1000

// Budget limits retries to a fraction of recent requests, per dependency
// (like gRPC's retry throttling and Finagle's RetryBudget). It is a token
// bucket: every request deposits Ratio tokens, every retry withdraws one,
// and the bucket holds at most MaxTokens, so over any stretch of N requests
// at most Ratio·N + MaxTokens retries happen (plus MinPerSecond·seconds when
// set). Share one Budget among all callers of a dependency. Create it with
// [NewBudget]; it is safe for concurrent use.
type Budget struct {
	tokens    atomic.Int64 // milli-tokens
	ratio     int64        // milli-tokens per request
	maxTokens int64        // milli-tokens
	perSec    float64      // tokens per second of refill
	base      time.Time
	last      atomic.Int64 // ns since base of the last refill
}

// BudgetOption configures a [Budget].
type BudgetOption func(*Budget) error

// WithMaxTokens sets the bucket's capacity, in retries (default 10). The
// bucket starts full, so this is also the burst allowed before any request.
func WithMaxTokens(n int) BudgetOption {
	return func(b *Budget) error {
		if n < 1 {
			return fmt.Errorf("retry: WithMaxTokens: n must be >= 1, got %d", n)
		}
		b.maxTokens = int64(n) * milli
		return nil
	}
}

// WithMinRetriesPerSecond adds a refill of r tokens per second, so a
// dependency with little traffic can still be retried. Default 0.
func WithMinRetriesPerSecond(r float64) BudgetOption {
	return func(b *Budget) error {
		if !(r >= 0 && r <= 1e6) {
			return fmt.Errorf("retry: WithMinRetriesPerSecond: rate must be in [0, 1e6], got %v", r)
		}
		b.perSec = r
		return nil
	}
}

// NewBudget returns a full budget allowing retries of up to ratio (in
// [0, 10]; 0.1 means 10%) of the requests.
func NewBudget(ratio float64, opts ...BudgetOption) (*Budget, error) {
	if !(ratio >= 0 && ratio <= 10) {
		return nil, fmt.Errorf("retry: NewBudget: ratio must be in [0, 10], got %v", ratio)
	}
	b := &Budget{ratio: int64(ratio*milli + 0.5), maxTokens: 10 * milli, base: time.Now()}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(b); err != nil {
			return nil, err
		}
	}
	b.tokens.Store(b.maxTokens)
	return b, nil
}

// Deposit records one request. It is one atomic load when the bucket is
// full, so it costs little on the happy path.
func (b *Budget) Deposit() {
	if b.ratio > 0 && b.tokens.Load() < b.maxTokens {
		if b.tokens.Add(b.ratio) > b.maxTokens {
			b.clamp()
		}
	}
}

func (b *Budget) clamp() {
	for {
		t := b.tokens.Load()
		if t <= b.maxTokens || b.tokens.CompareAndSwap(t, b.maxTokens) {
			return
		}
	}
}

// Withdraw takes one token for a retry and reports whether it got one.
func (b *Budget) Withdraw() bool {
	if b.perSec > 0 {
		b.refill()
	}
	for {
		t := b.tokens.Load()
		if t < milli {
			return false
		}
		if b.tokens.CompareAndSwap(t, t-milli) {
			return true
		}
	}
}

func (b *Budget) refill() {
	now := int64(time.Since(b.base))
	last := b.last.Load()
	add := int64(float64(now-last) / float64(time.Second) * b.perSec * milli)
	if add < 1 || !b.last.CompareAndSwap(last, now) {
		return
	}
	if b.tokens.Add(add) > b.maxTokens {
		b.clamp()
	}
}

// Tokens returns the retries currently available, for metrics.
func (b *Budget) Tokens() float64 {
	if b.perSec > 0 {
		b.refill()
	}
	return float64(b.tokens.Load()) / milli
}
