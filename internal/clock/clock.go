// Package clock is a coarse monotonic clock for hot paths that cannot afford
// a time.Now call (about 45 ns on some virtual machines) on every operation.
//
// A [Coarse] keeps "nanoseconds since it was created" in an atomic integer
// refreshed by a self-rearming timer every Resolution. The timer runs only
// while the clock is read: after IdleTicks ticks without a read it stops, and
// the next read refreshes the value from time.Now and re-arms it. So a Coarse
// costs nothing while idle, leaves no goroutine behind, and works inside
// testing/synctest bubbles when it is created inside the bubble.
//
// A coarse reading lags the true time by at most about one Resolution (more
// when the timer is delayed by a busy scheduler); it never runs ahead.
package clock

import (
	"sync"
	"sync/atomic"
	"time"
)

// IdleTicks is how many ticks without a read stop the refresh timer.
const IdleTicks = 64

const (
	stateIdle    = 0 // no timer armed
	stateRunning = 1 // timer armed, not read since the last tick
	stateUsed    = 2 // timer armed, read since the last tick
)

// Coarse is a coarse monotonic clock. Create it with [New]; it is safe for
// concurrent use.
type Coarse struct {
	res   time.Duration
	base  time.Time
	now   atomic.Int64
	state atomic.Int32

	mu    sync.Mutex // guards timer and idle
	timer *time.Timer
	idle  int
}

// New returns a coarse clock with the given resolution (at least 100µs).
// Its zero reading is the moment of the call.
func New(resolution time.Duration) *Coarse {
	if resolution < 100*time.Microsecond {
		resolution = 100 * time.Microsecond
	}
	return &Coarse{res: resolution, base: time.Now()}
}

// Resolution returns the refresh interval.
func (c *Coarse) Resolution() time.Duration { return c.res }

// Now returns the coarse time in nanoseconds since the clock was created.
// It is a pair of atomic loads when the clock is running.
func (c *Coarse) Now() int64 {
	if c.state.Load() != stateUsed {
		c.touch()
	}
	return c.now.Load()
}

// Exact reads time.Now, publishes it as the coarse time (never moving it
// backwards) and returns it in nanoseconds since the clock was created.
func (c *Coarse) Exact() int64 {
	n := int64(time.Since(c.base))
	c.advance(n)
	return n
}

// Since returns the duration from t (a reading of this clock) to now, read
// exactly.
func (c *Coarse) Since(t int64) time.Duration { return time.Duration(c.Exact() - t) }

func (c *Coarse) advance(n int64) {
	for {
		old := c.now.Load()
		if n <= old || c.now.CompareAndSwap(old, n) {
			return
		}
	}
}

func (c *Coarse) touch() {
	for {
		switch s := c.state.Load(); s {
		case stateUsed:
			return
		case stateRunning:
			if c.state.CompareAndSwap(stateRunning, stateUsed) {
				return
			}
		case stateIdle:
			c.mu.Lock()
			if c.state.Load() != stateIdle {
				c.mu.Unlock()
				continue
			}
			c.advance(int64(time.Since(c.base)))
			c.idle = 0
			c.state.Store(stateUsed)
			if c.timer == nil {
				c.timer = time.AfterFunc(c.res, c.tick)
			} else {
				c.timer.Reset(c.res)
			}
			c.mu.Unlock()
			return
		}
	}
}

func (c *Coarse) tick() {
	c.advance(int64(time.Since(c.base)))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.CompareAndSwap(stateUsed, stateRunning) {
		c.idle = 0
		c.timer.Reset(c.res)
		return
	}
	c.idle++
	if c.idle < IdleTicks {
		c.timer.Reset(c.res)
		return
	}
	c.idle = 0
	if c.state.CompareAndSwap(stateRunning, stateIdle) {
		return
	}
	c.timer.Reset(c.res) // read again meanwhile
}
