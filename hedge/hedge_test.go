package hedge

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

type hedges struct {
	mu  sync.Mutex
	all []Event
}

func (h *hedges) OnHedge(e Event) { h.mu.Lock(); h.all = append(h.all, e); h.mu.Unlock() }

func TestDo_NilHedgerIsAPlainCall(t *testing.T) {
	calls := 0
	v, err := Do(t.Context(), nil, func(context.Context) (int, error) { calls++; return 7, nil })
	if v != 7 || err != nil || calls != 1 {
		t.Fatalf("Do = %v, %v after %d calls", v, err, calls)
	}
}

func TestDo_FastCallIsNotHedged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := New("dep", 100*time.Millisecond)
		var calls atomic.Int32
		v, err := Do(t.Context(), h, func(context.Context) (string, error) {
			calls.Add(1)
			time.Sleep(99 * time.Millisecond)
			return "a", nil
		})
		if v != "a" || err != nil || calls.Load() != 1 {
			t.Fatalf("Do = %q, %v after %d calls", v, err, calls.Load())
		}
	})
}

func TestDo_SlowCallIsHedgedAndLoserCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &hedges{}
		h, _ := New("dep", 100*time.Millisecond, WithListener(rec))
		var n atomic.Int32
		loserCancelled := make(chan bool, 1)
		start := time.Now()
		v, err := Do(t.Context(), h, func(ctx context.Context) (int, error) {
			switch n.Add(1) {
			case 1: // the slow primary
				select {
				case <-time.After(time.Second):
					loserCancelled <- false
					return 1, nil
				case <-ctx.Done():
					loserCancelled <- true
					return 0, ctx.Err()
				}
			default:
				time.Sleep(10 * time.Millisecond)
				return 2, nil
			}
		})
		if v != 2 || err != nil {
			t.Fatalf("Do = %v, %v, want the hedge's answer", v, err)
		}
		if got := time.Since(start); got != 110*time.Millisecond {
			t.Fatalf("took %v, want 110ms (delay + hedge)", got)
		}
		if !<-loserCancelled {
			t.Fatal("the losing attempt was not cancelled")
		}
		if len(rec.all) != 1 || rec.all[0].Attempt != 2 || rec.all[0].Delay != 100*time.Millisecond {
			t.Fatalf("events = %+v", rec.all)
		}
	})
}

func TestDo_AtMostMaxHedges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := New("dep", 10*time.Millisecond, WithMaxHedges(2))
		var n atomic.Int32
		_, err := Do(t.Context(), h, func(ctx context.Context) (int, error) {
			n.Add(1)
			time.Sleep(time.Second)
			return 0, errors.New("slow and failing")
		})
		if err == nil || n.Load() != 3 {
			t.Fatalf("Do = %v after %d calls, want an error after 3", err, n.Load())
		}
	})
}

func TestDo_ReturnsOnCallerCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := New("dep", time.Second)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := Do(ctx, h, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Do = %v", err)
		}
	})
}

func TestHedger_PercentileDelayAdapts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := New("dep", time.Second, WithPercentile(90, 5*time.Millisecond))
		for i := range 100 {
			d := time.Duration(i%10+1) * 10 * time.Millisecond // 10..100ms
			_, _ = Do(t.Context(), h, func(ctx context.Context) (int, error) {
				select {
				case <-time.After(d):
					return 0, nil
				case <-ctx.Done():
					return 0, ctx.Err()
				}
			})
		}
		if got := h.Delay(); got != 90*time.Millisecond {
			t.Fatalf("delay = %v, want the p90 of 10..100ms = 90ms", got)
		}
	})
}

func TestNew_RejectsBadOptions(t *testing.T) {
	if _, err := New("x", 0); err == nil {
		t.Error("zero delay accepted")
	}
	for _, o := range []Option{WithMaxHedges(0), WithPercentile(100, 0), WithPercentile(50, -1), WithListener(nil)} {
		if _, err := New("x", time.Millisecond, o); err == nil {
			t.Error("bad option accepted")
		}
	}
}
