package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/handoffhq/handoff/idempotency"
	goredis "github.com/redis/go-redis/v9"
)

// ErrInvalidOption is returned by [NewStore] for an option that breaks its rule.
var ErrInvalidOption = errors.New("redis: invalid option")

// Store is an [idempotency.Store] in Redis.
type Store struct {
	c      goredis.UniversalClient
	prefix string
}

// Option configures a [Store].
type Option func(*Store) error

// WithPrefix sets the prefix of the Redis keys (default "handoff:idem:").
func WithPrefix(p string) Option {
	return func(s *Store) error {
		if p == "" {
			return fmt.Errorf("%w: WithPrefix: must not be empty", ErrInvalidOption)
		}
		s.prefix = p
		return nil
	}
}

// NewStore returns a store using c. It does not contact Redis.
func NewStore(c goredis.UniversalClient, opts ...Option) (*Store, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: client must not be nil", ErrInvalidOption)
	}
	s := &Store{c: c, prefix: "handoff:idem:"}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

var claimScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  local v = redis.call('HMGET', KEYS[1], 'fp', 'tok', 'done', 'code', 'hdr', 'body')
  v[7] = redis.call('PTTL', KEYS[1])
  return v
end
redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'tok', ARGV[2], 'done', '0', 'code', '0', 'hdr', '', 'body', '')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return false
`)

var completeScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'tok') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'done') ~= '0' then
  return 0
end
redis.call('HSET', KEYS[1], 'done', '1', 'code', ARGV[2], 'hdr', ARGV[3], 'body', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`)

var releaseScript = goredis.NewScript(`
if redis.call('HGET', KEYS[1], 'tok') == ARGV[1] and redis.call('HGET', KEYS[1], 'done') == '0' then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

func ms(d time.Duration) int64 {
	if m := d.Milliseconds(); m > 0 {
		return m
	}
	return 1
}

// Claim implements [idempotency.Store].
func (s *Store) Claim(ctx context.Context, rec idempotency.Record, now time.Time) (*idempotency.Record, error) {
	until := rec.LockedUntil
	if rec.ExpiresAt.Before(until) {
		until = rec.ExpiresAt
	}
	res, err := claimScript.Run(ctx, s.c, []string{s.prefix + rec.Key}, rec.Fingerprint, rec.Token, ms(until.Sub(now))).Slice()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redis: claim %s: %w", rec.Key, err)
	}
	if len(res) != 7 {
		return nil, fmt.Errorf("redis: claim %s: unexpected reply of %d values", rec.Key, len(res))
	}
	str := func(i int) string { v, _ := res[i].(string); return v }
	old := &idempotency.Record{Key: rec.Key, Fingerprint: str(0), Token: str(1), Done: str(2) == "1"}
	old.Status, _ = strconv.Atoi(str(3))
	if h := str(4); h != "" {
		if err := json.Unmarshal([]byte(h), &old.Header); err != nil {
			return nil, fmt.Errorf("redis: claim %s: decode stored header: %w", rec.Key, err)
		}
	}
	old.Body = []byte(str(5))
	if pttl, ok := res[6].(int64); ok && pttl > 0 {
		exp := now.Add(time.Duration(pttl) * time.Millisecond)
		old.ExpiresAt = exp
		if !old.Done {
			old.LockedUntil = exp
		}
	}
	return old, nil
}

// Complete implements [idempotency.Store].
func (s *Store) Complete(ctx context.Context, rec idempotency.Record, now time.Time) error {
	h := rec.Header
	if h == nil {
		h = http.Header{}
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("redis: complete %s: %w", rec.Key, err)
	}
	n, err := completeScript.Run(ctx, s.c, []string{s.prefix + rec.Key}, rec.Token, rec.Status, string(hj), rec.Body, ms(rec.ExpiresAt.Sub(now))).Int()
	if err != nil {
		return fmt.Errorf("redis: complete %s: %w", rec.Key, err)
	}
	if n == 0 {
		return fmt.Errorf("redis: complete %s: %w", rec.Key, idempotency.ErrLockLost)
	}
	return nil
}

// Release implements [idempotency.Store].
func (s *Store) Release(ctx context.Context, key, token string) error {
	if err := releaseScript.Run(ctx, s.c, []string{s.prefix + key}, token).Err(); err != nil {
		return fmt.Errorf("redis: release %s: %w", key, err)
	}
	return nil
}
