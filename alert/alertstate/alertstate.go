// Package alertstate is the record of which alerts are firing, shared by
// the processes that alert on one system (alert.WithState): the contract a
// store implements, with no dependency beyond the standard library, so
// that the adapters (memory, postgres, mysql, sqlite) implement it without
// linking package alert.
package alertstate

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Limits of a record's indexed fields, in bytes.
const (
	MaxKey       = 512
	MaxCondition = 255
)

// Record is one alert as the shared state holds it.
type Record struct {
	Key        string // the alert's dedup key
	Condition  string
	Subject    string
	Severity   string
	Summary    string
	Details    map[string]string
	FiredAt    time.Time // when the episode that is (or was last) firing started
	ResolvedAt time.Time // zero while firing
}

// Validate reports a record a store cannot hold, naming the field and the
// rule.
func (r *Record) Validate() error {
	switch {
	case r.Key == "":
		return errors.New("alertstate: Key: must not be empty")
	case len(r.Key) > MaxKey:
		return fmt.Errorf("alertstate: Key: %d bytes: must be at most %d", len(r.Key), MaxKey)
	case len(r.Condition) > MaxCondition:
		return fmt.Errorf("alertstate: Condition: %d bytes: must be at most %d", len(r.Condition), MaxCondition)
	case r.FiredAt.IsZero():
		return errors.New("alertstate: FiredAt: must be set")
	}
	return nil
}

// Store is the shared state of alerts. Each transition is atomic: of
// several processes firing (or resolving) one key at once, exactly one is
// told it changed the state, and that one notifies.
type Store interface {
	// Fire records r firing and reports true if its key was not firing
	// (never seen, or resolved): the caller notifies. It reports false if
	// the key is firing already (another process, or an earlier life of
	// this one, notified), and leaves the record as it is.
	Fire(ctx context.Context, r Record) (bool, error)
	// Resolve records the key resolved at at and reports true, with the
	// record, if it was firing: the caller notifies. Otherwise it reports
	// false.
	Resolve(ctx context.Context, key string, at time.Time) (Record, bool, error)
	// Firing returns the records of condition firing now, whichever
	// process fired them.
	Firing(ctx context.Context, condition string) ([]Record, error)
}
