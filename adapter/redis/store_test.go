package redis_test

import (
	"context"
	"testing"

	"github.com/handoffhq/handoff/adapter/redis"
	"github.com/handoffhq/handoff/idempotency"
	"github.com/handoffhq/handoff/idempotency/idempotencytest"
	"github.com/handoffhq/handoff/internal/testenv"
	goredis "github.com/redis/go-redis/v9"
)

func TestStore(t *testing.T) {
	addr := testenv.RedisAddr(t)
	idempotencytest.Run(t, func(t testing.TB) idempotency.Store {
		t.Helper()
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		t.Cleanup(func() { c.Close() })
		prefix := testenv.Unique("handoff-test:") + ":"
		t.Cleanup(func() {
			ctx := context.Background() // t.Context is already cancelled here
			keys, _ := c.Keys(ctx, prefix+"*").Result()
			if len(keys) > 0 {
				c.Del(ctx, keys...)
			}
		})
		s, err := redis.NewStore(c, redis.WithPrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestNewStore_RejectsBadOptions(t *testing.T) {
	if _, err := redis.NewStore(nil); err == nil {
		t.Fatal("nil client accepted")
	}
	if _, err := redis.NewStore(goredis.NewClient(&goredis.Options{}), redis.WithPrefix("")); err == nil {
		t.Fatal("empty prefix accepted")
	}
}
