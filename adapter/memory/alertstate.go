package memory

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/handoffhq/handoff/alert/alertstate"
)

// AlertState is an in-memory alertstate.Store: the alerts firing among the
// alert managers of one process that share it (alert.WithState).
type AlertState struct {
	mu sync.Mutex
	rs map[string]alertstate.Record
}

var _ alertstate.Store = (*AlertState)(nil)

// NewAlertState returns an empty in-memory alert state.
func NewAlertState() *AlertState { return &AlertState{rs: map[string]alertstate.Record{}} }

// Fire implements alertstate.Store.
func (s *AlertState) Fire(ctx context.Context, r alertstate.Record) (bool, error) {
	if err := r.Validate(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.rs[r.Key]; ok && old.ResolvedAt.IsZero() {
		return false, nil
	}
	r.Details = maps.Clone(r.Details)
	r.FiredAt, r.ResolvedAt = r.FiredAt.UTC().Truncate(time.Microsecond), time.Time{}
	s.rs[r.Key] = r
	return true, nil
}

// Resolve implements alertstate.Store.
func (s *AlertState) Resolve(ctx context.Context, key string, at time.Time) (alertstate.Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rs[key]
	if !ok || !r.ResolvedAt.IsZero() {
		return alertstate.Record{}, false, nil
	}
	r.ResolvedAt = at.UTC().Truncate(time.Microsecond)
	s.rs[key] = r
	r.Details = maps.Clone(r.Details)
	return r, true, nil
}

// Firing implements alertstate.Store.
func (s *AlertState) Firing(ctx context.Context, condition string) ([]alertstate.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []alertstate.Record
	for _, r := range s.rs {
		if r.Condition == condition && r.ResolvedAt.IsZero() {
			r.Details = maps.Clone(r.Details)
			out = append(out, r)
		}
	}
	return out, nil
}
