package retry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/handoffhq/handoff"
)

var errTransient = errors.New("transient")

type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) OnRetryEvent(ev Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) kinds() []EventKind {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []EventKind
	for _, ev := range e.all {
		out = append(out, ev.Kind)
	}
	return out
}

func TestIsRetryable(t *testing.T) {
	type notRetryable struct{ error }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errTransient, true},
		{"wrapped plain", fmt.Errorf("op: %w", errTransient), true},
		{"permanent", handoff.Permanent(errTransient), false},
		{"wrapped permanent", fmt.Errorf("op: %w", handoff.Permanent(errTransient)), false},
		{"canceled", context.Canceled, false},
		{"deadline (per-try timeout)", context.DeadlineExceeded, true},
		{"rejection marker", fmt.Errorf("x: %w", rejectLike{}), false},
		{"insufficient time", ErrInsufficientTime, false},
		{"retry-after", After(errTransient, time.Second), true},
	}
	for _, tt := range tests {
		if got := IsRetryable(tt.err); got != tt.want {
			t.Errorf("%s: IsRetryable = %v, want %v", tt.name, got, tt.want)
		}
	}
}

type rejectLike struct{}

func (rejectLike) Error() string   { return "rejected" }
func (rejectLike) Retryable() bool { return false }

func TestPolicy_Outcomes(t *testing.T) {
	tests := []struct {
		name         string
		policy       Policy
		fails        int // attempts that fail before success
		failWith     error
		wantCalls    int
		wantErr      error
		wantReason   Reason
		wantNilError bool
	}{
		{"success first", Policy{}, 0, errTransient, 1, nil, 0, true},
		{"success after two failures", Policy{}, 2, errTransient, 3, nil, 0, true},
		{"default gives up after 3", Policy{}, 100, errTransient, 3, errTransient, ReasonMaxAttempts, false},
		{"MaxAttempts 5", Policy{MaxAttempts: 5}, 100, errTransient, 5, errTransient, ReasonMaxAttempts, false},
		{"MaxAttempts 1 never retries", Policy{MaxAttempts: 1}, 100, errTransient, 1, errTransient, ReasonMaxAttempts, false},
		{"permanent not retried", Policy{MaxAttempts: 5}, 100, handoff.Permanent(errTransient), 1, errTransient, 0, false},
		{"custom classifier", Policy{MaxAttempts: 5, Retryable: func(error) bool { return false }}, 100, errTransient, 1, errTransient, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				err := tt.policy.Do(t.Context(), func(ctx context.Context, attempt int) error {
					calls++
					if attempt != calls {
						t.Errorf("attempt = %d, want %d", attempt, calls)
					}
					if calls <= tt.fails {
						return tt.failWith
					}
					return nil
				})
				if calls != tt.wantCalls {
					t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
				}
				if tt.wantNilError {
					if err != nil {
						t.Fatalf("Do = %v, want nil", err)
					}
					return
				}
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Do = %v, want wrapping %v", err, tt.wantErr)
				}
				var ex *ExhaustedError
				if got := errors.As(err, &ex); got != (tt.wantReason != 0) {
					t.Fatalf("ExhaustedError = %v, want %v", got, tt.wantReason != 0)
				}
				if ex != nil && (ex.Reason != tt.wantReason || ex.Attempts != tt.wantCalls) {
					t.Fatalf("ExhaustedError = %+v, want reason %v after %d", ex, tt.wantReason, tt.wantCalls)
				}
			})
		})
	}
}

func TestPolicy_BackoffDelaysWithinJitterBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := Policy{MaxAttempts: 6, Backoff: Backoff{Initial: 100 * time.Millisecond, Max: 1 * time.Second, Multiplier: 2}}
		ceilings := []time.Duration{100, 200, 400, 800, 1000}
		for run := range 50 {
			var starts []time.Time
			_ = p.Do(t.Context(), func(context.Context, int) error {
				starts = append(starts, time.Now())
				return errTransient
			})
			if len(starts) != 6 {
				t.Fatalf("attempts = %d", len(starts))
			}
			for i := 1; i < len(starts); i++ {
				d := starts[i].Sub(starts[i-1])
				if d < 0 || d > ceilings[i-1]*time.Millisecond {
					t.Fatalf("run %d: delay before attempt %d = %v, want in [0, %v]", run, i+1, d, ceilings[i-1]*time.Millisecond)
				}
			}
		}
	})
}

func TestPolicy_NoJitterSequence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ev := &events{}
		p := Policy{MaxAttempts: 5, Backoff: Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, NoJitter: true}, Listener: ev}
		start := time.Now()
		_ = p.Do(t.Context(), func(context.Context, int) error { return errTransient })
		if got, want := time.Since(start), (10+20+40+50)*time.Millisecond; got != want {
			t.Fatalf("total wait = %v, want %v", got, want)
		}
		var delays []time.Duration
		for _, e := range ev.all {
			if e.Kind == EventRetry {
				delays = append(delays, e.Delay)
			}
		}
		want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 50 * time.Millisecond}
		if fmt.Sprint(delays) != fmt.Sprint(want) {
			t.Fatalf("delays = %v, want %v", delays, want)
		}
		if k := ev.kinds(); k[len(k)-1] != EventGiveUp {
			t.Fatalf("last event = %v, want give_up", k[len(k)-1])
		}
	})
}

func TestPolicy_HonoursRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := Policy{MaxAttempts: 2, Backoff: Backoff{Initial: time.Millisecond}}
		var starts []time.Time
		err := p.Do(t.Context(), func(_ context.Context, attempt int) error {
			starts = append(starts, time.Now())
			if attempt == 1 {
				return After(errTransient, 3*time.Second)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if d := starts[1].Sub(starts[0]); d != 3*time.Second {
			t.Fatalf("waited %v, want the server's 3s", d)
		}
	})
}

func TestPolicy_RetryAfterAboveCapGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := Policy{MaxAttempts: 5, MaxRetryAfter: time.Second}
		calls := 0
		start := time.Now()
		err := p.Do(t.Context(), func(context.Context, int) error { calls++; return After(errTransient, time.Minute) })
		var ex *ExhaustedError
		if !errors.As(err, &ex) || ex.Reason != ReasonRetryAfter || calls != 1 || time.Since(start) != 0 {
			t.Fatalf("Do = %v after %d calls and %v", err, calls, time.Since(start))
		}
	})
}

func TestPolicy_DeadlineAwareness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := Policy{MaxAttempts: 10, MinAttemptTime: 100 * time.Millisecond, Backoff: Backoff{Initial: 200 * time.Millisecond, NoJitter: true}}

		// Too little time for even the first attempt: fn is never called.
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		called := false
		err := p.Do(ctx, func(context.Context, int) error { called = true; return nil })
		if called || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrInsufficientTime) {
			t.Fatalf("Do = %v, called = %v; want no call and a deadline error", err, called)
		}

		// Room for one attempt and one backoff (200ms) but then not for
		// MinAttemptTime: it stops at once instead of sleeping.
		ctx2, cancel2 := context.WithTimeout(t.Context(), 250*time.Millisecond)
		defer cancel2()
		calls := 0
		start := time.Now()
		err = p.Do(ctx2, func(context.Context, int) error { calls++; return errTransient })
		var ex *ExhaustedError
		if !errors.As(err, &ex) || ex.Reason != ReasonDeadline || calls != 1 {
			t.Fatalf("Do = %v after %d calls, want deadline give-up after 1", err, calls)
		}
		if !errors.Is(err, errTransient) {
			t.Fatalf("Do = %v, want the last error wrapped", err)
		}
		if time.Since(start) != 0 {
			t.Fatalf("slept %v before giving up", time.Since(start))
		}
	})
}

func TestPolicy_PerTryTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := Policy{MaxAttempts: 3, PerTryTimeout: time.Second, Backoff: Backoff{Initial: time.Millisecond}}
		calls := 0
		err := p.Do(t.Context(), func(ctx context.Context, attempt int) error {
			calls++
			if attempt < 3 {
				<-ctx.Done() // hangs until the per-try timeout
				return ctx.Err()
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Fatalf("Do = %v after %d calls, want success on the third", err, calls)
		}
	})
}

func TestPolicy_StopsWhenCallerCancels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		p := Policy{MaxAttempts: 10, Backoff: Backoff{Initial: time.Second, NoJitter: true}}
		go func() { time.Sleep(1500 * time.Millisecond); cancel() }()
		calls := 0
		err := p.Do(ctx, func(context.Context, int) error { calls++; return errTransient })
		if !errors.Is(err, context.Canceled) || !errors.Is(err, errTransient) || calls != 2 {
			t.Fatalf("Do = %v after %d calls", err, calls)
		}
	})
}

func TestPolicy_HappyPathDoesNotAllocate(t *testing.T) {
	b, _ := NewBudget(0.1)
	p := Policy{MaxAttempts: 3, Budget: b, MinAttemptTime: time.Millisecond}
	ctx := context.Background()
	fn := func(context.Context, int) error { return nil }
	if n := testing.AllocsPerRun(1000, func() {
		if err := p.Do(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("allocs = %v, want 0", n)
	}
}
