package breaker

import (
	"fmt"
	"time"
)

// Option configures a [Breaker]; options are validated by [New].
type Option func(*config) error

type config struct {
	countSize     int
	timeWindow    time.Duration
	buckets       int
	failureRate   float64
	slowRate      float64
	slowThreshold time.Duration
	minCalls      int
	minCallsSet   bool
	openDuration  time.Duration
	probes        int
	isFailure     func(error) bool
	listener      StateListener
}

func defaultConfig() config {
	return config{
		countSize:    100,
		buckets:      10,
		failureRate:  50,
		slowRate:     100,
		minCalls:     10,
		openDuration: 30 * time.Second,
		probes:       5,
	}
}

// WithCountWindow makes the sliding window count-based: the failure and
// slow-call rates are computed over the last size recorded calls. This is
// the default, with size 100. It reads no clock on the happy path unless
// slow-call detection is on.
func WithCountWindow(size int) Option {
	return func(c *config) error {
		if size < 1 || size > 1<<20 {
			return fmt.Errorf("breaker: WithCountWindow: size must be in [1, 1048576], got %d", size)
		}
		c.countSize, c.timeWindow = size, 0
		return nil
	}
}

// WithTimeWindow makes the sliding window time-based: the rates are computed
// over the calls recorded in the last d, kept in buckets of d/10 (so the
// window slides in steps of a tenth). The breaker then reads a coarse clock
// (an atomic load, refreshed every bucket/8 by a timer that runs only while the
// breaker is used) on every recorded call, never time.Now on the happy path.
func WithTimeWindow(d time.Duration) Option {
	return func(c *config) error {
		if d < 10*time.Millisecond {
			return fmt.Errorf("breaker: WithTimeWindow: duration must be at least 10ms, got %v", d)
		}
		c.timeWindow = d
		return nil
	}
}

// WithFailureRate sets the failure rate, in percent (0, 100], at or above which
// the breaker opens. Default 50.
func WithFailureRate(percent float64) Option {
	return func(c *config) error {
		if !(percent > 0 && percent <= 100) {
			return fmt.Errorf("breaker: WithFailureRate: percent must be in (0, 100], got %v", percent)
		}
		c.failureRate = percent
		return nil
	}
}

// WithSlowCalls turns slow-call detection on: a call that takes threshold or
// longer is slow, and the breaker opens when slow calls reach percent (0, 100]
// of the window. Off by default. Cost: each permit takes a coarse-clock
// reading at Allow and another at Done (two atomic loads each); the coarse
// clock's resolution is threshold/8 (at least 1ms), so a call is judged slow
// with that much tolerance.
func WithSlowCalls(threshold time.Duration, percent float64) Option {
	return func(c *config) error {
		if threshold <= 0 {
			return fmt.Errorf("breaker: WithSlowCalls: threshold must be > 0, got %v", threshold)
		}
		if !(percent > 0 && percent <= 100) {
			return fmt.Errorf("breaker: WithSlowCalls: percent must be in (0, 100], got %v", percent)
		}
		c.slowThreshold, c.slowRate = threshold, percent
		return nil
	}
}

// WithMinimumCalls sets how many calls the window must hold before the rates
// are evaluated. Default 10 (capped at a count window's size).
func WithMinimumCalls(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("breaker: WithMinimumCalls: n must be >= 1, got %d", n)
		}
		c.minCalls, c.minCallsSet = n, true
		return nil
	}
}

// WithOpenDuration sets how long the breaker stays open before it lets
// probes through (half-open). Default 30s.
func WithOpenDuration(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("breaker: WithOpenDuration: duration must be > 0, got %v", d)
		}
		c.openDuration = d
		return nil
	}
}

// WithHalfOpenProbes sets how many calls are let through in the half-open
// state. When all have finished, the breaker closes unless their failure or
// slow-call rate reaches the threshold; it reopens as soon as the failures
// among them make that certain. Default 5.
func WithHalfOpenProbes(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 1<<20 {
			return fmt.Errorf("breaker: WithHalfOpenProbes: n must be in [1, 1048576], got %d", n)
		}
		c.probes = n
		return nil
	}
}

// WithIsFailure sets the classifier of non-nil errors: it returns true when
// err counts as a failure, false when it counts as a success (for example a
// "not found" that proves the dependency is healthy). errors matching
// context.Canceled never reach it: they are not recorded at all. Default:
// every other non-nil error is a failure.
func WithIsFailure(f func(err error) bool) Option {
	return func(c *config) error {
		if f == nil {
			return fmt.Errorf("breaker: WithIsFailure: classifier must not be nil")
		}
		c.isFailure = f
		return nil
	}
}

// WithStateListener registers a hook called on every state change.
func WithStateListener(l StateListener) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("breaker: WithStateListener: listener must not be nil")
		}
		c.listener = l
		return nil
	}
}
