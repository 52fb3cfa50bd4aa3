package saga

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"
)

// Step states, in StepState.State.
const (
	StepPending  = "pending"  // not started
	StepRunning  = "running"  // a Call started (its effect may have happened)
	StepWaiting  = "waiting"  // a Command was sent; its reply is awaited
	StepDone     = "done"     // succeeded
	StepFailed   = "failed"   // failed with no effect (nothing to compensate)
	StepTimedOut = "timedout" // given up without an answer: the effect may have happened
)

// StepState is one step's progress in an instance.
type StepState struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Attempts int    `json:"attempts,omitempty"`
	Gen      int    `json:"gen"`
	Error    string `json:"error,omitempty"`
	// Compensation: "", then running/waiting, then done or skipped.
	Comp         string `json:"comp,omitempty"`
	CompAttempts int    `json:"compAttempts,omitempty"`
	// Due is a Parallel branch's own timer (Unix microseconds; 0: none): its
	// retry delay or reply timeout. The instance's DueAt is the earliest.
	Due int64 `json:"due,omitempty"`
}

// needsUndo reports whether the step's effect may exist.
func (s *StepState) needsUndo() bool {
	switch s.State {
	case StepDone, StepRunning, StepWaiting, StepTimedOut:
		return true
	}
	return false
}

// Instance is one saga as stored.
type Instance struct {
	ID            string
	Name          string
	Version       string
	CorrelationID string
	Status        Status
	// Step is the index of the step being done (Running) or undone
	// (Compensating).
	Step  int
	Steps []StepState
	Data  json.RawMessage
	// DueAt is the instance's durable timer: when a coordinator must look
	// at it next (a retry delay, a reply's timeout, the saga's deadline, a
	// pending alert). Zero: nothing to do until a reply or an operator.
	DueAt    time.Time
	Deadline time.Time
	// LeaseOwner holds the instance until LeaseUntil; Epoch counts the
	// changes of owner.
	LeaseOwner string
	LeaseUntil time.Time
	Epoch      int64
	// Events is the number of history events recorded.
	Events    int
	Error     string
	CreatedAt time.Time
	UpdatedAt time.Time
	EndedAt   time.Time
}

// Event kinds in the history.
const (
	EvStarted        = "started"
	EvStepDone       = "step.done"
	EvStepFailed     = "step.failed" // one failed attempt (Error); retried unless followed by step.gaveup
	EvStepGaveUp     = "step.gaveup"
	EvStepStarted    = "step.started" // a Call is about to run
	EvCommandSent    = "command.sent"
	EvReplyLate      = "reply.late"
	EvStepTimedOut   = "step.timedout"
	EvDeadline       = "deadline"
	EvCompensating   = "compensating"
	EvCompDone       = "compensation.done"
	EvCompFailed     = "compensation.failed"
	EvCompSent       = "compensation.sent"
	EvCompensated    = "compensated"
	EvCompleted      = "completed"
	EvStuck          = "stuck"
	EvAlerted        = "alerted"
	EvOperatorRetry  = "operator.retry"
	EvOperatorSkip   = "operator.skip"
	EvOperatorAbort  = "operator.abort"
	EvLeaseTakenOver = "lease.takeover"
)

// Event is one entry of a saga's timeline. Its JSON (the HTTP API's and
// the CLI's --json) has snake_case keys; the duration is in nanoseconds.
type Event struct {
	SagaID   string        `json:"saga_id"`
	Seq      int           `json:"seq"`
	At       time.Time     `json:"at"`
	Kind     string        `json:"kind"`
	Step     string        `json:"step,omitempty"`
	Attempt  int           `json:"attempt,omitzero"`
	Gen      int           `json:"gen"`
	Duration time.Duration `json:"duration_ns,omitzero"`
	Error    string        `json:"error,omitempty"`
	// Owner and Epoch name the coordinator that made the transition (""
	// for a reply handler or an operator) and its lease.
	Owner string `json:"owner,omitempty"`
	Epoch int64  `json:"epoch,omitzero"`
}

// Summary is an instance in a listing. Step is the name of the step being
// done or undone ("" once the saga ended); Error is the instance's last
// error (a stuck saga's failing compensation).
type Summary struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Version       string    `json:"version"`
	CorrelationID string    `json:"correlation_id"`
	Status        Status    `json:"status"`
	Step          string    `json:"step"`
	Error         string    `json:"error,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	EndedAt       time.Time `json:"ended_at,omitzero"`
}

// InFlight is a group of unfinished instances of one saga version at one
// step, for the definition check.
type InFlight struct {
	Name, Version, Step string
	Count               int
	IDs                 []string // up to 10
}

// Store keeps instances and their history in the database the outbox
// lives in; adapter/postgres, adapter/sqlite (and adapter/mysql) have one
// (SagaStore). Methods that take a tx run in it; the others run on their
// own.
type Store interface {
	// DB is the database the coordinator begins its transactions on.
	DB() *sql.DB
	// Create inserts in.
	Create(ctx context.Context, tx *sql.Tx, in *Instance) error
	// Lock reads instance id in tx and holds its row until tx ends;
	// ErrNotFound when there is none.
	Lock(ctx context.Context, tx *sql.Tx, id string) (*Instance, error)
	// Save writes in's mutable fields.
	Save(ctx context.Context, tx *sql.Tx, in *Instance) error
	// Record appends events to the history.
	Record(ctx context.Context, tx *sql.Tx, events []Event) error
	// Claim leases to owner, until now+lease, up to limit instances whose
	// timer is due at now and whose lease is free, expired or owner's
	// already; it returns their ids. An instance claimed from another
	// owner gets its Epoch increased. It must not scan instances that are
	// not due (an index on the due time).
	// Only sagas named in names are claimed.
	Claim(ctx context.Context, names []string, owner string, now time.Time, lease time.Duration, limit int) ([]string, error)
	// Release gives up owner's leases on ids.
	Release(ctx context.Context, owner string, ids []string) error
	// Get reads an instance.
	Get(ctx context.Context, id string) (*Instance, error)
	// History returns the events of saga id in order.
	History(ctx context.Context, id string) ([]Event, error)
	// ByCorrelation lists the instances with the correlation id.
	ByCorrelation(ctx context.Context, correlationID string) ([]Summary, error)
	// InFlight groups the unfinished instances of saga name by version and
	// step.
	InFlight(ctx context.Context, name string) ([]InFlight, error)
	// Purge deletes up to limit instances that ended before before, with
	// their history, and returns how many.
	Purge(ctx context.Context, before time.Time, limit int) (int, error)
	// IsConflict reports a transaction conflict (deadlock, serialization
	// failure, busy database): running the transaction again may succeed.
	IsConflict(err error) bool
}
