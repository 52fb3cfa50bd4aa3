package throttle

import (
	"errors"
	"math"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestProbabilityFormula(t *testing.T) {
	tests := []struct {
		k        float64
		req, acc int64
		want     float64
	}{
		{2, 0, 0, 0},
		{2, 100, 100, 0},
		{2, 100, 50, 0},          // 100 - 2·50 = 0
		{2, 100, 40, 20.0 / 101}, // (100-80)/101
		{2, 100, 0, 100.0 / 101},
		{1, 100, 90, 10.0 / 101},
		{1.5, 1000, 500, 250.0 / 1001},
	}
	for _, tt := range tests {
		th, err := New("x", WithK(tt.k))
		if err != nil {
			t.Fatal(err)
		}
		if got := th.probability(tt.req, tt.acc); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("K=%v req=%d acc=%d: p = %v, want %v", tt.k, tt.req, tt.acc, got, tt.want)
		}
	}
}

type counter struct{ n atomic.Int64 }

func (c *counter) OnThrottle(Rejection) { c.n.Add(1) }

func TestThrottle_RejectsLocallyWhenBackendRejects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &counter{}
		th, _ := New("dep", WithWindow(12*time.Second), WithListener(rec))
		// Healthy: the backend accepts everything, nothing is rejected.
		for range 1000 {
			if err := th.Allow(); err != nil {
				t.Fatalf("healthy backend throttled: %v", err)
			}
			th.Record(true)
		}
		// Outage: the backend accepts nothing. Local rejections rise until
		// requests ≈ K·accepts again.
		time.Sleep(13 * time.Second) // the healthy window rolls out
		sent, rejected := 0, 0
		for range 10000 {
			if err := th.Allow(); errors.Is(err, ErrThrottled) {
				rejected++
				continue
			}
			sent++
			th.Record(false)
		}
		if rejected < 9000 {
			t.Fatalf("rejected %d of 10000 during the outage, want most", rejected)
		}
		if sent == 0 {
			t.Fatal("no request reached the backend: recovery could never be seen")
		}
		if int64(rejected) != rec.n.Load() {
			t.Fatalf("listener saw %d, want %d", rec.n.Load(), rejected)
		}
		s := th.Snapshot()
		if s.Requests != 10000 || s.Accepts != 0 || s.Probability < 0.99 {
			t.Fatalf("snapshot = %+v", s)
		}
		// Recovery: once the outage leaves the window, requests flow again.
		time.Sleep(13 * time.Second)
		for range 100 {
			if err := th.Allow(); err != nil {
				t.Fatalf("after recovery: %v", err)
			}
			th.Record(true)
		}
	})
}

func TestThrottle_DoesNotRejectWhenBackendAcceptsMoreThanOneInK(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		th, _ := New("dep", WithK(2), WithWindow(time.Minute))
		// The backend accepts 3 of 4: requests - 2·accepts stays below 0.
		rejected := 0
		for i := range 20000 {
			if th.Allow() != nil {
				rejected++
				continue
			}
			th.Record(i%4 != 3)
		}
		if rejected > 0 {
			t.Fatalf("rejected %d of 20000 with 75%% accepted, want 0", rejected)
		}
	})
}

func TestNew_RejectsBadOptions(t *testing.T) {
	for _, o := range []Option{WithK(0.5), WithWindow(time.Millisecond), WithListener(nil)} {
		if _, err := New("x", o); err == nil {
			t.Error("bad option accepted")
		}
	}
}

func BenchmarkThrottle(b *testing.B) {
	th, _ := New("bench")
	b.ReportAllocs()
	for b.Loop() {
		if err := th.Allow(); err != nil {
			b.Fatal(err)
		}
		th.Record(true)
	}
}
