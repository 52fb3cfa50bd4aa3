package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/handoffhq/handoff/idempotency/idempotencystore"
)

// MaxIdempotencyKeyLen is the longest scoped key handoff_idempotency holds
// (a client's scope and its key of at most 255 bytes).
const MaxIdempotencyKeyLen = 1024

// IdempotencyStore implements idempotency.Store in handoff_idempotency.
// Times are stored as Unix milliseconds from the middleware's clock, so the
// database clock plays no part.
type IdempotencyStore struct {
	db DB
	d  *Dialect
}

var (
	_ idempotencystore.Store  = (*IdempotencyStore)(nil)
	_ idempotencystore.Purger = (*IdempotencyStore)(nil)
)

// NewIdempotencyStore returns the idempotency store of db in dialect d.
func NewIdempotencyStore(db DB, d *Dialect) *IdempotencyStore { return &IdempotencyStore{db: db, d: d} }

const idemCols = `fingerprint, token, done, status, header, body, locked_until, expires_at`

// Claim implements idempotency.Store. On PostgreSQL and SQLite one statement
// claims a free, expired or abandoned key atomically: the upsert only
// overwrites a row that is no longer live, and RETURNING tells whether this
// token won. On MySQL a transaction inserts the key or locks its row (FOR
// UPDATE) and takes it over when it is no longer live.
func (s *IdempotencyStore) Claim(ctx context.Context, rec idempotencystore.Record, now time.Time) (*idempotencystore.Record, error) {
	if err := checkLen("idempotency key", rec.Key, MaxIdempotencyKeyLen); err != nil {
		return nil, err
	}
	n := now.UnixMilli()
	for range 3 {
		var old *idempotencystore.Record
		var err error
		if s.d.Name == "mysql" {
			old, err = s.claimMySQL(ctx, rec, n)
		} else {
			old, err = s.claimUpsert(ctx, rec, n)
		}
		if errors.Is(err, errReleased) {
			continue // changed between two statements: try again
		}
		if err != nil {
			return nil, fmt.Errorf("idempotency: claim %s: %w", rec.Key, err)
		}
		return old, nil
	}
	return nil, fmt.Errorf("idempotency: claim %s: key keeps changing", rec.Key)
}

var errReleased = errors.New("changed meanwhile")

func (s *IdempotencyStore) claimUpsert(ctx context.Context, rec idempotencystore.Record, now int64) (*idempotencystore.Record, error) {
	var tok string
	err := s.db.QueryRow(ctx, s.d.q(`INSERT INTO handoff_idempotency (idem_key, `+idemCols+`)
VALUES (?, ?, ?, 0, 0, '', NULL, ?, ?)
ON CONFLICT (idem_key) DO UPDATE SET fingerprint = excluded.fingerprint, token = excluded.token, done = 0, status = 0,
  header = '', body = NULL, locked_until = excluded.locked_until, expires_at = excluded.expires_at
WHERE handoff_idempotency.expires_at <= ? OR (handoff_idempotency.done = 0 AND handoff_idempotency.locked_until <= ?)
RETURNING token`), rec.Key, rec.Fingerprint, rec.Token, rec.LockedUntil.UnixMilli(), rec.ExpiresAt.UnixMilli(), now, now).Scan(&tok)
	if err == nil && tok == rec.Token {
		return nil, nil
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	old, err := s.get(ctx, s.db, rec.Key, false)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errReleased
	}
	return old, err
}

// claimMySQL locks the key's row first (FOR UPDATE, READ COMMITTED: no gap
// locks) and inserts only when there is none. Inserting first would take a
// shared lock on a duplicate and then need an exclusive one for the
// takeover: two claimers doing that deadlock.
func (s *IdempotencyStore) claimMySQL(ctx context.Context, rec idempotencystore.Record, now int64) (old *idempotencystore.Record, err error) {
	err = inTx(ctx, s.db, s.d, func(q Querier) error {
		old = nil
		cur, err := s.get(ctx, q, rec.Key, true)
		if errors.Is(err, sql.ErrNoRows) {
			n, err := q.Exec(ctx, `INSERT IGNORE INTO handoff_idempotency (idem_key, `+idemCols+`)
VALUES (?, ?, ?, 0, 0, '', NULL, ?, ?)`, rec.Key, rec.Fingerprint, rec.Token, rec.LockedUntil.UnixMilli(), rec.ExpiresAt.UnixMilli())
			if err == nil && n == 0 {
				return errReleased // inserted by another claimer meanwhile: look again
			}
			return err
		}
		if err != nil {
			return err
		}
		if cur.Live(time.UnixMilli(now)) {
			old = cur
			return nil
		}
		_, err = q.Exec(ctx, `UPDATE handoff_idempotency SET fingerprint = ?, token = ?, done = 0, status = 0, header = '', body = NULL,
  locked_until = ?, expires_at = ? WHERE idem_key = ?`, rec.Fingerprint, rec.Token, rec.LockedUntil.UnixMilli(), rec.ExpiresAt.UnixMilli(), rec.Key)
		return err
	})
	return old, err
}

func (s *IdempotencyStore) get(ctx context.Context, q Querier, key string, lock bool) (*idempotencystore.Record, error) {
	var (
		r            idempotencystore.Record
		done         int
		header       string
		locked, exps int64
	)
	stmt := `SELECT ` + idemCols + ` FROM handoff_idempotency WHERE idem_key = ?`
	if lock {
		stmt += ` FOR UPDATE`
	}
	err := q.QueryRow(ctx, s.d.q(stmt), key).Scan(&r.Fingerprint, &r.Token, &done, &r.Status, &header, &r.Body, &locked, &exps)
	if err != nil {
		return nil, err
	}
	r.Key = key
	r.Done = done != 0
	r.LockedUntil = time.UnixMilli(locked)
	r.ExpiresAt = time.UnixMilli(exps)
	if header != "" {
		if err := json.Unmarshal([]byte(header), &r.Header); err != nil {
			return nil, fmt.Errorf("decode stored header: %w", err)
		}
	}
	return &r, nil
}

// Complete implements idempotency.Store.
func (s *IdempotencyStore) Complete(ctx context.Context, rec idempotencystore.Record, _ time.Time) error {
	h := rec.Header
	if h == nil {
		h = map[string][]string{}
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("idempotency: complete %s: %w", rec.Key, err)
	}
	body := rec.Body
	if body == nil {
		body = []byte{}
	}
	n, err := s.db.Exec(ctx, s.d.q(`UPDATE handoff_idempotency SET done = 1, status = ?, header = ?, body = ?, expires_at = ?
WHERE idem_key = ? AND token = ? AND done = 0`), rec.Status, string(hj), body, rec.ExpiresAt.UnixMilli(), rec.Key, rec.Token)
	if err != nil {
		return fmt.Errorf("idempotency: complete %s: %w", rec.Key, err)
	}
	if n == 0 {
		return fmt.Errorf("idempotency: complete %s: %w", rec.Key, idempotencystore.ErrLockLost)
	}
	return nil
}

// Release implements idempotency.Store.
func (s *IdempotencyStore) Release(ctx context.Context, key, token string) error {
	if _, err := s.db.Exec(ctx, s.d.q(`DELETE FROM handoff_idempotency WHERE idem_key = ? AND token = ? AND done = 0`), key, token); err != nil {
		return fmt.Errorf("idempotency: release %s: %w", key, err)
	}
	return nil
}

// Purge deletes the records no longer live at now and returns how many; run
// it from time to time (expired records are also overwritten on reuse).
func (s *IdempotencyStore) Purge(ctx context.Context, now time.Time) (int64, error) {
	n := now.UnixMilli()
	k, err := s.db.Exec(ctx, s.d.q(`DELETE FROM handoff_idempotency WHERE expires_at <= ? OR (done = 0 AND locked_until <= ?)`), n, n)
	if err != nil {
		return 0, fmt.Errorf("idempotency: purge: %w", err)
	}
	return k, nil
}
