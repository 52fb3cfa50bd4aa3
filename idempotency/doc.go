// Package idempotency makes a retried HTTP request do its work once: the
// server side of the Idempotency-Key header (IETF draft "The Idempotency-Key
// HTTP Header Field").
//
//	store := postgres.IdempotencyStore(db) // after postgres.Migrate; or sqlite, mysql, adapter/redis, MemoryStore
//	mw, _ := idempotency.New(store, idempotency.WithWait(5*time.Second))
//	mux.Handle("POST /transfers", mw.Wrap(transfers))
//
// The first request with a key runs and its response (status, headers,
// body) is stored; a repeat with the same key and the same request gets the
// stored response replayed, marked "Idempotent-Replayed: true". The request
// is identified by a SHA-256 fingerprint of method, path with query, and
// body. The status codes follow the draft:
//
//   - 400 Bad Request: the key is malformed, or missing where [WithRequired].
//   - 409 Conflict: the first request with the key is still running (after
//     waiting up to [WithWait]); Retry-After says when to try again.
//   - 422 Unprocessable Content: the key was used with a different request.
//   - 413 Content Too Large: the body exceeds [WithMaxBody].
//   - 503 Service Unavailable: the store cannot be reached (fail closed:
//     running the request unguarded could do it twice).
//
// Responses with status 5xx are not stored: the key is released so the
// client can retry a failure that may be transient. The same holds when the
// handler panics. Keys are scoped per client with [WithScope].
//
// # Crash safety
//
// A running record carries a lock that lapses after [WithLockTTL]: if the
// process running the first request dies, a later repeat takes the key over
// and runs. A completed record lives for [WithTTL]. Each claim has a random
// token, so a presumed-dead owner that finishes late cannot overwrite its
// successor's response ([ErrLockLost]). Set the lock TTL above the longest
// a handler may run: a handler outliving its lock can run twice.
//
// # What it does not do
//
// It does not make the handler's own effects atomic with storing the
// response: a crash between the two re-runs the request after the lock TTL.
// For effects in the same database, write them and complete the key in one
// transaction of your own, or make the handler itself idempotent. The SQL
// stores live in the adapters, their table in the adapters' migrations; they
// use times from the middleware's clock and delete expired records when
// asked ([Purger]).
package idempotency
