package relay

import (
	"context"
	"time"

	"github.com/handoffhq/handoff/outbox"
)

// Store is the relay's view of the outbox table and its partition leases.
// adapter/postgres, adapter/sqlite and adapter/mysql implement it.
type Store interface {
	// Partitions returns the outbox's partition count; when none is
	// recorded yet it records n (the relay passes tx nil) and returns it.
	// It is outbox.Store's method, so one store value serves both.
	Partitions(ctx context.Context, tx outbox.Execer, n int) (stored int, inTx bool, err error)
	// Claim records owner as a live relay for ttl, renews owner's leases,
	// and claims free or expired partitions (of 0..total-1) until owner
	// holds want of them, if there are enough. Leases last ttl, timed by the
	// database clock. It returns the partitions owner holds afterwards, and
	// how many relays are live (owner included), so relays can share the
	// partitions fairly.
	Claim(ctx context.Context, owner string, want, total int, ttl time.Duration) (held []int, owners int, err error)
	// Release gives up owner's leases on partitions.
	Release(ctx context.Context, owner string, partitions []int) error
	// Leave gives up every lease of owner and its registration as a live
	// relay, so that the relays left (or a new one) claim its partitions
	// and count their shares at once.
	Leave(ctx context.Context, owner string) error
	// Fetch returns up to limit pending rows of the partitions (nil: of
	// every partition), by id, leaving out every row of a key held by a
	// failed row: one whose dead letter (the letter of consumer
	// dlq.RelayConsumer for its message id) is open in the store's
	// database. A failed row whose letter was replayed, purged or deleted
	// holds nothing, and the store removes it.
	Fetch(ctx context.Context, partitions []int, limit int) ([]outbox.Row, error)
	// Delete removes published rows, only in partitions owner still
	// leases (a relay that lost its lease must not delete what the new
	// owner will publish). It returns how many rows it removed.
	Delete(ctx context.Context, owner string, ids []int64) (int, error)
	// Fail marks a row as refused for good: it stays, and holds back later
	// rows of its key while its dead letter is open (see Fetch).
	Fail(ctx context.Context, id int64, reason string) error
	// Stats returns the number of pending rows, the creation time of the
	// oldest (zero when none) and the number of failed rows holding their
	// keys.
	Stats(ctx context.Context) (Stats, error)
}

// Stats is a sample of the outbox's state.
type Stats struct {
	Pending int       // rows waiting to be published (held rows included)
	Oldest  time.Time // creation time of the oldest pending row; zero when none
	Held    int       // failed rows whose open dead letter holds their key
}
