package saga

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/internal/backoff"
)

// Run is what an action or a compensation sees of its saga: the ids, the
// step, the idempotency key of this step's effect, and the typed data. An
// action may change Data; the change is stored with the step's outcome.
type Run[T any] struct {
	SagaID        string
	CorrelationID string
	Step          string
	// Attempt counts this step's attempts, from 1.
	Attempt int
	// Key is the idempotency key of this step's effect (saga id, step,
	// generation; compensations have their own): the same on every attempt
	// and after a crash, so an effect keyed by it happens once.
	Key  string
	Data T
}

type actionKind int

const (
	kindLocal actionKind = iota + 1
	kindCommand
	kindCall
)

func (k actionKind) String() string {
	switch k {
	case kindLocal:
		return "local"
	case kindCommand:
		return "command"
	case kindCall:
		return "call"
	}
	return "none"
}

// Action is what a step does, or undoes: [Local], [Command], [Call] or [HTTP].
type Action[T any] struct {
	kind    actionKind
	local   func(ctx context.Context, tx *sql.Tx, r *Run[T]) error
	topic   string
	build   func(r *Run[T]) (*handoff.Message, error)
	onReply func(ctx context.Context, tx *sql.Tx, r *Run[T], reply *handoff.Message) error
	call    func(ctx context.Context, r *Run[T]) error
}

// Local is an action run inside the coordinator's database transaction:
// its writes through tx commit together with the saga's new state, or not
// at all. Return handoff.Permanent(err) to fail the step at once; any other
// error is retried by the step's Retry policy.
func Local[T any](fn func(ctx context.Context, tx *sql.Tx, r *Run[T]) error) Action[T] {
	return Action[T]{kind: kindLocal, local: fn}
}

// Command is an action that sends a message to topic through the outbox,
// in the transaction that records the step as sent, and waits for the
// reply (see [Reply]) that the coordinator's [Coordinator.HandleReply]
// receives through an inbox. build makes the message; the coordinator sets
// its correlation id, the saga extensions and the idempotency key. onReply
// (may be nil) runs in the inbox's transaction when a successful reply
// arrives, and may change r.Data. A reply that reports a failure fails the
// step with no effect to compensate; no reply within the step's Timeout is
// retried by sending the command again with the same key, and after the
// last attempt counts as an effect that may have happened (it is
// compensated).
func Command[T any](topic string, build func(r *Run[T]) (*handoff.Message, error),
	onReply func(ctx context.Context, tx *sql.Tx, r *Run[T], reply *handoff.Message) error) Action[T] {
	return Action[T]{kind: kindCommand, topic: topic, build: build, onReply: onReply}
}

// Call is an action run outside any transaction (a remote call): the step is
// recorded as started before it runs, and its outcome (and the change to
// r.Data) after. After a crash it runs again with the same r.Key, so the
// remote side must deduplicate by it. An error is retried by the step's
// Retry policy; handoff.Permanent(err) fails the step at once, and a step
// that failed this way after it started is compensated (the remote effect
// may have happened).
func Call[T any](fn func(ctx context.Context, r *Run[T]) error) Action[T] {
	return Action[T]{kind: kindCall, call: fn}
}

// HTTP is a [Call] that sends the request build makes through client (a
// resiliencehttp transport's, for retries, breakers and deadlines) with the
// header Idempotency-Key set to the step's key, and hands a 2xx response to
// onResp (may be nil). A 4xx other than 408 and 429 fails the step for good;
// any other status or transport error is retried by the step's policy.
func HTTP[T any](client *http.Client, build func(ctx context.Context, r *Run[T]) (*http.Request, error),
	onResp func(r *Run[T], resp *http.Response) error) Action[T] {
	if client == nil {
		client = http.DefaultClient
	}
	return Call(func(ctx context.Context, r *Run[T]) error {
		req, err := build(ctx, r)
		if err != nil {
			return handoff.Permanent(fmt.Errorf("build request: %w", err))
		}
		req.Header.Set("Idempotency-Key", r.Key)
		resp, err := client.Do(req.WithContext(ctx))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			err := fmt.Errorf("%s %s: %s", req.Method, req.URL.Redacted(), resp.Status)
			if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != 408 && resp.StatusCode != 429 {
				return handoff.Permanent(err)
			}
			return err
		}
		if onResp != nil {
			return onResp(r, resp)
		}
		return nil
	})
}

// Retry is a step's retry policy: how many attempts, and the delay between
// them, kept as a durable timer (a crash does not shorten or forget it).
// The zero value makes 3 attempts with Backoff's defaults (100ms doubling
// up to 30s, with jitter).
type Retry struct {
	MaxAttempts int // 0: 3
	Backoff     Backoff
}

func (r Retry) max(def int) int {
	if r.MaxAttempts <= 0 {
		return def
	}
	return r.MaxAttempts
}

// Step is one step of a saga: an action, and the compensation that undoes
// it when a later step fails for good.
type Step[T any] struct {
	Name       string
	Action     Action[T]
	Compensate Action[T] // zero: nothing to undo
	// Retry is the action's policy (default 3 attempts).
	Retry Retry
	// CompensateRetry is the compensation's (default 20 attempts); when it
	// is spent the saga is Stuck and the Alerter is told.
	CompensateRetry Retry
	// Timeout is how long a Command waits for its reply before sending it
	// again (default 1 minute), and bounds each Call attempt.
	Timeout time.Duration

	branches []Step[T] // a Parallel step's
}

// Parallel returns a fork/join step named name: its branches (two or
// more steps, none of them parallel) run side by side, and the saga goes
// on past it when every branch succeeded. Commands of the branches are
// sent together, Calls run at once, Local branches run one after the
// other in the one transaction; each branch has its own attempts, retry
// delays and reply timeout, as durable as a step's. When a branch fails
// for good, the branches still in flight are given up (one waiting for a
// reply or running a call counts as an effect that may have happened),
// and every branch that may have had an effect is compensated, last
// branch first, then the steps before the fork. Branch names share the
// saga's step namespace. A Call branch's change to Run.Data is dropped
// (two branches running at once cannot both write it): change the data in
// a Local branch or a command's onReply, which run in the coordinator's
// transaction.
func Parallel[T any](name string, branches ...Step[T]) Step[T] {
	return Step[T]{Name: name, branches: append([]Step[T](nil), branches...)}
}

// DefaultCommandTimeout is a step's Timeout when it sets none.
const DefaultCommandTimeout = time.Minute

// DefaultCompensateAttempts is the number of attempts of a compensation
// whose CompensateRetry sets none.
const DefaultCompensateAttempts = 20

func (s *Step[T]) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultCommandTimeout
}

// Definition is a saga's steps under a name and a version. Make one with
// [Define]; it is immutable.
type Definition[T any] struct {
	name     string
	version  string
	steps    []Step[T] // flat: a Parallel step's branches in its place
	span     [][2]int  // per flat step: the steps [from, to) that run together
	deadline time.Duration
}

// DefineOption configures a Definition.
type DefineOption func(*defConfig) error

type defConfig struct {
	version  string
	deadline time.Duration
}

// WithVersion names the definition's version (default: a fingerprint of
// the steps' names and kinds, so that a change of the steps is a new
// version and a change inside a step's function is not). Instances record
// the version they started on and continue on it; see the package
// documentation.
func WithVersion(v string) DefineOption {
	return func(c *defConfig) error {
		if v == "" || len(v) > 64 {
			return fmt.Errorf("saga: WithVersion(%q): must be 1 to 64 bytes", v)
		}
		c.version = v
		return nil
	}
}

// WithDeadline bounds the saga: when it has not completed d after it
// started, the step in flight is given up (as timed out) and the completed
// steps are compensated.
func WithDeadline(d time.Duration) DefineOption {
	return func(c *defConfig) error {
		if d <= 0 {
			return fmt.Errorf("saga: WithDeadline(%v): must be positive", d)
		}
		c.deadline = d
		return nil
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$`)

// Define returns the definition of the saga name with steps, in order.
// Names (of the saga and each step) must match [A-Za-z0-9][A-Za-z0-9._:-]{0,99}
// and step names be unique; every step needs an action.
func Define[T any](name string, steps []Step[T], opts ...DefineOption) (*Definition[T], error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("saga: Define: name %q must match %s", name, nameRE)
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("saga: Define %s: at least one step is required", name)
	}
	var c defConfig
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	h := sha256.New()
	var flat []Step[T]
	var span [][2]int
	for i, s := range steps {
		if s.branches == nil {
			span = append(span, [2]int{len(flat), len(flat) + 1})
			flat = append(flat, s)
			continue
		}
		switch {
		case !nameRE.MatchString(s.Name):
			return nil, fmt.Errorf("saga: Define %s: step %d: Name %q must match %s", name, i, s.Name, nameRE)
		case seen[s.Name]:
			return nil, fmt.Errorf("saga: Define %s: step %d: Name %q is used twice", name, i, s.Name)
		case len(s.branches) < 2:
			return nil, fmt.Errorf("saga: Define %s: step %s: Parallel needs at least two branches", name, s.Name)
		}
		seen[s.Name] = true
		fmt.Fprintf(h, "parallel %s(", s.Name)
		from := len(flat)
		for j, b := range s.branches {
			if b.branches != nil {
				return nil, fmt.Errorf("saga: Define %s: step %s: branch %d: %s is Parallel; parallel steps do not nest", name, s.Name, j, b.Name)
			}
			flat = append(flat, b)
		}
		for range s.branches {
			span = append(span, [2]int{from, len(flat)})
		}
	}
	for i, s := range flat {
		switch {
		case !nameRE.MatchString(s.Name):
			return nil, fmt.Errorf("saga: Define %s: step %d: Name %q must match %s", name, i, s.Name, nameRE)
		case seen[s.Name]:
			return nil, fmt.Errorf("saga: Define %s: step %d: Name %q is used twice", name, i, s.Name)
		case s.Action.kind == 0:
			return nil, fmt.Errorf("saga: Define %s: step %s: Action is required", name, s.Name)
		case s.Retry.MaxAttempts < 0 || s.CompensateRetry.MaxAttempts < 0:
			return nil, fmt.Errorf("saga: Define %s: step %s: MaxAttempts must be ≥ 0", name, s.Name)
		case s.Timeout < 0:
			return nil, fmt.Errorf("saga: Define %s: step %s: Timeout must be ≥ 0", name, s.Name)
		}
		if err := s.Retry.Backoff.Validate(); err != nil {
			return nil, fmt.Errorf("saga: Define %s: step %s: Retry.Backoff.%w", name, s.Name, err)
		}
		if err := s.CompensateRetry.Backoff.Validate(); err != nil {
			return nil, fmt.Errorf("saga: Define %s: step %s: CompensateRetry.Backoff.%w", name, s.Name, err)
		}
		seen[s.Name] = true
		fmt.Fprintf(h, "%s/%s/%s;", s.Name, s.Action.kind, s.Compensate.kind)
		if sp := span[i]; sp[1]-sp[0] > 1 && i == sp[1]-1 {
			h.Write([]byte(");"))
		}
	}
	if c.version == "" {
		c.version = hex.EncodeToString(h.Sum(nil))[:12]
	}
	return &Definition[T]{name: name, version: c.version, steps: flat, span: span, deadline: c.deadline}, nil
}

// Name returns the saga's name.
func (d *Definition[T]) Name() string { return d.name }

// Version returns the definition's version.
func (d *Definition[T]) Version() string { return d.version }

// Steps returns the names of the steps, in order; a Parallel step's are
// its branches'.
func (d *Definition[T]) Steps() []string {
	out := make([]string, len(d.steps))
	for i, s := range d.steps {
		out[i] = s.Name
	}
	return out
}

// Status is where a saga is.
type Status string

const (
	Running      Status = "running"      // steps are being done
	Compensating Status = "compensating" // a step failed for good; completed steps are undone, last first
	Completed    Status = "completed"    // every step succeeded
	Compensated  Status = "compensated"  // every step that ran was undone
	Stuck        Status = "stuck"        // a compensation kept failing; an operator must Retry, Skip or Abort
	Aborted      Status = "aborted"      // an operator gave up on a stuck saga
)

// Ended reports whether s is final.
func (s Status) Ended() bool { return s == Completed || s == Compensated || s == Aborted }

// Errors.
var (
	ErrNotFound   = errors.New("saga: no such saga")
	ErrNotStuck   = errors.New("saga: the saga is not stuck")
	ErrLeaseLost  = errors.New("saga: the lease on the saga was lost")
	ErrNotReply   = errors.New("saga: the message is not a saga reply (no sagaid or sagakey extension)")
	ErrUnknownDef = errors.New("saga: no such definition registered")
)

// Backoff is exponential backoff with full jitter (see package retry).
type Backoff = backoff.Exponential
