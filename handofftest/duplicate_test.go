package handofftest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/handofftest"
)

// recorder is a testing.TB that records instead of failing.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	logs   []string
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.failed = sprintf(format, args...)
	r.mu.Unlock()
	panic(errStop)
}

var errStop = errors.New("stop")

func sprintf(format string, args ...any) string {
	return strings.TrimSpace(fmt.Sprintf(format, args...))
}

func run(h handoff.Handler, effects handofftest.Effects) (r *recorder) {
	r = &recorder{}
	defer func() {
		if v := recover(); v != nil && v != errStop {
			panic(v)
		}
	}()
	handofftest.DuplicateDelivery(r, "shipping", h, handoff.NewMessage("/orders", "order.placed", []byte(`{"id":"o-1"}`)), effects)
	return r
}

type store struct {
	mu   sync.Mutex
	seen map[string]bool
	rows int
}

func (s *store) effects(context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rows, nil
}

func TestDuplicateDelivery(t *testing.T) {
	// Idempotent: the message id is remembered with the effect.
	s := &store{seen: map[string]bool{}}
	idem := handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.seen[m.ID] {
			s.seen[m.ID] = true
			s.rows++
		}
		return nil
	})
	if r := run(idem, s.effects); r.failed != "" || len(r.logs) != 1 || !strings.HasPrefix(r.logs[0], handofftest.DuplicateDeliveryMarker+" consumer=shipping message=") {
		t.Fatalf("idempotent handler: failed %q, logs %q", r.failed, r.logs)
	}

	s2 := &store{}
	twice := handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
		s2.mu.Lock()
		defer s2.mu.Unlock()
		s2.rows++
		return nil
	})
	if r := run(twice, s2.effects); !strings.Contains(r.failed, "the duplicate of") || !strings.Contains(r.failed, "2 effects in all, want 1") {
		t.Fatalf("handler that applies a duplicate: %q", r.failed)
	}

	none := handoff.HandlerFunc(func(context.Context, *handoff.Message) error { return nil })
	if r := run(none, (&store{}).effects); !strings.Contains(r.failed, "the first delivery of") {
		t.Fatalf("handler with no effect: %q", r.failed)
	}

	refuse := 0
	nack := handoff.HandlerFunc(func(context.Context, *handoff.Message) error {
		refuse++
		if refuse == 2 {
			return errors.New("duplicate key")
		}
		return nil
	})
	s3 := &store{}
	if r := run(handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
		if err := nack.Handle(ctx, m); err != nil {
			return err
		}
		s3.rows++
		return nil
	}), s3.effects); !strings.Contains(r.failed, "second delivery of") || !strings.Contains(r.failed, "not acknowledged") {
		t.Fatalf("handler that errors on the duplicate: %q", r.failed)
	}
}
