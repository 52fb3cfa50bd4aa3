package memory

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/dlq"
)

// DLQStore is an in-memory [dlq.Store]. One mutex serialises every
// operation, so first-letter detection and replay claims are exact. Letters
// are copied in and out: callers never share memory with the store.
type DLQStore struct {
	mu      sync.Mutex
	letters map[string]*dlqEntry
}

type dlqEntry struct {
	l          *dlq.Letter
	claimToken string
	claimUntil time.Time
}

var _ dlq.Store = (*DLQStore)(nil)

// NewDLQStore returns an empty in-memory dead-letter store.
func NewDLQStore() *DLQStore { return &DLQStore{letters: make(map[string]*dlqEntry)} }

// Add implements [dlq.Store].
func (s *DLQStore) Add(ctx context.Context, l *dlq.Letter) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.letters[l.ID]; ok {
		return false, dlq.ErrExists
	}
	first := l.Open()
	if first {
		for _, e := range s.letters {
			if e.l.Consumer == l.Consumer && e.l.Open() {
				first = false
				break
			}
		}
	}
	s.letters[l.ID] = &dlqEntry{l: l.Clone()}
	return first, nil
}

// Get implements [dlq.Store].
func (s *DLQStore) Get(ctx context.Context, id string) (*dlq.Letter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.letters[id]
	if !ok {
		return nil, dlq.ErrNotFound
	}
	return e.l.Clone(), nil
}

// matching returns the entries f selects in id order, at most f.Limit.
func (s *DLQStore) matching(f dlq.Filter) []*dlqEntry {
	var out []*dlqEntry
	for _, e := range s.letters {
		if f.Match(e.l) {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].l.ID < out[j].l.ID })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out
}

// List implements [dlq.Store].
func (s *DLQStore) List(ctx context.Context, f dlq.Filter) ([]*dlq.Letter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	es := s.matching(f)
	out := make([]*dlq.Letter, len(es))
	for i, e := range es {
		out[i] = e.l.Clone()
	}
	return out, nil
}

// available returns the entry if it is open and unclaimed at now.
func (s *DLQStore) available(id string, now time.Time) (*dlqEntry, error) {
	e, ok := s.letters[id]
	switch {
	case !ok:
		return nil, dlq.ErrNotFound
	case !e.l.Open():
		return nil, dlq.ErrAlreadyReplayed
	case e.claimToken != "" && now.Before(e.claimUntil):
		return nil, dlq.ErrReplayInProgress
	}
	return e, nil
}

// UpdateMessage implements [dlq.Store].
func (s *DLQStore) UpdateMessage(ctx context.Context, id string, msg *handoff.Message, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.available(id, now)
	if err != nil {
		return err
	}
	e.l.Message = msg.Clone()
	return nil
}

// Claim implements [dlq.Store].
func (s *DLQStore) Claim(ctx context.Context, id, token string, now, until time.Time) (*dlq.Letter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.available(id, now)
	if err != nil {
		return nil, err
	}
	e.claimToken, e.claimUntil = token, until
	return e.l.Clone(), nil
}

// Release implements [dlq.Store].
func (s *DLQStore) Release(ctx context.Context, id, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.letters[id]; ok && e.claimToken == token {
		e.claimToken, e.claimUntil = "", time.Time{}
	}
	return nil
}

// MarkReplayed implements [dlq.Store].
func (s *DLQStore) MarkReplayed(ctx context.Context, id, token string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.letters[id]
	if !ok || token == "" || e.claimToken != token || !e.l.Open() {
		return dlq.ErrClaimLost
	}
	e.l.ReplayedAt = at
	e.l.ReplayCount++
	e.claimToken, e.claimUntil = "", time.Time{}
	return nil
}

// Delete implements [dlq.Store].
func (s *DLQStore) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.letters[id]; !ok {
		return dlq.ErrNotFound
	}
	delete(s.letters, id)
	return nil
}

// Purge implements [dlq.Store].
func (s *DLQStore) Purge(ctx context.Context, f dlq.Filter) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	es := s.matching(f)
	for _, e := range es {
		delete(s.letters, e.l.ID)
	}
	return len(es), nil
}
