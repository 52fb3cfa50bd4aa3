package idempotency

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/handoffhq/handoff/idempotency/idempotencystore"
)

// The storage contract lives in package idempotencystore, which imports
// only the standard library, so that the SQL stores in the adapters do not
// link the HTTP middleware into services that use the adapters for other
// stores.

// ErrLockLost is returned by [Store.Complete] when the key is no longer
// claimed by the caller's token: its lock expired and another request took it
// over, or the record was removed.
var ErrLockLost = idempotencystore.ErrLockLost

type (
	// Record is what a [Store] keeps for one key. Header holds the stored
	// response's header (an http.Header converts to it and back).
	Record = idempotencystore.Record
	// Store keeps idempotency records: MemoryStore here, the SQL stores of
	// adapter/postgres, adapter/sqlite and adapter/mysql (IdempotencyStore),
	// and adapter/redis. Implementations must make Claim atomic across all
	// processes sharing the store; idempotencytest.Run checks them.
	Store = idempotencystore.Store
	// Purger is a Store whose records that are no longer live must be
	// deleted from time to time (the SQL stores and MemoryStore; Redis
	// expires its own). Expired records are also overwritten on reuse.
	Purger = idempotencystore.Purger
)

// MemoryStore is a [Store] in process memory, for tests, examples and
// single-instance services. The zero value is ready to use.
type MemoryStore struct {
	mu   sync.Mutex
	recs map[string]Record
}

// Claim implements [Store].
func (m *MemoryStore) Claim(_ context.Context, rec Record, now time.Time) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.recs == nil {
		m.recs = make(map[string]Record)
	}
	if old, ok := m.recs[rec.Key]; ok && old.Live(now) {
		c := old
		c.Header = http.Header(old.Header).Clone()
		c.Body = append([]byte(nil), old.Body...)
		return &c, nil
	}
	rec.Done = false
	m.recs[rec.Key] = rec
	return nil, nil
}

// Complete implements [Store].
func (m *MemoryStore) Complete(_ context.Context, rec Record, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.recs[rec.Key]
	if !ok || old.Done || old.Token != rec.Token {
		return ErrLockLost
	}
	old.Done = true
	old.Status = rec.Status
	old.Header = http.Header(rec.Header).Clone()
	old.Body = append([]byte(nil), rec.Body...)
	old.ExpiresAt = rec.ExpiresAt
	m.recs[rec.Key] = old
	return nil
}

// Release implements [Store].
func (m *MemoryStore) Release(_ context.Context, key, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.recs[key]; ok && !old.Done && old.Token == token {
		delete(m.recs, key)
	}
	return nil
}

// Purge implements [Purger]: it removes the records that are no longer live
// at now and returns how many it removed.
func (m *MemoryStore) Purge(_ context.Context, now time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for k, r := range m.recs {
		if !r.Live(now) {
			delete(m.recs, k)
			n++
		}
	}
	return n, nil
}
