package breaker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff/internal/clock"
)

// ErrOpen is returned by [Breaker.Allow] and [Breaker.Do] when the breaker
// rejects a call: it is open, forced open, or half-open with all probes
// taken. It is not retryable (retry.IsRetryable reports false).
var ErrOpen error = rejectError("breaker: open")

type rejectError string

func (e rejectError) Error() string { return string(e) }

// Retryable reports false: retrying a rejected call at once only adds load.
func (rejectError) Retryable() bool { return false }

// State is the state of a [Breaker].
type State int32

const (
	// Closed lets calls through and records their outcomes.
	Closed State = iota
	// Open rejects calls until the open duration has passed.
	Open
	// HalfOpen lets a limited number of probes through to decide between
	// Closed and Open.
	HalfOpen
	// ForcedOpen rejects every call until [Breaker.Reset]; set by [Breaker.ForceOpen].
	ForcedOpen
	// Disabled lets every call through and records nothing; set by [Breaker.Disable].
	Disabled
)

// String returns "closed", "open", "half-open", "forced-open" or "disabled";
// suitable as a metric attribute value.
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	case ForcedOpen:
		return "forced-open"
	case Disabled:
		return "disabled"
	}
	return "unknown"
}

// StateChange describes one transition, passed to a [StateListener].
type StateChange struct {
	Name     string
	From, To State
	// At is the time of the transition (time.Now).
	At time.Time
	// Window holds the counts that led to the change (for Closed → Open and
	// HalfOpen → Open/Closed); zero otherwise.
	Window Snapshot
}

// StateListener is told about every state change. It is called
// synchronously, in the goroutine whose call caused the change, while the
// breaker holds its transition lock: keep it short and do not call Allow, Do,
// ForceOpen, Disable or Reset of the same breaker from it. Transitions out of
// Open happen lazily, on the first Allow or State after the open duration.
type StateListener interface {
	OnStateChange(StateChange)
}

// StateListenerFunc adapts a function to a [StateListener].
type StateListenerFunc func(StateChange)

// OnStateChange calls f(c).
func (f StateListenerFunc) OnStateChange(c StateChange) { f(c) }

// Snapshot is a point-in-time view of a breaker, for metrics.
type Snapshot struct {
	Name  string
	State State
	// Calls, Failures and SlowCalls are the counts in the current window
	// (or among the finished probes when half-open).
	Calls, Failures, SlowCalls int64
	// FailureRate and SlowCallRate are percentages of Calls (0 when Calls is 0).
	FailureRate, SlowCallRate float64
	// Rejected counts calls rejected since the breaker was created.
	Rejected uint64
}

const (
	codePresent uint32 = 1 << iota
	codeFail
	codeSlow
)

// epoch is one stay in one state. A new epoch starts on every transition, so
// outcomes of calls admitted in an earlier epoch are dropped.
type epoch struct {
	state     State
	since     int64 // clock reading at entry (exact)
	openUntil int64 // Open: clock reading when probes may start
	count     *countWindow
	timed     *timeWindow
	// HalfOpen
	permits atomic.Int64
	done    atomic.Int64
	fails   atomic.Int64
	slows   atomic.Int64
}

// Breaker is a circuit breaker. Create it with [New]; it is safe for
// concurrent use.
type Breaker struct {
	cur      atomic.Pointer[epoch]
	cfg      config
	name     string
	slowNs   int64
	clk      *clock.Coarse
	rejected atomic.Uint64
	mu       sync.Mutex // serialises transitions
}

// New returns a closed breaker named name (used in [StateChange] and
// [Snapshot]; may be empty).
func New(name string, opts ...Option) (*Breaker, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.timeWindow == 0 && cfg.minCalls > cfg.countSize {
		if cfg.minCallsSet {
			return nil, errors.New("breaker: WithMinimumCalls: n must not exceed the count window size")
		}
		cfg.minCalls = cfg.countSize
	}
	res := time.Second
	if cfg.timeWindow > 0 {
		res = min(res, cfg.timeWindow/time.Duration(cfg.buckets)/8)
	}
	if cfg.slowThreshold > 0 {
		res = min(res, cfg.slowThreshold/8)
	}
	b := &Breaker{cfg: cfg, name: name, slowNs: int64(cfg.slowThreshold), clk: clock.New(max(res, time.Millisecond))}
	b.cur.Store(b.newEpoch(Closed, 0))
	return b, nil
}

func (b *Breaker) newEpoch(s State, now int64) *epoch {
	e := &epoch{state: s, since: now}
	switch s {
	case Closed:
		if b.cfg.timeWindow > 0 {
			e.timed = newTimeWindow(b.cfg.timeWindow, b.cfg.buckets, now)
		} else {
			e.count = newCountWindow(b.cfg.countSize)
		}
	case Open:
		e.openUntil = now + int64(b.cfg.openDuration)
	}
	return e
}

// Name returns the breaker's name.
func (b *Breaker) Name() string { return b.name }

// Permit is the right to make one call, returned by [Breaker.Allow]. Report
// the call's outcome with exactly one [Permit.Done]. A Permit is a small
// value: pass it by value; it does not allocate.
type Permit struct {
	b     *Breaker
	e     *epoch
	start int64
}

// Allow asks whether a call may proceed. On success the caller makes the call
// and then reports it with [Permit.Done]; a permit that is never done blocks
// a half-open breaker's probe slot until the open duration passes again.
// When the breaker rejects the call, Allow returns [ErrOpen].
//
// In the closed state Allow is one atomic load (plus a coarse-clock read when
// slow-call detection is on); it never reads time.Now.
func (b *Breaker) Allow() (Permit, error) {
	e := b.cur.Load()
	if e.state == Closed && b.slowNs == 0 {
		return Permit{b: b, e: e}, nil
	}
	return b.allowSlow(e)
}

func (b *Breaker) allowSlow(e *epoch) (Permit, error) {
	for range 4 {
		switch e.state {
		case Closed:
			p := Permit{b: b, e: e}
			if b.slowNs > 0 {
				p.start = b.clk.Now()
			}
			return p, nil
		case Disabled:
			return Permit{}, nil
		case ForcedOpen:
			b.rejected.Add(1)
			return Permit{}, ErrOpen
		case Open:
			now := b.clk.Exact()
			if now < e.openUntil {
				b.rejected.Add(1)
				return Permit{}, ErrOpen
			}
			b.transition(e, HalfOpen, now, Snapshot{})
		case HalfOpen:
			for {
				n := e.permits.Load()
				if n >= int64(b.cfg.probes) {
					break
				}
				if e.permits.CompareAndSwap(n, n+1) {
					p := Permit{b: b, e: e}
					if b.slowNs > 0 {
						p.start = b.clk.Now()
					}
					return p, nil
				}
			}
			// All probes taken. If they have been out longer than the open
			// duration, some were never reported: start a fresh half-open.
			now := b.clk.Exact()
			if now-e.since < int64(b.cfg.openDuration) {
				b.rejected.Add(1)
				return Permit{}, ErrOpen
			}
			b.transition(e, HalfOpen, now, Snapshot{})
		}
		e = b.cur.Load()
	}
	b.rejected.Add(1)
	return Permit{}, ErrOpen
}

// Done reports the outcome of the permitted call: err nil is a success; an
// error matching context.Canceled is not recorded (the caller gave up, the
// dependency did not fail); any other error is classified by the
// WithIsFailure option (default: failure). With slow-call detection on, the
// call's duration is measured from Allow on the coarse clock. Done on the
// zero Permit does nothing. Outcomes of calls admitted before the last state
// change are dropped.
func (p Permit) Done(err error) {
	if err == nil && p.e != nil && p.e.count != nil && p.b.slowNs == 0 && p.e.count.steady() {
		return // inlined fast path: see countWindow.steady
	}
	p.done(err)
}

func (p Permit) done(err error) {
	if p.e == nil {
		return
	}
	b := p.b
	code := codePresent
	if err != nil {
		if errors.Is(err, context.Canceled) {
			b.release(p.e)
			return
		}
		if b.cfg.isFailure == nil || b.cfg.isFailure(err) {
			code |= codeFail
		}
	}
	if b.slowNs > 0 && b.clk.Now()-p.start >= b.slowNs {
		code |= codeSlow
	}
	b.record(p.e, code)
}

// DoneAfter is [Permit.Done] with the call's duration measured by the
// caller, for callers that already took the time (it overrides the
// coarse-clock measurement).
func (p Permit) DoneAfter(err error, elapsed time.Duration) {
	if p.e == nil {
		return
	}
	b := p.b
	code := codePresent
	if err != nil {
		if errors.Is(err, context.Canceled) {
			b.release(p.e)
			return
		}
		if b.cfg.isFailure == nil || b.cfg.isFailure(err) {
			code |= codeFail
		}
	}
	if b.slowNs > 0 && int64(elapsed) >= b.slowNs {
		code |= codeSlow
	}
	b.record(p.e, code)
}

// Release gives the permit back without recording an outcome, for a call
// that was never made (for example, rejected by a later policy). Release on
// the zero Permit does nothing.
func (p Permit) Release() {
	if p.e != nil {
		p.b.release(p.e)
	}
}

func (b *Breaker) release(e *epoch) {
	if e.state == HalfOpen {
		e.permits.Add(-1)
	}
}

func (b *Breaker) record(e *epoch, code uint32) {
	if b.cur.Load() != e {
		return
	}
	switch e.state {
	case Closed:
		var s Snapshot
		if e.count != nil {
			s = e.count.record(code)
		} else {
			s = e.timed.record(b.clk.Now(), code)
		}
		// Evaluate after failures and slow calls, and while a count window
		// fills (a success may complete the minimum number of calls).
		if s.Calls > 0 && b.shouldOpen(s) {
			b.transition(e, Open, b.clk.Exact(), b.fill(s))
		}
	case HalfOpen:
		if code&codeFail != 0 {
			e.fails.Add(1)
		}
		if code&codeSlow != 0 {
			e.slows.Add(1)
		}
		done := e.done.Add(1)
		n := int64(b.cfg.probes)
		fails, slows := e.fails.Load(), e.slows.Load()
		// Reopen as soon as the outcome is certain.
		if b.rateReached(fails, n, b.cfg.failureRate) || (b.slowNs > 0 && b.rateReached(slows, n, b.cfg.slowRate)) {
			b.transition(e, Open, b.clk.Exact(), b.fill(Snapshot{Calls: done, Failures: fails, SlowCalls: slows}))
			return
		}
		if done >= n {
			b.transition(e, Closed, b.clk.Exact(), b.fill(Snapshot{Calls: done, Failures: fails, SlowCalls: slows}))
		}
	}
}

func (b *Breaker) rateReached(k, n int64, percent float64) bool {
	return n > 0 && float64(k)*100 >= percent*float64(n)
}

func (b *Breaker) shouldOpen(s Snapshot) bool {
	if s.Calls < int64(b.cfg.minCalls) {
		return false
	}
	if b.rateReached(s.Failures, s.Calls, b.cfg.failureRate) {
		return true
	}
	return b.slowNs > 0 && b.rateReached(s.SlowCalls, s.Calls, b.cfg.slowRate)
}

func (b *Breaker) fill(s Snapshot) Snapshot {
	s.Name = b.name
	if s.Calls > 0 {
		s.FailureRate = float64(s.Failures) * 100 / float64(s.Calls)
		s.SlowCallRate = float64(s.SlowCalls) * 100 / float64(s.Calls)
	}
	s.Rejected = b.rejected.Load()
	return s
}

// transition moves from epoch from to a new epoch in state to, unless
// another goroutine already moved on.
func (b *Breaker) transition(from *epoch, to State, now int64, window Snapshot) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if from != nil && b.cur.Load() != from {
		return false
	}
	old := b.cur.Load()
	b.cur.Store(b.newEpoch(to, now))
	if b.cfg.listener != nil {
		window.State = old.state
		b.cfg.listener.OnStateChange(StateChange{Name: b.name, From: old.state, To: to, At: time.Now(), Window: window})
	}
	return true
}

// Do runs fn if the breaker allows it and records its outcome; it returns
// [ErrOpen] without calling fn when the breaker rejects the call. fn's error
// is returned as is. An error from fn while ctx is cancelled is not recorded.
// If fn panics the call is recorded as a failure and the panic continues.
func (b *Breaker) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	p, err := b.Allow()
	if err != nil {
		return err
	}
	finished := false
	defer func() {
		if !finished {
			p.Done(errPanic)
		}
	}()
	err = fn(ctx)
	finished = true
	if err != nil && ctx.Err() == context.Canceled {
		b.release(p.e)
		return err
	}
	p.Done(err)
	return err
}

var errPanic = errors.New("breaker: call panicked")

// State returns the current state. An open breaker whose open duration has
// passed reports (and moves to) HalfOpen.
func (b *Breaker) State() State {
	e := b.cur.Load()
	if e.state == Open {
		if now := b.clk.Exact(); now >= e.openUntil {
			b.transition(e, HalfOpen, now, Snapshot{})
			return b.cur.Load().state
		}
	}
	return e.state
}

// OpenRemaining returns how long an open breaker keeps rejecting calls
// before it lets probes through (for a Retry-After), or 0 when it is not
// open (or forced open, which has no end).
func (b *Breaker) OpenRemaining() time.Duration {
	e := b.cur.Load()
	if e.state != Open {
		return 0
	}
	return max(time.Duration(e.openUntil-b.clk.Exact()), 0)
}

// Snapshot returns the current state and window counts.
func (b *Breaker) Snapshot() Snapshot {
	st := b.State()
	e := b.cur.Load()
	var s Snapshot
	switch {
	case e.count != nil:
		s = e.count.snapshot()
	case e.timed != nil:
		s = e.timed.snapshot(b.clk.Exact())
	case e.state == HalfOpen:
		s = Snapshot{Calls: e.done.Load(), Failures: e.fails.Load(), SlowCalls: e.slows.Load()}
	}
	s = b.fill(s)
	s.State = st
	return s
}

// ForceOpen holds the breaker open, rejecting every call, until [Breaker.Reset].
func (b *Breaker) ForceOpen() { b.transition(nil, ForcedOpen, b.clk.Exact(), Snapshot{}) }

// Disable lets every call through without recording anything, until
// [Breaker.Reset].
func (b *Breaker) Disable() { b.transition(nil, Disabled, b.clk.Exact(), Snapshot{}) }

// Reset closes the breaker with an empty window.
func (b *Breaker) Reset() { b.transition(nil, Closed, b.clk.Exact(), Snapshot{}) }
