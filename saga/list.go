package saga

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Listing limits.
const (
	DefaultListLimit = 100  // sagas per page when a ListFilter names no limit
	MaxListLimit     = 1000 // the most sagas one page holds
)

// ListFilter selects the sagas [Coordinator.List] returns, newest first
// (by creation time, then id). Zero fields select everything; time bounds
// are After ≤ t < Before.
type ListFilter struct {
	Status        Status
	Name          string
	CorrelationID string
	CreatedAfter  time.Time
	CreatedBefore time.Time
	UpdatedAfter  time.Time
	UpdatedBefore time.Time
	// Limit is the page size: 0 is DefaultListLimit, at most MaxListLimit.
	Limit int
	// Cursor is the previous page's Page.Next: this page starts after it.
	Cursor string
}

// Validate checks f's fields; an error names the field and the rule.
func (f *ListFilter) Validate() error {
	switch f.Status {
	case "", Running, Compensating, Completed, Compensated, Stuck, Aborted:
	default:
		return fmt.Errorf("saga: status: %q must be one of %s", f.Status, strings.Join(statusNames(), ", "))
	}
	if f.Limit < 0 || f.Limit > MaxListLimit {
		return fmt.Errorf("saga: limit: %d must be between 0 (the default, %d) and %d", f.Limit, DefaultListLimit, MaxListLimit)
	}
	if f.Cursor != "" {
		if _, err := ParseCursor(f.Cursor); err != nil {
			return err
		}
	}
	return nil
}

// Statuses lists every Status, in the order a saga may pass them.
var Statuses = []Status{Running, Compensating, Stuck, Completed, Compensated, Aborted}

func statusNames() []string {
	out := make([]string, len(Statuses))
	for i, s := range Statuses {
		out[i] = string(s)
	}
	return out
}

// Cursor is a position in a listing: the creation time and id of the last
// saga of a page. Its String form is opaque to clients.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// String encodes c (URL-safe).
func (c Cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + ":" + c.ID))
}

// ErrBadCursor is returned for a cursor that no page gave.
var ErrBadCursor = errors.New("saga: cursor: not one a page gave (pass the previous page's next, unchanged)")

// ParseCursor decodes a cursor made by Cursor.String.
func ParseCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, ErrBadCursor
	}
	us, id, ok := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || id == "" {
		return Cursor{}, ErrBadCursor
	}
	return Cursor{CreatedAt: time.UnixMicro(n).UTC(), ID: id}, nil
}

// Lister is a Store that lists instances and counts them by status (the
// SQL stores of adapter/postgres, adapter/sqlite and adapter/mysql do).
type Lister interface {
	// List returns up to f.Limit (> 0) summaries f selects, newest first
	// (created_at, then id, descending), after f.Cursor. It reads through
	// an index and never more rows than the page needs beyond those the
	// filters skip.
	List(ctx context.Context, f ListFilter) ([]Summary, error)
	// Counts returns how many sagas are in each status (statuses with none
	// are left out).
	Counts(ctx context.Context) (map[Status]int, error)
}

// Page is one page of a listing.
type Page struct {
	Sagas []Summary `json:"sagas"`
	// Next is the cursor of the next page; "" on the last.
	Next string `json:"next,omitempty"`
}

// ErrNoList is returned by List and Counts when the coordinator's store is
// not a [Lister].
var ErrNoList = errors.New("saga: the store cannot list sagas (it is not a saga.Lister)")

// List returns a page of the sagas f selects, newest first. Pass the page's
// Next as the next filter's Cursor (with the same filters) for the page
// after; a saga created meanwhile appears on no later page.
func (c *Coordinator) List(ctx context.Context, f ListFilter) (*Page, error) {
	l, ok := c.store.(Lister)
	if !ok {
		return nil, ErrNoList
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if f.Limit == 0 {
		f.Limit = DefaultListLimit
	}
	ss, err := l.List(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("saga: list: %w", err)
	}
	p := &Page{Sagas: ss}
	if p.Sagas == nil {
		p.Sagas = []Summary{}
	}
	if len(ss) == f.Limit {
		last := ss[len(ss)-1]
		p.Next = Cursor{CreatedAt: last.CreatedAt, ID: last.ID}.String()
	}
	return p, nil
}

// Counts returns how many sagas are in each status.
func (c *Coordinator) Counts(ctx context.Context) (map[Status]int, error) {
	l, ok := c.store.(Lister)
	if !ok {
		return nil, ErrNoList
	}
	m, err := l.Counts(ctx)
	if err != nil {
		return nil, fmt.Errorf("saga: counts: %w", err)
	}
	return m, nil
}

// Detail is a saga with its timeline, as GET /sagas/{id} (Handler) and
// `handoff saga show --json` give it: the summary's keys, then the
// instance's state and its history. Keys are snake_case; unset times are
// left out.
type Detail struct {
	Summary
	StepIndex  int             `json:"step_index"`
	Steps      []StepDetail    `json:"steps"`
	Data       json.RawMessage `json:"data"`
	DueAt      time.Time       `json:"due_at,omitzero"`
	Deadline   time.Time       `json:"deadline,omitzero"`
	LeaseOwner string          `json:"lease_owner,omitempty"`
	LeaseUntil time.Time       `json:"lease_until,omitzero"`
	Epoch      int64           `json:"epoch"`
	Timeline   []Event         `json:"timeline"`
}

// StepDetail is one step's progress in a Detail.
type StepDetail struct {
	Name         string `json:"name"`
	State        string `json:"state"`
	Attempts     int    `json:"attempts"`
	Error        string `json:"error,omitempty"`
	Compensation string `json:"compensation,omitempty"` // "", running, waiting, done or skipped
	CompAttempts int    `json:"compensation_attempts,omitzero"`
}

// Detail returns saga id with its timeline (History); ErrNotFound when
// there is none.
func (c *Coordinator) Detail(ctx context.Context, id string) (*Detail, error) {
	in, err := c.store.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("saga: %s: %w", id, err)
	}
	h, err := c.store.History(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("saga: history %s: %w", id, err)
	}
	d := &Detail{
		Summary: Summary{ID: in.ID, Name: in.Name, Version: in.Version, CorrelationID: in.CorrelationID, Status: in.Status,
			Error: in.Error, CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt, EndedAt: in.EndedAt},
		StepIndex: in.Step, Steps: make([]StepDetail, len(in.Steps)), Data: in.Data, DueAt: in.DueAt, Deadline: in.Deadline,
		LeaseOwner: in.LeaseOwner, LeaseUntil: in.LeaseUntil, Epoch: in.Epoch, Timeline: h,
	}
	if in.Step >= 0 && in.Step < len(in.Steps) {
		d.Step = in.Steps[in.Step].Name
	}
	for i, s := range in.Steps {
		d.Steps[i] = StepDetail{Name: s.Name, State: s.State, Attempts: s.Attempts, Error: s.Error, Compensation: s.Comp, CompAttempts: s.CompAttempts}
	}
	if d.Timeline == nil {
		d.Timeline = []Event{}
	}
	if len(d.Data) == 0 {
		d.Data = json.RawMessage("null")
	}
	return d, nil
}

// NotStuckError is the error of Retry, Skip or Abort on a saga that is not
// Stuck; it matches ErrNotStuck.
type NotStuckError struct {
	ID     string
	Status Status
	Op     string // "retried", "skipped" or "aborted"
}

func (e *NotStuckError) Error() string {
	return fmt.Sprintf("saga: saga %s is %s, not stuck: only stuck sagas can be %s", e.ID, e.Status, e.Op)
}

// Is reports whether target is ErrNotStuck.
func (e *NotStuckError) Is(target error) bool { return target == ErrNotStuck }
