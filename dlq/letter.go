package dlq

import (
	"errors"
	"time"

	"github.com/handoffhq/handoff"
)

// Error classes: why a message was dead-lettered. The consumer runtime picks one.
const (
	ClassHandler     = "handler"      // the handler kept failing until the retries ran out
	ClassPermanent   = "permanent"    // the handler returned handoff.Permanent
	ClassPanic       = "panic"        // the handler panicked; Stack holds the trace
	ClassDecode      = "decode"       // the delivery could not be decoded into a message
	ClassInvalid     = "invalid"      // the message broke a CloudEvents or handoff rule
	ClassTooLarge    = "too-large"    // the message is over the size limit
	ClassUnknownType = "unknown-type" // no handler is registered for the message type
	ClassSchema      = "schema"       // the data does not match its schema
	ClassPublish     = "publish"      // publishing a message the handler produced failed
)

// Letter is one dead-lettered message with why and when it failed.
type Letter struct {
	ID           string           // dead-letter id: a UUIDv7 set by Queue.Add when empty
	Consumer     string           // consumer group name
	Topic        string           // the topic the message came from, and where Replay sends it
	Message      *handoff.Message // the full envelope: attributes, extensions, data
	Class        string           // one of the Class* constants
	Errors       []string         // the error chain, outermost first (see Chain)
	Stack        string           // for panics
	Attempts     int              // deliveries made before giving up
	FirstFailure time.Time
	LastFailure  time.Time
	ReplayedAt   time.Time // zero until replayed
	ReplayCount  int       // times this letter was replayed (0 or 1)
}

// Open reports whether l has not been replayed.
func (l *Letter) Open() bool { return l.ReplayedAt.IsZero() }

// Clone returns a deep copy of l.
func (l *Letter) Clone() *Letter {
	c := *l
	if l.Message != nil {
		c.Message = l.Message.Clone()
	}
	if l.Errors != nil {
		c.Errors = append([]string(nil), l.Errors...)
	}
	return &c
}

// State selects letters by whether they were replayed.
type State int

// States a [Filter] can select.
const (
	StateAny      State = iota // every letter
	StateOpen                  // letters not replayed yet
	StateReplayed              // letters already replayed
)

// Filter selects letters. Empty fields select everything. Letters are listed
// in id order, which for ids made by Queue.Add is the order they were added.
type Filter struct {
	Consumer string
	Topic    string
	Class    string
	State    State
	Since    time.Time // LastFailure at or after Since
	Until    time.Time // LastFailure before Until
	Limit    int       // at most this many letters; 0 means no limit
	After    string    // cursor: only letters with an id greater than After
}

// Match reports whether l passes every condition of f except Limit.
func (f Filter) Match(l *Letter) bool {
	switch {
	case f.Consumer != "" && l.Consumer != f.Consumer,
		f.Topic != "" && l.Topic != f.Topic,
		f.Class != "" && l.Class != f.Class,
		f.State == StateOpen && !l.Open(),
		f.State == StateReplayed && l.Open(),
		!f.Since.IsZero() && l.LastFailure.Before(f.Since),
		!f.Until.IsZero() && !l.LastFailure.Before(f.Until),
		f.After != "" && l.ID <= f.After:
		return false
	}
	return true
}

// Chain returns the messages of err and of each error it wraps, outermost
// first, following errors.Unwrap and Unwrap() []error depth first. A message
// equal to one already in the chain is left out (a wrapper such as
// handoff.Permanent repeats its cause's text), as is the message of a joined
// error, which only repeats its parts. Chain(nil) is nil.
func Chain(err error) []string {
	var out []string
	seen := make(map[string]bool)
	var walk func(e error, depth int)
	walk = func(e error, depth int) {
		if e == nil || depth > 32 || len(out) >= 64 {
			return
		}
		msg := e.Error()
		var kids []error
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			kids = u.Unwrap()
		case interface{ Unwrap() error }:
			if k := u.Unwrap(); k != nil {
				kids = []error{k}
			}
		}
		if !seen[msg] && !isJoinText(msg, kids) {
			seen[msg] = true
			out = append(out, msg)
		}
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	walk(err, 0)
	return out
}

// isJoinText reports whether msg is only its several parts joined by newlines,
// as errors.Join writes it.
func isJoinText(msg string, kids []error) bool {
	if len(kids) < 2 {
		return false
	}
	var b []byte
	for _, k := range kids {
		if k == nil {
			continue
		}
		if len(b) > 0 {
			b = append(b, '\n')
		}
		b = append(b, k.Error()...)
	}
	return string(b) == msg
}

// Errors returned by queues and stores.
var (
	ErrNotFound = errors.New("dlq: letter not found")
	// ErrAlreadyReplayed: the letter was replayed (or is being replayed, see
	// ErrReplayInProgress) and will not be published again.
	ErrAlreadyReplayed = errors.New("dlq: letter already replayed")
	// ErrReplayInProgress: another replay holds the letter's claim. It
	// matches ErrAlreadyReplayed with errors.Is.
	ErrReplayInProgress error = &sentinel{msg: "dlq: letter is being replayed", is: ErrAlreadyReplayed}
	// ErrClaimLost: a replay's claim expired and was taken over, or the
	// letter was deleted, before the replay could mark it replayed.
	ErrClaimLost = errors.New("dlq: replay claim lost")
	// ErrExists: Store.Add was given an id already stored.
	ErrExists = errors.New("dlq: letter id exists")
)

type sentinel struct {
	msg string
	is  error
}

func (s *sentinel) Error() string        { return s.msg }
func (s *sentinel) Is(target error) bool { return target == s.is }
