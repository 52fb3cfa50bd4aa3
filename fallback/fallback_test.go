package fallback

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/handoffhq/handoff"
)

var errDown = errors.New("down")

type served struct{ all []Event }

func (s *served) OnFallback(e Event) { s.all = append(s.all, e) }

func ok(v string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return v, nil }
}

func fail(err error) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return "", err }
}

func TestFallback_ServesLastGoodWithinStaleness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &served{}
		fb, err := New[string, string](nil, WithCache(10, time.Minute), WithListener(rec), WithName("prices"))
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		if v, err := fb.Do(ctx, "sku1", ok("v1")); v != "v1" || err != nil {
			t.Fatalf("Do = %q, %v", v, err)
		}
		time.Sleep(30 * time.Second)
		v, err := fb.Do(ctx, "sku1", fail(errDown))
		if v != "v1" || err != nil {
			t.Fatalf("fallback = %q, %v, want the cached v1", v, err)
		}
		if len(rec.all) != 1 || rec.all[0].Source != SourceCache || rec.all[0].Age != 30*time.Second || rec.all[0].Name != "prices" || !errors.Is(rec.all[0].Err, errDown) {
			t.Fatalf("events = %+v", rec.all)
		}
		time.Sleep(30*time.Second + time.Nanosecond) // now 60s + 1ns old
		v, err = fb.Do(ctx, "sku1", fail(errDown))
		if err == nil || !errors.Is(err, errDown) || !errors.Is(err, ErrNoFallback) || v != "" {
			t.Fatalf("stale value served: %q, %v", v, err)
		}
		if fb.Len() != 0 {
			t.Fatalf("stale entry kept: len %d", fb.Len())
		}
	})
}

func TestFallback_ExactlyAtMaxStaleIsServed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fb, _ := New[int, int](nil, WithCache(1, time.Second))
		fb.Put(1, 10)
		time.Sleep(time.Second)
		if v, age, ok := fb.Get(1); !ok || v != 10 || age != time.Second {
			t.Fatalf("Get = %v, %v, %v", v, age, ok)
		}
	})
}

func TestFallback_FuncWhenNoCachedValue(t *testing.T) {
	rec := &served{}
	fb, _ := New(func(ctx context.Context, key string, err error) (string, error) {
		return "default-" + key, nil
	}, WithCache(10, time.Minute), WithListener(rec))
	v, err := fb.Do(t.Context(), "a", fail(errDown))
	if v != "default-a" || err != nil {
		t.Fatalf("Do = %q, %v", v, err)
	}
	if len(rec.all) != 1 || rec.all[0].Source != SourceFunc {
		t.Fatalf("events = %+v", rec.all)
	}
}

func TestFallback_NotForPermanentOrCanceled(t *testing.T) {
	fb, _ := New(func(context.Context, string, error) (string, error) { return "fb", nil })
	for _, e := range []error{handoff.Permanent(errDown), fmt.Errorf("x: %w", context.Canceled)} {
		v, err := fb.Do(t.Context(), "k", fail(e))
		if v == "fb" || !errors.Is(err, e) {
			t.Errorf("Do with %v = %q, %v; want the error, no fallback", e, v, err)
		}
	}
	if fb.Served() != 0 {
		t.Fatalf("served = %d", fb.Served())
	}
}

func TestFallback_LRUEviction(t *testing.T) {
	fb, _ := New[int, int](nil, WithCache(3, time.Hour))
	for i := range 3 {
		fb.Put(i, i)
	}
	fb.Get(0)     // 0 is now most recent; 1 is the oldest
	fb.Put(3, 3)  // evicts 1
	fb.Put(2, 22) // update keeps size
	if fb.Len() != 3 {
		t.Fatalf("len = %d, want 3", fb.Len())
	}
	for k, want := range map[int]bool{0: true, 1: false, 2: true, 3: true} {
		if _, _, ok := fb.Get(k); ok != want {
			t.Errorf("key %d cached = %v, want %v", k, ok, want)
		}
	}
	if v, _, _ := fb.Get(2); v != 22 {
		t.Fatalf("updated value = %d", v)
	}
}

func TestNew_Validation(t *testing.T) {
	if _, err := New[int, int](nil); err == nil {
		t.Error("no func and no cache accepted")
	}
	for _, o := range []Option{WithCache(0, time.Second), WithCache(1, 0), WithShouldFallback(nil), WithListener(nil)} {
		if _, err := New[int, int](func(context.Context, int, error) (int, error) { return 0, nil }, o); err == nil {
			t.Error("bad option accepted")
		}
	}
}
