package breaker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var errBoom = errors.New("boom")

type recorder struct {
	mu      sync.Mutex
	changes []StateChange
}

func (r *recorder) OnStateChange(c StateChange) {
	r.mu.Lock()
	r.changes = append(r.changes, c)
	r.mu.Unlock()
}

func (r *recorder) path() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.changes {
		out = append(out, c.From.String()+">"+c.To.String())
	}
	return out
}

func newBreaker(tb testing.TB, opts ...Option) (*Breaker, *recorder) {
	tb.Helper()
	rec := &recorder{}
	b, err := New("dep", append(opts, WithStateListener(rec))...)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return b, rec
}

// run feeds outcomes: 's' success, 'f' failure, 'c' context.Canceled, 'x'
// a call attempt that must be rejected, 'a' an attempt that must be allowed
// and then succeed.
func run(tb testing.TB, b *Breaker, seq string) {
	tb.Helper()
	for i, ch := range seq {
		p, err := b.Allow()
		switch ch {
		case 'x':
			if !errors.Is(err, ErrOpen) {
				tb.Fatalf("step %d: Allow = %v, want ErrOpen", i, err)
			}
			continue
		default:
			if err != nil {
				tb.Fatalf("step %d (%c): Allow = %v, want permit (state %v)", i, ch, err, b.State())
			}
		}
		switch ch {
		case 's', 'a':
			p.Done(nil)
		case 'f':
			p.Done(errBoom)
		case 'c':
			p.Done(fmt.Errorf("call: %w", context.Canceled))
		}
	}
}

func TestBreaker_CountWindowTransitions(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		seq  string
		want State
		path []string
	}{
		{"all success stays closed", nil, "ssssssssssssssssssss", Closed, nil},
		{"below minimum calls stays closed", []Option{WithMinimumCalls(5)}, "ffff", Closed, nil},
		{"reaching minimum with 100% failures opens", []Option{WithMinimumCalls(5)}, "fffffx", Open, []string{"closed>open"}},
		{"exactly at threshold opens", []Option{WithCountWindow(4), WithMinimumCalls(4)}, "ssffx", Open, []string{"closed>open"}},
		{"just below threshold stays closed", []Option{WithCountWindow(4), WithMinimumCalls(4), WithFailureRate(75)}, "ssffs", Closed, nil},
		{"window slides: old failures drop out", []Option{WithCountWindow(4), WithMinimumCalls(4), WithFailureRate(75)}, "ffsssssf", Closed, nil},
		{"window slides: new failures push over", []Option{WithCountWindow(4), WithMinimumCalls(4), WithFailureRate(75)}, "sssfsffx", Open, []string{"closed>open"}},
		{"canceled is not recorded", []Option{WithCountWindow(4), WithMinimumCalls(4)}, "ccccccccsss", Closed, nil},
		{"canceled does not count towards minimum", []Option{WithMinimumCalls(3)}, "ffcccc", Closed, nil},
		{"open rejects", []Option{WithMinimumCalls(2)}, "ffxxxx", Open, []string{"closed>open"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, rec := newBreaker(t, tt.opts...)
			run(t, b, tt.seq)
			if got := b.State(); got != tt.want {
				t.Errorf("state = %v, want %v", got, tt.want)
			}
			if got := rec.path(); !slices.Equal(got, tt.path) {
				t.Errorf("transitions = %v, want %v", got, tt.path)
			}
		})
	}
}

func TestBreaker_HalfOpenSequences(t *testing.T) {
	tests := []struct {
		name   string
		probes int
		rate   float64
		seq    string // after the open duration passed
		want   State
		path   []string
	}{
		{"all probes succeed closes", 3, 50, "sss", Closed, []string{"closed>open", "open>half-open", "half-open>closed"}},
		{"probes beyond N are rejected", 3, 50, "", HalfOpen, []string{"closed>open", "open>half-open"}},
		{"failures reaching threshold reopen early", 4, 50, "ffx", Open, []string{"closed>open", "open>half-open", "half-open>open"}},
		{"below threshold closes", 4, 50, "sfss", Closed, []string{"closed>open", "open>half-open", "half-open>closed"}},
		{"canceled probe frees its slot", 2, 50, "css", Closed, []string{"closed>open", "open>half-open", "half-open>closed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, rec := newBreaker(t, WithMinimumCalls(2), WithHalfOpenProbes(tt.probes), WithFailureRate(tt.rate), WithOpenDuration(10*time.Second))
				run(t, b, "ffx")
				time.Sleep(10*time.Second - time.Nanosecond)
				run(t, b, "x")
				time.Sleep(time.Nanosecond)
				run(t, b, tt.seq)
				if got := b.State(); got != tt.want {
					t.Errorf("state = %v, want %v", got, tt.want)
				}
				if got := rec.path(); !slices.Equal(got, tt.path) {
					t.Errorf("transitions = %v, want %v", got, tt.path)
				}
			})
		})
	}
}

func TestBreaker_HalfOpenRejectsWhileProbesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := newBreaker(t, WithMinimumCalls(1), WithHalfOpenProbes(2), WithOpenDuration(time.Second))
		run(t, b, "f")
		time.Sleep(time.Second)
		p1, err1 := b.Allow()
		p2, err2 := b.Allow()
		if err1 != nil || err2 != nil {
			t.Fatalf("probes: %v, %v", err1, err2)
		}
		if _, err := b.Allow(); !errors.Is(err, ErrOpen) {
			t.Fatalf("third call in half-open = %v, want ErrOpen", err)
		}
		p1.Done(nil)
		p2.Done(nil)
		if b.State() != Closed {
			t.Fatalf("state = %v, want closed", b.State())
		}
	})
}

func TestBreaker_LostProbesDoNotWedgeHalfOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := newBreaker(t, WithMinimumCalls(1), WithHalfOpenProbes(1), WithOpenDuration(time.Second))
		run(t, b, "f")
		time.Sleep(time.Second)
		if _, err := b.Allow(); err != nil { // never reported
			t.Fatal(err)
		}
		run(t, b, "x")
		time.Sleep(time.Second)
		run(t, b, "s") // a fresh half-open lets a new probe through
		if b.State() != Closed {
			t.Fatalf("state = %v, want closed", b.State())
		}
	})
}

func TestBreaker_StaleOutcomesAreDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := newBreaker(t, WithMinimumCalls(1), WithHalfOpenProbes(1), WithOpenDuration(time.Second))
		old, _ := b.Allow() // admitted while closed
		run(t, b, "f")
		time.Sleep(time.Second)
		run(t, b, "s") // closes
		old.Done(errBoom)
		if s := b.Snapshot(); s.State != Closed || s.Failures != 0 {
			t.Fatalf("snapshot = %+v, want closed with no failures", s)
		}
	})
}

func TestBreaker_TimeWindowRolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, rec := newBreaker(t, WithTimeWindow(10*time.Second), WithMinimumCalls(4), WithFailureRate(50))
		run(t, b, "fff")
		if s := b.Snapshot(); s.Calls != 3 || s.Failures != 3 {
			t.Fatalf("snapshot = %+v, want 3 calls, 3 failures", s)
		}
		time.Sleep(11 * time.Second) // the three failures leave the window
		synctest.Wait()
		if s := b.Snapshot(); s.Calls != 0 {
			t.Fatalf("after the window: %+v, want 0 calls", s)
		}
		run(t, b, "sssf")
		if b.State() != Closed {
			t.Fatalf("state = %v, want closed (1 of 4 failed)", b.State())
		}
		time.Sleep(5 * time.Second)
		run(t, b, "ff") // 3 of 6 within 10s: 50%
		if got := rec.path(); !slices.Equal(got, []string{"closed>open"}) {
			t.Fatalf("transitions = %v", got)
		}
	})
}

func TestBreaker_SlowCallsOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := newBreaker(t, WithCountWindow(4), WithMinimumCalls(4), WithSlowCalls(100*time.Millisecond, 50))
		slow := func() {
			if err := b.Do(t.Context(), func(context.Context) error { time.Sleep(200 * time.Millisecond); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		fast := func() {
			if err := b.Do(t.Context(), func(context.Context) error { time.Sleep(time.Millisecond); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		fast()
		fast()
		slow()
		if s := b.Snapshot(); s.SlowCalls != 1 || s.Failures != 0 || s.State != Closed {
			t.Fatalf("snapshot = %+v", s)
		}
		slow()
		if b.State() != Open {
			t.Fatalf("state = %v, want open (2 of 4 slow)", b.State())
		}
	})
}

func TestBreaker_DoneAfterMeasuresGivenDuration(t *testing.T) {
	b, _ := newBreaker(t, WithCountWindow(2), WithMinimumCalls(2), WithSlowCalls(time.Second, 100))
	for range 2 {
		p, _ := b.Allow()
		p.DoneAfter(nil, 2*time.Second)
	}
	if b.State() != Open {
		t.Fatalf("state = %v, want open", b.State())
	}
}

func TestBreaker_IsFailureClassifier(t *testing.T) {
	notFound := errors.New("not found")
	b, _ := newBreaker(t, WithMinimumCalls(2), WithIsFailure(func(err error) bool { return !errors.Is(err, notFound) }))
	for range 10 {
		_ = b.Do(t.Context(), func(context.Context) error { return notFound })
	}
	if s := b.Snapshot(); s.State != Closed || s.Failures != 0 || s.Calls != 10 {
		t.Fatalf("snapshot = %+v, want 10 successes", s)
	}
}

func TestBreaker_DoIgnoresCallerCancellation(t *testing.T) {
	b, _ := newBreaker(t, WithMinimumCalls(1))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := b.Do(ctx, func(ctx context.Context) error { return fmt.Errorf("wrapped: %w", errBoom) })
	if !errors.Is(err, errBoom) {
		t.Fatalf("Do = %v", err)
	}
	if s := b.Snapshot(); s.Calls != 0 || s.State != Closed {
		t.Fatalf("snapshot = %+v, want nothing recorded", s)
	}
}

func TestBreaker_DoRecordsPanicAsFailure(t *testing.T) {
	b, _ := newBreaker(t, WithMinimumCalls(1))
	func() {
		defer func() { _ = recover() }()
		_ = b.Do(t.Context(), func(context.Context) error { panic("x") })
	}()
	if b.State() != Open {
		t.Fatalf("state = %v, want open", b.State())
	}
}

func TestBreaker_ManualStates(t *testing.T) {
	b, rec := newBreaker(t, WithMinimumCalls(1))
	b.ForceOpen()
	run(t, b, "xx")
	b.Disable()
	run(t, b, "ffff")
	if b.State() != Disabled {
		t.Fatalf("state = %v, want disabled", b.State())
	}
	b.Reset()
	run(t, b, "s")
	want := []string{"closed>forced-open", "forced-open>disabled", "disabled>closed"}
	if got := rec.path(); !slices.Equal(got, want) {
		t.Fatalf("transitions = %v, want %v", got, want)
	}
	if s := b.Snapshot(); s.Rejected != 2 {
		t.Fatalf("rejected = %d, want 2", s.Rejected)
	}
}

func TestBreaker_StateChangeCarriesWindow(t *testing.T) {
	b, rec := newBreaker(t, WithCountWindow(10), WithMinimumCalls(4))
	run(t, b, "ssff")
	if len(rec.changes) != 1 {
		t.Fatalf("changes = %d", len(rec.changes))
	}
	c := rec.changes[0]
	if c.Name != "dep" || c.Window.Calls != 4 || c.Window.Failures != 2 || c.Window.FailureRate != 50 || c.At.IsZero() {
		t.Fatalf("change = %+v", c)
	}
}

func TestNew_RejectsBadOptions(t *testing.T) {
	tests := []struct {
		opt  Option
		want string
	}{
		{WithCountWindow(0), "WithCountWindow"},
		{WithTimeWindow(time.Millisecond), "WithTimeWindow"},
		{WithFailureRate(0), "WithFailureRate"},
		{WithFailureRate(101), "WithFailureRate"},
		{WithSlowCalls(0, 50), "WithSlowCalls"},
		{WithMinimumCalls(0), "WithMinimumCalls"},
		{WithOpenDuration(0), "WithOpenDuration"},
		{WithHalfOpenProbes(0), "WithHalfOpenProbes"},
		{WithIsFailure(nil), "WithIsFailure"},
		{WithStateListener(nil), "WithStateListener"},
	}
	for _, tt := range tests {
		_, err := New("x", tt.opt)
		if err == nil || !strings.Contains(err.Error(), "breaker: "+tt.want) {
			t.Errorf("New(%s) = %v, want error naming it", tt.want, err)
		}
	}
	if _, err := New("x", WithCountWindow(5), WithMinimumCalls(6)); err == nil {
		t.Error("minimum calls above count window accepted")
	}
}

func TestBreaker_ConcurrentUseIsConsistent(t *testing.T) {
	b, _ := newBreaker(t, WithCountWindow(1000), WithMinimumCalls(1000))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				p, err := b.Allow()
				if err != nil {
					t.Error(err)
					return
				}
				if (g+i)%4 == 0 {
					p.Done(errBoom)
				} else {
					p.Done(nil)
				}
			}
		})
	}
	wg.Wait()
	s := b.Snapshot()
	if s.Calls != 1000 || s.State != Closed {
		t.Fatalf("snapshot = %+v, want 1000 calls, closed", s)
	}
	if s.Failures < 0 || s.Failures > 1000 {
		t.Fatalf("failures = %d out of range", s.Failures)
	}
}

func TestBreaker_HappyPathDoesNotAllocate(t *testing.T) {
	for _, opts := range [][]Option{nil, {WithTimeWindow(time.Minute)}, {WithSlowCalls(time.Second, 50)}} {
		b, _ := newBreaker(t, opts...)
		if n := testing.AllocsPerRun(1000, func() {
			p, err := b.Allow()
			if err != nil {
				t.Fatal(err)
			}
			p.Done(nil)
		}); n != 0 {
			t.Errorf("allocs per call = %v, want 0", n)
		}
	}
}

func BenchmarkBreaker(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"count", nil},
		{"time", []Option{WithTimeWindow(time.Minute)}},
		{"count+slow", []Option{WithSlowCalls(time.Second, 50)}},
	} {
		br, _ := New("bench", tc.opts...)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := br.Allow()
				if err != nil {
					b.Fatal(err)
				}
				p.Done(nil)
			}
		})
	}
}

func TestBreaker_SuccessCompletingMinimumOpens(t *testing.T) {
	b, _ := newBreaker(t, WithCountWindow(4), WithMinimumCalls(4))
	run(t, b, "ffssx")
	if b.State() != Open {
		t.Fatalf("state = %v, want open: the 4th call (a success) completed the minimum at 50%%", b.State())
	}
}

func TestBreaker_OpenRemaining(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := newBreaker(t, WithMinimumCalls(1), WithOpenDuration(10*time.Second))
		if got := b.OpenRemaining(); got != 0 {
			t.Fatalf("closed: OpenRemaining = %v", got)
		}
		run(t, b, "f")
		time.Sleep(4 * time.Second)
		if got := b.OpenRemaining(); got != 6*time.Second {
			t.Fatalf("OpenRemaining = %v, want 6s", got)
		}
		time.Sleep(7 * time.Second)
		if got := b.OpenRemaining(); got != 0 {
			t.Fatalf("after the open duration: %v", got)
		}
	})
}

func TestBreaker_TimeWindowConcurrentUse(t *testing.T) {
	b, _ := newBreaker(t, WithTimeWindow(time.Minute), WithSlowCalls(time.Hour, 100), WithMinimumCalls(100000))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 500 {
				p, err := b.Allow()
				if err != nil {
					t.Error(err)
					return
				}
				if i%5 == 0 {
					p.Done(errBoom)
				} else {
					p.Done(nil)
				}
			}
		})
	}
	wg.Wait()
	if s := b.Snapshot(); s.Calls != 4000 || s.Failures != 800 || s.SlowCalls != 0 {
		t.Fatalf("snapshot = %+v, want 4000 calls, 800 failures", s)
	}
}
