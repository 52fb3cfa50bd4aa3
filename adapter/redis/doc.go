// Package redis is the Redis implementation of [idempotency.Store], on
// go-redis v9. Each key is one Redis hash; a running record expires with its
// lock (so a key whose owner died frees itself), a completed one with its TTL.
// Expiry uses the Redis server's clock for durations the middleware computes.
//
//	store, err := redis.NewStore(goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"}))
//	mw, err := idempotency.New(store)
//	http.Handle("/transfers", mw.Wrap(transfers))
//
// Claim, Complete and Release are single Lua scripts, atomic on one Redis
// node or one cluster slot. With asynchronous replication a failover can lose
// a record written just before it; the key may then run twice.
package redis
