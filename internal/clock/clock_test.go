package clock

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestCoarse_FollowsTimeWithinResolution(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(time.Millisecond)
		if got := c.Now(); got != 0 {
			t.Fatalf("first reading = %d, want 0", got)
		}
		for i := 1; i <= 50; i++ {
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
			got := time.Duration(c.Now())
			want := time.Duration(i) * 10 * time.Millisecond
			if got > want || got < want-c.Resolution() {
				t.Fatalf("after %v: coarse = %v, want within one resolution below", want, got)
			}
		}
	})
}

func TestCoarse_StopsWhenIdleAndRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(time.Millisecond)
		c.Now()
		time.Sleep(2 * IdleTicks * time.Millisecond)
		synctest.Wait()
		if s := c.state.Load(); s != stateIdle {
			t.Fatalf("state after idling = %d, want idle", s)
		}
		stale := c.now.Load()
		time.Sleep(time.Second)
		if got := time.Duration(c.Now()); got < time.Duration(stale)+time.Second {
			t.Fatalf("reading after restart = %v, want fresh time (>= %v)", got, time.Duration(stale)+time.Second)
		}
		if got, want := time.Duration(c.Exact()), time.Since(c.base); got != want {
			t.Fatalf("Exact = %v, want %v", got, want)
		}
	})
}

func TestCoarse_NeverRunsBackwards(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(5 * time.Millisecond)
		last := c.Now()
		for range 200 {
			time.Sleep(time.Millisecond)
			if n := c.Exact(); n < last {
				t.Fatalf("Exact went back: %d < %d", n, last)
			} else {
				last = n
			}
			if n := c.Now(); n < last {
				t.Fatalf("Now went back after Exact: %d < %d", n, last)
			}
		}
	})
}

func BenchmarkCoarseNow(b *testing.B) {
	c := New(time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		c.Now()
	}
}

func BenchmarkTimeNow(b *testing.B) {
	for b.Loop() {
		time.Now()
	}
}
