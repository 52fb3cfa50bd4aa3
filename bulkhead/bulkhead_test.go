package bulkhead

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func newBulkhead(tb testing.TB, max int, opts ...Option) *Bulkhead {
	tb.Helper()
	b, err := New("dep", max, opts...)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return b
}

func TestBulkhead_RejectsBeyondLimitWithoutQueue(t *testing.T) {
	b := newBulkhead(t, 2)
	ctx := t.Context()
	if err := b.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Acquire(ctx); !errors.Is(err, ErrFull) {
		t.Fatalf("third Acquire = %v, want ErrFull", err)
	}
	b.Release()
	if err := b.Acquire(ctx); err != nil {
		t.Fatalf("Acquire after Release = %v", err)
	}
	if s := b.Snapshot(); s.InFlight != 2 || s.Rejected != 1 || s.Queued != 0 {
		t.Fatalf("snapshot = %+v", s)
	}
}

func TestBulkhead_QueueTransitions(t *testing.T) {
	tests := []struct {
		name     string
		maxQueue int
		waiters  int
		wantFull int // callers rejected at once
	}{
		{"no queue", 0, 3, 3},
		{"queue fits all", 3, 3, 0},
		{"queue overflows", 2, 5, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBulkhead(t, 1, WithMaxQueue(tt.maxQueue))
				ctx := t.Context()
				if err := b.Acquire(ctx); err != nil {
					t.Fatal(err)
				}
				var full, got atomic.Int32
				var wg sync.WaitGroup
				for range tt.waiters {
					wg.Go(func() {
						switch err := b.Acquire(ctx); {
						case errors.Is(err, ErrFull):
							full.Add(1)
						case err == nil:
							got.Add(1)
							b.Release()
						default:
							t.Error(err)
						}
					})
				}
				synctest.Wait()
				if int(full.Load()) != tt.wantFull {
					t.Fatalf("rejected at once = %d, want %d", full.Load(), tt.wantFull)
				}
				if s := b.Snapshot(); s.Queued != tt.waiters-tt.wantFull {
					t.Fatalf("queued = %d, want %d", s.Queued, tt.waiters-tt.wantFull)
				}
				b.Release()
				wg.Wait()
				if int(got.Load()) != tt.waiters-tt.wantFull {
					t.Fatalf("served from queue = %d, want %d", got.Load(), tt.waiters-tt.wantFull)
				}
				if s := b.Snapshot(); s.InFlight != 0 || s.Queued != 0 {
					t.Fatalf("snapshot at end = %+v", s)
				}
			})
		})
	}
}

func TestBulkhead_QueueWaitLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, 1, WithMaxQueue(1), WithMaxWait(100*time.Millisecond))
		if err := b.Acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err := b.Acquire(t.Context())
		if !errors.Is(err, ErrFull) {
			t.Fatalf("Acquire = %v, want ErrFull after the wait limit", err)
		}
		if waited := time.Since(start); waited != 100*time.Millisecond {
			t.Fatalf("waited %v, want exactly 100ms", waited)
		}
		if s := b.Snapshot(); s.Queued != 0 || s.Rejected != 1 {
			t.Fatalf("snapshot = %+v", s)
		}
	})
}

func TestBulkhead_QueuedCallerHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, 1, WithMaxQueue(1))
		if err := b.Acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := b.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Acquire = %v, want DeadlineExceeded", err)
		}
		b.Release()
		if err := b.Acquire(t.Context()); err != nil {
			t.Fatalf("slot lost after a queued caller gave up: %v", err)
		}
	})
}

func TestBulkhead_FIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBulkhead(t, 1, WithMaxQueue(5))
		if err := b.Acquire(t.Context()); err != nil {
			t.Fatal(err)
		}
		var order []int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range 5 {
			wg.Go(func() {
				if err := b.Acquire(t.Context()); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				b.Release()
			})
			synctest.Wait() // queue them in order
		}
		b.Release()
		wg.Wait()
		for i, v := range order {
			if v != i {
				t.Fatalf("order = %v, want 0..4", order)
			}
		}
	})
}

type rejections struct{ n atomic.Int32 }

func (r *rejections) OnReject(Rejection) { r.n.Add(1) }

func TestBulkhead_NeverExceedsLimitUnderLoad(t *testing.T) {
	rec := &rejections{}
	b := newBulkhead(t, 3, WithMaxQueue(4), WithListener(rec))
	var cur, peak, ok, full atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 300 {
				err := b.Do(t.Context(), func(context.Context) error {
					n := cur.Add(1)
					for {
						p := peak.Load()
						if n <= p || peak.CompareAndSwap(p, n) {
							break
						}
					}
					cur.Add(-1)
					return nil
				})
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrFull):
					full.Add(1)
				default:
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if peak.Load() > 3 {
		t.Fatalf("peak concurrency = %d, want <= 3", peak.Load())
	}
	if ok.Load()+full.Load() != 16*300 || rec.n.Load() != full.Load() {
		t.Fatalf("ok %d + full %d != %d, or listener saw %d", ok.Load(), full.Load(), 16*300, rec.n.Load())
	}
	if s := b.Snapshot(); s.InFlight != 0 || s.Queued != 0 {
		t.Fatalf("snapshot at end = %+v", s)
	}
}

func TestNew_RejectsBadOptions(t *testing.T) {
	if _, err := New("x", 0); err == nil {
		t.Error("maxConcurrent 0 accepted")
	}
	if _, err := New("x", 1, WithMaxQueue(-1)); err == nil {
		t.Error("negative queue accepted")
	}
	if _, err := New("x", 1, WithMaxWait(-1)); err == nil {
		t.Error("negative wait accepted")
	}
}

func TestBulkhead_FastPathDoesNotAllocate(t *testing.T) {
	b := newBulkhead(t, 10)
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() {
		if err := b.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		b.Release()
	}); n != 0 {
		t.Fatalf("allocs = %v, want 0", n)
	}
}

func BenchmarkBulkhead(b *testing.B) {
	bh, _ := New("bench", 100)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := bh.Acquire(ctx); err != nil {
			b.Fatal(err)
		}
		bh.Release()
	}
}
