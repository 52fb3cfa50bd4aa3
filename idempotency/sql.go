package idempotency

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"
)

// Dialect is the little SQL that differs between databases. Use [PostgreSQL]
// or [SQLite]; the store imports no driver, so register one yourself (pgx's
// stdlib, modernc.org/sqlite).
type Dialect struct {
	name        string
	placeholder func(n int) string
	blob        string
}

// The supported dialects.
var (
	PostgreSQL = Dialect{name: "postgres", placeholder: func(n int) string { return "$" + strconv.Itoa(n) }, blob: "BYTEA"}
	SQLite     = Dialect{name: "sqlite", placeholder: func(int) string { return "?" }, blob: "BLOB"}
)

// String returns the dialect's name.
func (d Dialect) String() string { return d.name }

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// SQLStore is a [Store] in a PostgreSQL or SQLite table, reached through
// database/sql. Times are stored as Unix milliseconds from the middleware's
// clock, so the database clock plays no part.
type SQLStore struct {
	db    *sql.DB
	d     Dialect
	table string

	qClaim, qGet, qComplete, qRelease, qPurge string
}

// SQLOption configures a [SQLStore].
type SQLOption func(*SQLStore) error

// WithTable sets the table name (default handoff_idempotency).
func WithTable(name string) SQLOption {
	return func(s *SQLStore) error {
		if !tableName.MatchString(name) {
			return fmt.Errorf("%w: WithTable: must match %s, got %q", ErrInvalidOption, tableName, name)
		}
		s.table = name
		return nil
	}
}

// NewSQLStore returns a store on db. Call [SQLStore.Migrate] once to create
// its table.
func NewSQLStore(db *sql.DB, d Dialect, opts ...SQLOption) (*SQLStore, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: db must not be nil", ErrInvalidOption)
	}
	if d.placeholder == nil {
		return nil, fmt.Errorf("%w: dialect must be PostgreSQL or SQLite", ErrInvalidOption)
	}
	s := &SQLStore{db: db, d: d, table: "handoff_idempotency"}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	p := d.placeholder
	t := s.table
	// One statement claims a free, expired or abandoned key atomically: the
	// upsert only overwrites a row that is no longer live, and RETURNING
	// tells whether this token won.
	s.qClaim = fmt.Sprintf(`INSERT INTO %[1]s (idem_key, fingerprint, token, done, status, header, body, locked_until, expires_at)
VALUES (%[2]s, %[3]s, %[4]s, 0, 0, '', NULL, %[5]s, %[6]s)
ON CONFLICT (idem_key) DO UPDATE SET fingerprint = excluded.fingerprint, token = excluded.token, done = 0, status = 0,
  header = '', body = NULL, locked_until = excluded.locked_until, expires_at = excluded.expires_at
WHERE %[1]s.expires_at <= %[7]s OR (%[1]s.done = 0 AND %[1]s.locked_until <= %[8]s)
RETURNING token`, t, p(1), p(2), p(3), p(4), p(5), p(6), p(7))
	s.qGet = fmt.Sprintf(`SELECT fingerprint, token, done, status, header, body, locked_until, expires_at FROM %s WHERE idem_key = %s`, t, p(1))
	s.qComplete = fmt.Sprintf(`UPDATE %s SET done = 1, status = %s, header = %s, body = %s, expires_at = %s WHERE idem_key = %s AND token = %s AND done = 0`,
		t, p(1), p(2), p(3), p(4), p(5), p(6))
	s.qRelease = fmt.Sprintf(`DELETE FROM %s WHERE idem_key = %s AND token = %s AND done = 0`, t, p(1), p(2))
	s.qPurge = fmt.Sprintf(`DELETE FROM %[1]s WHERE expires_at <= %[2]s OR (done = 0 AND locked_until <= %[3]s)`, t, p(1), p(2))
	return s, nil
}

// Migrate creates the table if it does not exist.
func (s *SQLStore) Migrate(ctx context.Context) error {
	q := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
  idem_key     TEXT PRIMARY KEY,
  fingerprint  TEXT NOT NULL,
  token        TEXT NOT NULL,
  done         INTEGER NOT NULL,
  status       INTEGER NOT NULL,
  header       TEXT NOT NULL,
  body         %s,
  locked_until BIGINT NOT NULL,
  expires_at   BIGINT NOT NULL
)`, s.table, s.d.blob)
	if _, err := s.db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("idempotency: migrate %s: %w", s.table, err)
	}
	return nil
}

// Claim implements [Store].
func (s *SQLStore) Claim(ctx context.Context, rec Record, now time.Time) (*Record, error) {
	n := now.UnixMilli()
	for range 3 {
		var tok string
		err := s.db.QueryRowContext(ctx, s.qClaim, rec.Key, rec.Fingerprint, rec.Token,
			rec.LockedUntil.UnixMilli(), rec.ExpiresAt.UnixMilli(), n, n).Scan(&tok)
		if err == nil && tok == rec.Token {
			return nil, nil
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("idempotency: claim %s: %w", rec.Key, err)
		}
		old, err := s.get(ctx, rec.Key)
		if errors.Is(err, sql.ErrNoRows) {
			continue // released between the two statements: try again
		}
		if err != nil {
			return nil, fmt.Errorf("idempotency: claim %s: %w", rec.Key, err)
		}
		return old, nil
	}
	return nil, fmt.Errorf("idempotency: claim %s: key keeps changing", rec.Key)
}

func (s *SQLStore) get(ctx context.Context, key string) (*Record, error) {
	var (
		r            Record
		done         int
		header       string
		locked, exps int64
	)
	err := s.db.QueryRowContext(ctx, s.qGet, key).Scan(&r.Fingerprint, &r.Token, &done, &r.Status, &header, &r.Body, &locked, &exps)
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

// Complete implements [Store].
func (s *SQLStore) Complete(ctx context.Context, rec Record, _ time.Time) error {
	h := rec.Header
	if h == nil {
		h = http.Header{}
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("idempotency: complete %s: %w", rec.Key, err)
	}
	body := rec.Body
	if body == nil {
		body = []byte{}
	}
	res, err := s.db.ExecContext(ctx, s.qComplete, rec.Status, string(hj), body, rec.ExpiresAt.UnixMilli(), rec.Key, rec.Token)
	if err != nil {
		return fmt.Errorf("idempotency: complete %s: %w", rec.Key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("idempotency: complete %s: %w", rec.Key, err)
	}
	if n == 0 {
		return fmt.Errorf("idempotency: complete %s: %w", rec.Key, ErrLockLost)
	}
	return nil
}

// Release implements [Store].
func (s *SQLStore) Release(ctx context.Context, key, token string) error {
	if _, err := s.db.ExecContext(ctx, s.qRelease, key, token); err != nil {
		return fmt.Errorf("idempotency: release %s: %w", key, err)
	}
	return nil
}

// Purge deletes the records no longer live at now and returns how many; run
// it from time to time (expired records are also overwritten on reuse).
func (s *SQLStore) Purge(ctx context.Context, now time.Time) (int64, error) {
	n := now.UnixMilli()
	res, err := s.db.ExecContext(ctx, s.qPurge, n, n)
	if err != nil {
		return 0, fmt.Errorf("idempotency: purge: %w", err)
	}
	return res.RowsAffected()
}
