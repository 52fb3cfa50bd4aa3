package redis_test

import (
	"net/http"

	goredis "github.com/redis/go-redis/v9"

	"github.com/handoffhq/handoff/adapter/redis"
	"github.com/handoffhq/handoff/idempotency"
)

// Idempotency-Key records in Redis, in front of one route (it needs a
// Redis server, so it is not run here).
func ExampleNewStore() {
	transfers := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })

	store, err := redis.NewStore(goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"}))
	if err != nil {
		panic(err)
	}
	mw, err := idempotency.New(store)
	if err != nil {
		panic(err)
	}
	http.Handle("/transfers", mw.Wrap(transfers))
}
