// Package backoff computes exponential backoff delays with full jitter, shared
// by the consumer runtime's redelivery delays and package retry.
package backoff

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Exponential is exponential backoff with full jitter: the delay before
// attempt n+1 (after n failures, n ≥ 1) is uniform in [0, min(Max, Initial·Multiplier^(n-1))].
// The zero value uses Initial 100ms, Max 30s, Multiplier 2.
type Exponential struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	// NoJitter returns the upper bound itself instead of a uniform draw.
	NoJitter bool
}

// Ceiling returns the upper bound of the delay after n failures.
func (e Exponential) Ceiling(n int) time.Duration {
	initial, max, mult := e.Initial, e.Max, e.Multiplier
	if initial <= 0 {
		initial = 100 * time.Millisecond
	}
	if max <= 0 {
		max = 30 * time.Second
	}
	if mult < 1 {
		mult = 2
	}
	if n < 1 {
		n = 1
	}
	d := float64(initial)
	for i := 1; i < n; i++ {
		d *= mult
		if d >= float64(max) {
			return max
		}
	}
	if d > float64(max) {
		return max
	}
	return time.Duration(d)
}

// Delay returns the delay after n failures: uniform in [0, Ceiling(n)], or
// Ceiling(n) itself when NoJitter is set.
func (e Exponential) Delay(n int) time.Duration {
	c := e.Ceiling(n)
	if e.NoJitter || c <= 0 {
		return c
	}
	return time.Duration(rand.Int64N(int64(c) + 1))
}

// Validate reports a field out of range, naming it: Initial and Max must be
// ≥ 0, Max (when set) ≥ Initial, Multiplier 0 (the default) or ≥ 1.
// Ceiling treats such values as their defaults; constructors that take a
// backoff check it first, so a mistake is an error and not a silent default.
func (e Exponential) Validate() error {
	switch {
	case e.Initial < 0:
		return fmt.Errorf("Initial must be ≥ 0, got %v", e.Initial)
	case e.Max < 0:
		return fmt.Errorf("Max must be ≥ 0, got %v", e.Max)
	case e.Max > 0 && e.Max < e.Initial:
		return fmt.Errorf("Max %v must be ≥ Initial %v", e.Max, e.Initial)
	case e.Multiplier != 0 && !(e.Multiplier >= 1):
		return fmt.Errorf("Multiplier must be ≥ 1 (or 0 for 2), got %v", e.Multiplier)
	}
	return nil
}
