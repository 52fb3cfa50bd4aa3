package topology

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/handoffhq/handoff/topology/topologystore"
)

// Defaults of a Shared graph.
const (
	DefaultFlushInterval = 2 * time.Second
	DefaultCacheTTL      = time.Second
	DefaultRetention     = 7 * 24 * time.Hour
)

// Shared is the observed graph of several processes that share one Store
// (the instances of a server behind a load balancer, say): each batches
// what it observes in memory and adds it to the store every flush
// interval, counts adding up; each reads the store's edges, merged over
// the declared graph, through a read cache.
//
// Staleness is bounded: an observation made by one process is in another
// one's Graph within the flush interval plus the cache TTL (3 s by
// default), and in its own at once (Graph flushes what is waiting first).
// What a process observed and had not flushed when it stops is flushed by
// Run on its way out; a process that crashes loses at most one flush
// interval of observations. Edges not seen for the retention period are
// left out of Graph and deleted from the store by Run.
//
// Observe and Graph are safe for concurrent use; Run must be running for
// observations to reach the store other than through Graph.
type Shared struct {
	store     Store
	base      *Graph
	flush     time.Duration
	ttl       time.Duration
	retention time.Duration
	log       *slog.Logger

	mu      sync.Mutex
	pending map[topologystore.Key]*Record

	flushMu sync.Mutex // one flush at a time
	gen     int64      // flushes done; guarded by readMu

	readMu   sync.Mutex
	cached   *Graph
	cachedAt time.Time
	cacheGen int64
}

var _ Observer = (*Shared)(nil)

// SharedOption configures a Shared graph.
type SharedOption func(*Shared) error

// WithFlushInterval sets how often observations are added to the store
// (default DefaultFlushInterval).
func WithFlushInterval(d time.Duration) SharedOption {
	return func(s *Shared) error {
		if d <= 0 {
			return fmt.Errorf("topology: WithFlushInterval(%v): must be > 0", d)
		}
		s.flush = d
		return nil
	}
}

// WithCacheTTL sets how long a read of the store serves Graph (default
// DefaultCacheTTL; 0 reads the store every time).
func WithCacheTTL(d time.Duration) SharedOption {
	return func(s *Shared) error {
		if d < 0 {
			return fmt.Errorf("topology: WithCacheTTL(%v): must be >= 0", d)
		}
		s.ttl = d
		return nil
	}
}

// WithRetention sets how long an edge not seen again is kept (default
// DefaultRetention).
func WithRetention(d time.Duration) SharedOption {
	return func(s *Shared) error {
		if d <= 0 {
			return fmt.Errorf("topology: WithRetention(%v): must be > 0", d)
		}
		s.retention = d
		return nil
	}
}

// WithDeclared sets the declared graph (FromSystem) the stored edges are
// merged over; it is copied, not changed.
func WithDeclared(g *Graph) SharedOption {
	return func(s *Shared) error {
		if g == nil {
			return errors.New("topology: WithDeclared: graph must not be nil")
		}
		s.base = g.clone()
		return nil
	}
}

// WithLogger sets the logger of failed flushes and deletions (default:
// discard).
func WithLogger(l *slog.Logger) SharedOption {
	return func(s *Shared) error {
		if l == nil {
			return errors.New("topology: WithLogger: logger must not be nil")
		}
		s.log = l
		return nil
	}
}

// NewShared returns a graph shared through store. Nothing starts until
// Run.
func NewShared(store Store, opts ...SharedOption) (*Shared, error) {
	if store == nil {
		return nil, errors.New("topology: NewShared: store must not be nil")
	}
	s := &Shared{store: store, base: New(), flush: DefaultFlushInterval, ttl: DefaultCacheTTL,
		retention: DefaultRetention, log: slog.New(slog.DiscardHandler), pending: map[topologystore.Key]*Record{}}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Observe adds o to the batch of the next flush. An observation whose
// names the store cannot keep (longer than topologystore.MaxName bytes)
// is refused.
func (s *Shared) Observe(o Observation) error { return s.observeAll([]Observation{o}) }

// observeAll adds all of obs to the batch, or none if one is refused.
func (s *Shared) observeAll(obs []Observation) error {
	now := time.Now()
	rs := make([]Record, len(obs))
	for i, o := range obs {
		r, err := o.record()
		if err != nil {
			return err
		}
		r.LastSeen = now
		if err := r.Validate(); err != nil {
			return fmt.Errorf("topology: observation %.64s -> %.64s: %w", o.From, o.To, err)
		}
		rs[i] = r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		if p := s.pending[r.Key()]; p != nil {
			p.Merge(r)
		} else {
			s.pending[r.Key()] = &r
		}
	}
	return nil
}

func (s *Shared) hasPending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) > 0
}

// Flush adds what was observed since the last flush to the store. If the
// store fails, the batch is kept for the next flush and the error
// returned.
func (s *Shared) Flush(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	batch := s.pending
	s.pending = map[topologystore.Key]*Record{}
	s.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	rs := make([]Record, 0, len(batch))
	for _, r := range batch {
		rs = append(rs, *r)
	}
	// One key order for every process, so that two flushes of the same
	// keys in two transactions lock their rows in the same order.
	slices.SortFunc(rs, func(a, b Record) int {
		return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Route, b.Route))
	})
	if err := s.store.Add(ctx, rs); err != nil {
		s.mu.Lock()
		for k, r := range batch {
			if p := s.pending[k]; p != nil {
				r.Merge(*p)
			}
			s.pending[k] = r
		}
		s.mu.Unlock()
		return fmt.Errorf("topology: flush %d edges: %w", len(rs), err)
	}
	s.readMu.Lock()
	s.gen++
	s.readMu.Unlock()
	return nil
}

// Graph returns the declared graph with the stored edges seen within the
// retention period merged in, after flushing this process's own
// observations. The result is shared with other callers until the cache
// TTL passes: read it, do not change it.
func (s *Shared) Graph(ctx context.Context) (*Graph, error) {
	if s.hasPending() {
		if err := s.Flush(ctx); err != nil {
			return nil, err
		}
	}
	s.readMu.Lock()
	defer s.readMu.Unlock()
	now := time.Now()
	if s.cached != nil && s.cacheGen == s.gen && now.Sub(s.cachedAt) < s.ttl {
		return s.cached, nil
	}
	gen := s.gen
	s.readMu.Unlock()
	rs, err := s.store.Records(ctx, now.Add(-s.retention))
	s.readMu.Lock()
	if err != nil {
		return nil, fmt.Errorf("topology: read stored edges: %w", err)
	}
	g := s.base.clone()
	for _, r := range rs {
		if err := g.Add(r); err != nil {
			return nil, fmt.Errorf("topology: stored edge: %w", err)
		}
	}
	s.cached, s.cachedAt, s.cacheGen = g, now, gen
	return g, nil
}

// Run flushes every flush interval and deletes the edges past the
// retention period (at start, then every hour or retention period,
// whichever is shorter) until ctx ends, then flushes once more and
// returns nil. Failed flushes and deletions are logged and tried again.
func (s *Shared) Run(ctx context.Context) error {
	flush := time.NewTicker(s.flush)
	defer flush.Stop()
	prune := time.NewTicker(min(time.Hour, s.retention))
	defer prune.Stop()
	s.prune(ctx)
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := s.Flush(fctx); err != nil {
				s.log.Error("topology: last flush failed: these observations are lost", "err", err)
			}
			return nil
		case <-flush.C:
			if err := s.Flush(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("topology: flush failed; trying again at the next", "err", err)
			}
		case <-prune.C:
			s.prune(ctx)
		}
	}
}

func (s *Shared) prune(ctx context.Context) {
	n, err := s.store.DeleteBefore(ctx, time.Now().Add(-s.retention))
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("topology: deleting edges past retention failed", "err", err, "retention", s.retention)
	case n > 0:
		s.log.Info("topology: deleted edges past retention", "edges", n, "retention", s.retention)
	}
}
