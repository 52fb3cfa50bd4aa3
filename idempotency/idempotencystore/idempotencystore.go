// Package idempotencystore is the storage contract of package idempotency:
// the [Store] interface and the [Record] it keeps. It imports only the
// standard library (not net/http), so that the SQL stores that
// adapter/postgres, adapter/sqlite and adapter/mysql construct do not link
// the HTTP middleware into every service using those adapters. Package
// idempotency names these types as its own (idempotency.Store is
// idempotencystore.Store): use those names.
package idempotencystore

import (
	"context"
	"errors"
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
	Header      map[string][]string
	Body        []byte
	LockedUntil time.Time // running records: when the claim lapses if its owner died
	ExpiresAt   time.Time // when the record may be forgotten
}

// Live reports whether r still holds its key at now: until its ExpiresAt
// and, while running, until its LockedUntil.
func (r *Record) Live(now time.Time) bool {
	if !now.Before(r.ExpiresAt) {
		return false
	}
	return r.Done || now.Before(r.LockedUntil)
}

// Store keeps idempotency records. Implementations must make Claim atomic
// across all processes sharing the store.
type Store interface {
	// Claim inserts rec (a running record: Done false) when rec.Key has no
	// live record at now. Claim returns (nil, nil) when rec was inserted,
	// and the live record otherwise. A store may use its own clock for
	// expiry (the Redis store does, with now only fixing the durations).
	Claim(ctx context.Context, rec Record, now time.Time) (*Record, error)
	// Complete stores the response in the record claimed by rec.Token and
	// keeps it until rec.ExpiresAt. It returns ErrLockLost when the token no
	// longer holds the key.
	Complete(ctx context.Context, rec Record, now time.Time) error
	// Release deletes the running record claimed by token, so that the key
	// can be retried. Releasing a key the token does not hold is a no-op.
	Release(ctx context.Context, key, token string) error
}

// Purger is a [Store] whose records that are no longer live must be deleted
// from time to time (the SQL stores and MemoryStore; Redis expires its own).
// Expired records are also overwritten when their key is used again.
type Purger interface {
	// Purge deletes the records no longer live at now and returns how many.
	Purge(ctx context.Context, now time.Time) (int64, error)
}
