package idempotency

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"
)

// ErrLockLost is returned by [Store.Complete] when the key is no longer
// claimed by the caller's token: its lock expired and another request took it
// over, or the record was removed.
var ErrLockLost = errors.New("idempotency: lock lost")

// Record is what a [Store] keeps for one key.
type Record struct {
	Key         string // the scoped key
	Fingerprint string // hex SHA-256 of method, path and body
	Token       string // random id of the request that claimed the key
	Done        bool   // false while the first request runs
	Status      int    // stored response status (Done records)
	Header      http.Header
	Body        []byte
	LockedUntil time.Time // running records: when the claim lapses if its owner died
	ExpiresAt   time.Time // when the record may be forgotten
}

// live reports whether r still holds its key at now.
func (r *Record) live(now time.Time) bool {
	if !now.Before(r.ExpiresAt) {
		return false
	}
	return r.Done || now.Before(r.LockedUntil)
}

// Store keeps idempotency records. Implementations must make Claim atomic
// across all processes sharing the store.
type Store interface {
	// Claim inserts rec (a running record: Done false) when rec.Key has no
	// live record at now. A record is live until its ExpiresAt and, while
	// running, until its LockedUntil. Claim returns (nil, nil) when rec was
	// inserted, and the live record otherwise. A store may use its own clock
	// for expiry (the Redis store does, with now only fixing the durations).
	Claim(ctx context.Context, rec Record, now time.Time) (*Record, error)
	// Complete stores the response in the record claimed by rec.Token and
	// keeps it until rec.ExpiresAt. It returns ErrLockLost when the token no
	// longer holds the key.
	Complete(ctx context.Context, rec Record, now time.Time) error
	// Release deletes the running record claimed by token, so that the key
	// can be retried. Releasing a key the token does not hold is a no-op.
	Release(ctx context.Context, key, token string) error
}

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
	if old, ok := m.recs[rec.Key]; ok && old.live(now) {
		c := old
		c.Header = old.Header.Clone()
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
	old.Header = rec.Header.Clone()
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

// Purge removes the records that are no longer live at now and returns how
// many it removed.
func (m *MemoryStore) Purge(now time.Time) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k, r := range m.recs {
		if !r.live(now) {
			delete(m.recs, k)
			n++
		}
	}
	return n
}
