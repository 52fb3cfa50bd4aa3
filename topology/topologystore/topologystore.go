// Package topologystore is the storage contract of the observed topology:
// the [Store] interface several processes share, the [Record] it keeps of
// one edge and route, and the mergeable latency [Histogram]. It imports
// only the standard library, so that the SQL stores adapter/postgres,
// adapter/sqlite and adapter/mysql construct do not link package topology
// (and its YAML and JSON Schema dependencies). Package topology names these
// types as its own (topology.Record is topologystore.Record): use those
// names.
package topologystore

import (
	"context"
	"fmt"
	"time"
)

// LatencyBounds are the upper bounds of the latency histogram's buckets;
// a last bucket counts what is above the largest.
var LatencyBounds = [...]time.Duration{
	time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// Buckets is the number of histogram buckets: one per bound, and +Inf.
const Buckets = len(LatencyBounds) + 1

// Histogram counts durations per bucket of LatencyBounds (not
// cumulatively: bucket i counts durations above bound i-1 up to bound i).
// Two histograms merge by adding them bucket by bucket, whichever process
// recorded them.
type Histogram [Buckets]int64

// Observe counts d in its bucket.
func (h *Histogram) Observe(d time.Duration) {
	for i, b := range LatencyBounds {
		if d <= b {
			h[i]++
			return
		}
	}
	h[Buckets-1]++
}

// Merge adds o to h.
func (h *Histogram) Merge(o Histogram) {
	for i := range h {
		h[i] += o[i]
	}
}

// MaxName is the longest From, To, Kind, Route or Protocol a store takes,
// in bytes.
const MaxName = 512

// Record is what was observed of one edge over one route: the key (From,
// To, Kind, Route), the protocol, the counts, the latency summary (sum and
// histogram) and when it was last seen. Records of one key merge by
// adding (see [Record.Merge]).
type Record struct {
	// From and To are the edge's ends: services, or a topic on the topic
	// side of a publish (To) or consume (From).
	From, To string
	// Kind is "sync" or "async".
	Kind string
	// Route is the route or RPC method of a call, "publish" or "consume"
	// for the two sides of a topic, or empty.
	Route    string
	Protocol string
	Calls    int64
	Errors   int64
	// Total is the sum of the calls' durations.
	Total    time.Duration
	Latency  Histogram
	LastSeen time.Time
}

// Key identifies the row a record merges into.
type Key struct{ From, To, Kind, Route string }

// Key returns r's key.
func (r *Record) Key() Key { return Key{r.From, r.To, r.Kind, r.Route} }

// Merge adds o (a record of the same key) to r: counts, total and
// histogram add up, LastSeen is the later, and the protocol, once set, is
// kept.
func (r *Record) Merge(o Record) {
	r.Calls += o.Calls
	r.Errors += o.Errors
	r.Total += o.Total
	r.Latency.Merge(o.Latency)
	if o.LastSeen.After(r.LastSeen) {
		r.LastSeen = o.LastSeen
	}
	if r.Protocol == "" {
		r.Protocol = o.Protocol
	}
}

// Validate checks what every store needs of a record: both ends, a kind
// of sync or async, names of at most MaxName bytes, no negative count and
// a last-seen time.
func (r *Record) Validate() error {
	switch {
	case r.From == "" || r.To == "":
		return fmt.Errorf("topologystore: record %q -> %q: from and to are required", r.From, r.To)
	case r.Kind != "sync" && r.Kind != "async":
		return fmt.Errorf("topologystore: record %s -> %s: kind %q must be sync or async", r.From, r.To, r.Kind)
	case r.Calls < 0 || r.Errors < 0 || r.Total < 0:
		return fmt.Errorf("topologystore: record %s -> %s: calls, errors and total must not be negative", r.From, r.To)
	case r.LastSeen.IsZero():
		return fmt.Errorf("topologystore: record %s -> %s: lastSeen is required", r.From, r.To)
	}
	for _, f := range [...]struct{ name, v string }{{"from", r.From}, {"to", r.To}, {"route", r.Route}, {"protocol", r.Protocol}} {
		if len(f.v) > MaxName {
			return fmt.Errorf("topologystore: record: %s is %d bytes; at most %d are kept", f.name, len(f.v), MaxName)
		}
	}
	return nil
}

// Store keeps the records of the processes that share it.
type Store interface {
	// Add merges each record into the stored one of its key (see
	// [Record.Merge]), creating it if there is none, all or none. Two
	// processes adding to one key at once both count.
	Add(ctx context.Context, rs []Record) error
	// Records returns the records last seen at or after since, in no
	// particular order.
	Records(ctx context.Context, since time.Time) ([]Record, error)
	// DeleteBefore deletes the records last seen before t and returns how
	// many it deleted.
	DeleteBefore(ctx context.Context, t time.Time) (int64, error)
}
