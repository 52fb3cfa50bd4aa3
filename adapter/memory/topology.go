package memory

import (
	"context"
	"sync"
	"time"

	"github.com/handoffhq/handoff/topology/topologystore"
)

// TopologyStore is an in-memory topology.Store (topologystore.Store): the
// observed edges of the graphs of one process that share it.
type TopologyStore struct {
	mu sync.Mutex
	rs map[topologystore.Key]topologystore.Record
}

var _ topologystore.Store = (*TopologyStore)(nil)

// NewTopologyStore returns an empty in-memory topology store.
func NewTopologyStore() *TopologyStore {
	return &TopologyStore{rs: map[topologystore.Key]topologystore.Record{}}
}

// Add implements topologystore.Store: all records or none.
func (s *TopologyStore) Add(ctx context.Context, rs []topologystore.Record) error {
	for i := range rs {
		if err := rs[i].Validate(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		r.LastSeen = r.LastSeen.UTC().Truncate(time.Microsecond)
		if old, ok := s.rs[r.Key()]; ok {
			old.Merge(r)
			r = old
		}
		s.rs[r.Key()] = r
	}
	return nil
}

// Records implements topologystore.Store.
func (s *TopologyStore) Records(ctx context.Context, since time.Time) ([]topologystore.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []topologystore.Record
	for _, r := range s.rs {
		if !r.LastSeen.Before(since) {
			out = append(out, r)
		}
	}
	return out, nil
}

// DeleteBefore implements topologystore.Store.
func (s *TopologyStore) DeleteBefore(ctx context.Context, t time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for k, r := range s.rs {
		if r.LastSeen.Before(t) {
			delete(s.rs, k)
			n++
		}
	}
	return n, nil
}
