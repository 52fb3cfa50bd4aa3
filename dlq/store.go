package dlq

import (
	"context"
	"time"

	"github.com/handoffhq/handoff"
)

// Store keeps dead letters. Implementations must be safe for concurrent use
// by several processes sharing the store (the SQL ones) or goroutines (the
// in-memory one); handofftest.RunDLQStore checks them. Times are passed in by
// the caller, so stores never read a clock of their own.
type Store interface {
	// Add stores l, whose ID is set, and reports whether l is the first
	// open letter of its consumer: whether the consumer had no open letter
	// just before. Adds, replays and deletes of one consumer's letters are
	// serialised for that decision, so of several concurrent Adds to a
	// consumer with no open letter exactly one reports first. An id already
	// stored gives ErrExists.
	Add(ctx context.Context, l *Letter) (first bool, err error)
	// Get returns the letter, or ErrNotFound.
	Get(ctx context.Context, id string) (*Letter, error)
	// List returns the letters f selects, in id order.
	List(ctx context.Context, f Filter) ([]*Letter, error)
	// UpdateMessage replaces the letter's message. It gives ErrNotFound,
	// ErrAlreadyReplayed for a replayed letter, and ErrReplayInProgress
	// while a claim newer than now holds it.
	UpdateMessage(ctx context.Context, id string, msg *handoff.Message, now time.Time) error
	// Claim takes the letter for replay with token until the lease ends at
	// until, as one compare-and-set: it succeeds only if the letter is open
	// and holds no claim that is still valid at now. It returns the letter
	// as claimed, or ErrNotFound, ErrAlreadyReplayed or ErrReplayInProgress.
	Claim(ctx context.Context, id, token string, now, until time.Time) (*Letter, error)
	// Release drops the claim made with token, so the letter can be
	// replayed again. A claim no longer held with token is left alone.
	Release(ctx context.Context, id, token string) error
	// MarkReplayed records that the claim made with token was published:
	// the letter gets ReplayedAt = at, its ReplayCount goes up by one and
	// the claim is dropped. It gives ErrClaimLost when the letter no longer
	// holds that claim.
	MarkReplayed(ctx context.Context, id, token string, at time.Time) error
	// Delete removes the letter, or gives ErrNotFound.
	Delete(ctx context.Context, id string) error
	// Purge removes the letters f selects (at most f.Limit when positive)
	// and returns how many it removed.
	Purge(ctx context.Context, f Filter) (int, error)
}
