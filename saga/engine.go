package saga

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/handoffhq/handoff"
)

const (
	compRunning = "running"
	compWaiting = "waiting"
	compDone    = "done"
	compSkipped = "skipped"
)

func jsonMarshal(v any) (json.RawMessage, error) { return json.Marshal(v) }

// pendingCall is a Call step to run outside the transaction.
type pendingCall struct {
	step    int
	comp    bool
	key     string
	attempt int
}

// transition is one transaction's changes to one instance.
type transition struct {
	c         *Coordinator
	tx        *sql.Tx
	rt        runtime
	in        *Instance
	now       time.Time
	owner     string
	epoch     int64
	events    []Event
	needCalls []pendingCall
	needAlert bool
	// branch is the Parallel branch being worked on (-1: none), grp the
	// span of its fork, fresh the branches whose first call this
	// transition is about to make (not yet run: no effect to undo).
	branch int
	grp    [2]int
	fresh  map[int]bool
	// create makes finish insert the instance (Start) rather than update
	// it; savepoints counts the local steps' savepoints still held.
	create     bool
	savepoints int
}

func (c *Coordinator) transition(tx *sql.Tx, rt runtime, in *Instance, now time.Time) *transition {
	return &transition{c: c, tx: tx, rt: rt, in: in, now: now, owner: c.owner, epoch: in.Epoch, branch: -1}
}

func (t *transition) event(kind, step string, attempt, gen int, d time.Duration, errText string) {
	t.in.Events++
	t.events = append(t.events, Event{SagaID: t.in.ID, Seq: t.in.Events, At: t.now, Kind: kind, Step: step,
		Attempt: attempt, Gen: gen, Duration: d, Error: errText, Owner: t.owner, Epoch: t.epoch})
}

// release gives up the lease (the saga waits for a timer, a reply or an
// operator, or it ended).
func (t *transition) release() { t.in.LeaseOwner, t.in.LeaseUntil = "", time.Time{} }

func (t *transition) finish(ctx context.Context) error {
	in := t.in
	in.UpdatedAt = t.now
	switch {
	case in.Status == Running || in.Status == Compensating:
		if in.DueAt.IsZero() {
			in.DueAt = t.now // a saga with work to do always has a timer
		}
	case in.Status.Ended() || in.DueAt.IsZero():
		t.release()
	}
	if in.LeaseOwner == t.c.owner && t.owner != "" {
		in.LeaseUntil = t.now.Add(t.c.lease)
	}
	if t.create {
		if err := t.c.store.Create(ctx, t.tx, in); err != nil {
			return fmt.Errorf("create: %w", err)
		}
	} else if err := t.c.store.Save(ctx, t.tx, in); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := t.c.store.Record(ctx, t.tx, t.events); err != nil {
		return fmt.Errorf("record history: %w", err)
	}
	if t.c.observer != nil && len(t.events) > 0 {
		t.c.observer.ObserveSaga(in, t.events)
	}
	return nil
}

func (t *transition) alert() *Alert {
	in := t.in
	a := &Alert{SagaID: in.ID, Name: in.Name, CorrelationID: in.CorrelationID, Error: in.Error}
	if in.Step >= 0 && in.Step < len(in.Steps) {
		a.Step, a.Attempts = in.Steps[in.Step].Name, in.Steps[in.Step].CompAttempts
	}
	return a
}

// key returns the idempotency key of step i's action or compensation.
func key(in *Instance, i int, comp bool) string {
	st := in.Steps[i]
	if comp {
		return fmt.Sprintf("%s/%s/undo/%d", in.ID, st.Name, st.Gen)
	}
	return fmt.Sprintf("%s/%s/%d", in.ID, st.Name, st.Gen)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > 2000 {
		s = s[:2000]
	}
	return s
}

// timer sets the instance's timer (and a branch's) to at, not after the
// saga's deadline.
func (t *transition) timer(at time.Time) {
	if !t.in.Deadline.IsZero() && t.in.Status == Running && at.After(t.in.Deadline) {
		at = t.in.Deadline
	}
	t.in.DueAt = at
	if t.branch >= 0 {
		t.in.Steps[t.branch].Due = at.UnixMicro()
	}
}

// compensate gives up the saga's steps: the steps whose effect may exist
// are undone from step from down.
func (t *transition) compensate(from int, cause string) {
	in := t.in
	in.Status, in.Step, in.Error = Compensating, from, cause
	in.DueAt = time.Time{}
	t.event(EvCompensating, "", 0, 0, 0, cause)
}

// advance does every step that is due, in the transaction, until the saga
// waits (for a timer, a reply, a Call to run outside) or ends.
func (t *transition) advance(ctx context.Context) error {
	for ctx.Err() == nil {
		in := t.in
		switch in.Status {
		case Running:
			if !in.Deadline.IsZero() && !t.now.Before(in.Deadline) {
				from := in.Step - 1
				if in.Step < len(in.Steps) {
					a, b := t.rt.span(in.Step)
					for j := a; j < b; j++ {
						st := &in.Steps[j]
						if st.State == StepRunning || st.State == StepWaiting {
							st.State = StepTimedOut
						}
						st.Due = 0
					}
					from = b - 1
					st := &in.Steps[in.Step]
					t.event(EvDeadline, st.Name, st.Attempts, st.Gen, 0, "")
				}
				t.compensate(from, "saga deadline exceeded")
				continue
			}
			if in.Step >= len(in.Steps) {
				in.Status, in.EndedAt, in.DueAt = Completed, t.now, time.Time{}
				t.event(EvCompleted, "", 0, 0, 0, "")
				return nil
			}
			if !in.DueAt.IsZero() && in.DueAt.After(t.now) {
				return nil // a retry delay or a reply's timeout runs
			}
			var done bool
			var err error
			if a, b := t.rt.span(in.Step); b-a > 1 {
				done, err = t.fork(ctx, a, b)
			} else {
				done, err = t.step(ctx, in.Step, false)
			}
			if err != nil || !done {
				return err
			}
		case Compensating:
			if in.Step < 0 {
				in.Status, in.EndedAt, in.DueAt = Compensated, t.now, time.Time{}
				t.event(EvCompensated, "", 0, 0, 0, "")
				return nil
			}
			st := &in.Steps[in.Step]
			if !st.needsUndo() || st.Comp == compDone || st.Comp == compSkipped || t.rt.kind(in.Step, true) == 0 {
				in.Step--
				continue
			}
			if !in.DueAt.IsZero() && in.DueAt.After(t.now) {
				return nil
			}
			done, err := t.step(ctx, in.Step, true)
			if err != nil || !done {
				return err
			}
		case Stuck:
			t.needAlert = !in.DueAt.IsZero() && !in.DueAt.After(t.now)
			return nil
		default:
			return nil
		}
	}
	return ctx.Err()
}

// state returns the step's progress field, and its attempts.
func (t *transition) state(i int, comp bool) (*string, *int) {
	st := &t.in.Steps[i]
	if comp {
		return &st.Comp, &st.CompAttempts
	}
	return &st.State, &st.Attempts
}

// maxHeldSavepoints is how many local steps' savepoints one transaction
// keeps unreleased (a savepoint of the same name taken again nests in
// PostgreSQL and SQLite and replaces the old one in MySQL; a rollback goes
// to the latest either way).
const maxHeldSavepoints = 32

// step does what step i's action (or compensation) needs now. It reports
// whether the saga moved on to another step (go on), or waits.
func (t *transition) step(ctx context.Context, i int, comp bool) (bool, error) {
	in := t.in
	st := &in.Steps[i]
	state, attempts := t.state(i, comp)
	k := key(in, i, comp)
	switch t.rt.kind(i, comp) {
	case kindLocal:
		attempt := *attempts + 1
		sp := "handoff_saga_step"
		if _, err := t.tx.ExecContext(ctx, "SAVEPOINT "+sp); err != nil {
			return false, fmt.Errorf("savepoint: %w", err)
		}
		start := time.Now()
		err := t.rt.local(ctx, t.tx, in, i, comp, k, attempt)
		dur := time.Since(start)
		if err == nil {
			// A savepoint is released at commit: releasing each one costs a
			// round trip per step. Only a long run of local steps in one
			// transaction releases them, so that PostgreSQL's cache of
			// subtransactions (64 per transaction) does not overflow.
			if t.savepoints++; t.savepoints > maxHeldSavepoints {
				if _, err := t.tx.ExecContext(ctx, "RELEASE SAVEPOINT "+sp); err != nil {
					return false, fmt.Errorf("release savepoint: %w", err)
				}
			}
			*attempts = attempt
			t.succeeded(i, comp, attempt, dur)
			return true, nil
		}
		if _, rerr := t.tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+sp); rerr != nil {
			return false, fmt.Errorf("rollback to savepoint: %w (after the step's error: %v)", rerr, err)
		}
		if _, rerr := t.tx.ExecContext(ctx, "RELEASE SAVEPOINT "+sp); rerr != nil {
			return false, fmt.Errorf("release savepoint: %w", rerr)
		}
		*attempts = attempt
		return t.failed(i, comp, attempt, dur, err, false), nil
	case kindCommand:
		if *state == StepWaiting || *state == compWaiting { // the reply's timeout fired
			t.event(EvStepTimedOut, st.Name, *attempts, st.Gen, 0, "no reply")
			if *attempts >= t.rt.retry(i, comp).MaxAttempts {
				return t.failed(i, comp, *attempts, 0, errors.New("no reply before the timeout"), true), nil
			}
		}
		attempt := *attempts + 1
		topic, m, err := t.rt.command(in, i, comp, k, attempt)
		if err != nil {
			*attempts = attempt
			return t.failed(i, comp, attempt, 0, err, false), nil
		}
		m.CorrelationID = in.CorrelationID
		if m.Extensions == nil {
			m.Extensions = map[string]string{}
		}
		m.Extensions[ExtSagaID] = in.ID
		m.Extensions[ExtSagaKey] = k
		if m.PartitionKey == "" {
			m.PartitionKey = in.ID
		}
		if err := t.c.outbox.Add(ctx, t.tx, topic, m); err != nil {
			return false, fmt.Errorf("step %s: send command: %w", st.Name, err)
		}
		*attempts = attempt
		if comp {
			*state = compWaiting
			t.event(EvCompSent, st.Name, attempt, st.Gen, 0, "")
		} else {
			*state = StepWaiting
			t.event(EvCommandSent, st.Name, attempt, st.Gen, 0, "")
		}
		t.timer(t.now.Add(t.rt.timeout(i)))
		if t.branch < 0 {
			t.release()
		}
		return false, nil
	case kindCall:
		if comp {
			if *state == "" {
				*state = compRunning
			}
		} else if *state == StepPending {
			*state = StepRunning
			t.event(EvStepStarted, st.Name, *attempts+1, st.Gen, 0, "")
			if t.branch >= 0 {
				if t.fresh == nil {
					t.fresh = map[int]bool{}
				}
				t.fresh[i] = true
			}
		}
		t.needCalls = append(t.needCalls, pendingCall{step: i, comp: comp, key: k, attempt: *attempts + 1})
		in.DueAt = t.now // taken over after the lease if this coordinator dies during the call
		return false, nil
	}
	return false, fmt.Errorf("step %s: no action", st.Name)
}

// succeeded moves the saga past step i.
func (t *transition) succeeded(i int, comp bool, attempt int, d time.Duration) {
	in := t.in
	st := &in.Steps[i]
	st.Error = ""
	in.DueAt = time.Time{}
	if comp {
		st.Comp = compDone
		t.event(EvCompDone, st.Name, attempt, st.Gen, d, "")
		in.Step--
		return
	}
	st.State = StepDone
	t.event(EvStepDone, st.Name, attempt, st.Gen, d, "")
	if t.branch >= 0 {
		st.Due = 0 // the fork goes on when every branch is done
		return
	}
	in.Step++
}

// failed records a failed attempt of step i: a retry after a durable delay,
// or the end of the step (compensation begins) or of the compensation (the
// saga is stuck). mayHaveRun says the step's effect may exist though it
// failed. It reports whether the saga moved to another step.
func (t *transition) failed(i int, comp bool, attempt int, d time.Duration, err error, mayHaveRun bool) bool {
	in := t.in
	st := &in.Steps[i]
	pol := t.rt.retry(i, comp)
	msg := errText(err)
	st.Error = msg
	if comp {
		t.event(EvCompFailed, st.Name, attempt, st.Gen, d, msg)
		if attempt < pol.MaxAttempts {
			st.Comp = ""
			t.c.log.Debug("saga: compensation failed; retrying", "saga", in.ID, "step", st.Name, "attempt", attempt, "err", err)
			t.timer(t.now.Add(pol.Backoff.Delay(attempt)))
			return false
		}
		in.Status, in.Error = Stuck, fmt.Sprintf("compensation of %s failed %d times: %s", st.Name, attempt, msg)
		st.Comp = ""
		in.DueAt = t.now // the alert is due
		t.event(EvStuck, st.Name, attempt, st.Gen, 0, msg)
		t.needAlert = true
		return false
	}
	t.event(EvStepFailed, st.Name, attempt, st.Gen, d, msg)
	if attempt < pol.MaxAttempts && !handoff.IsPermanent(err) {
		t.timer(t.now.Add(pol.Backoff.Delay(attempt)))
		return false
	}
	if mayHaveRun {
		st.State = StepTimedOut
	} else {
		st.State = StepFailed
	}
	t.event(EvStepGaveUp, st.Name, attempt, st.Gen, 0, msg)
	from := i - 1
	if mayHaveRun {
		from = i
	}
	if t.branch >= 0 {
		from = t.giveUpFork(i, st.Name)
	}
	t.compensate(from, fmt.Sprintf("step %s failed: %s", st.Name, msg))
	return true
}

// fork works on the branches [a, b) of a Parallel step: each that is due
// does what it needs now, as a step would. It reports whether the saga
// moved on: past the fork when every branch is done, or to compensation
// when a branch failed for good. Otherwise the instance's timer is the
// earliest of the branches'.
func (t *transition) fork(ctx context.Context, a, b int) (bool, error) {
	in := t.in
	t.grp = [2]int{a, b}
	defer func() { t.branch = -1 }()
	for j := a; j < b; j++ {
		st := &in.Steps[j]
		if st.State == StepDone || (st.Due != 0 && time.UnixMicro(st.Due).After(t.now)) {
			continue
		}
		st.Due = 0
		t.branch = j
		if _, err := t.step(ctx, j, false); err != nil {
			return false, err
		}
		t.branch = -1
		if in.Status != Running {
			return true, nil // a branch failed for good
		}
	}
	var due time.Time
	done := true
	for j := a; j < b; j++ {
		st := &in.Steps[j]
		if st.State == StepDone {
			continue
		}
		done = false
		if st.Due != 0 && (due.IsZero() || time.UnixMicro(st.Due).Before(due)) {
			due = time.UnixMicro(st.Due).UTC()
		}
	}
	if done {
		in.Step, in.DueAt = b, time.Time{}
		return true, nil
	}
	if len(t.needCalls) > 0 {
		in.DueAt = t.now // taken over after the lease if this coordinator dies during the calls
		return false, nil
	}
	in.DueAt = due
	t.release()
	return false, nil
}

// giveUpFork gives up the fork of branch i, which failed for good: the
// branches still in flight count as effects that may have happened (a
// branch whose first call has not run yet is left pending: it had none),
// and it returns the step compensation starts from: the fork's last.
func (t *transition) giveUpFork(i int, failed string) int {
	in := t.in
	for j := t.grp[0]; j < t.grp[1]; j++ {
		st := &in.Steps[j]
		st.Due = 0
		if j == i || (st.State != StepRunning && st.State != StepWaiting) {
			continue
		}
		if t.fresh[j] {
			st.State = StepPending
			continue
		}
		st.State = StepTimedOut
		t.event(EvStepTimedOut, st.Name, st.Attempts, st.Gen, 0, "given up: branch "+failed+" failed")
	}
	t.needCalls = nil
	return t.grp[1] - 1
}

// callOutcome applies a Call's outcome, if the saga still waits for it,
// and goes on. It reports whether there is anything to save.
func (t *transition) callOutcome(p *pendingCall, data json.RawMessage, cerr error, d time.Duration) bool {
	in := t.in
	if p.step >= len(in.Steps) || in.Step < 0 || in.Step >= len(in.Steps) {
		return false
	}
	a, b := t.rt.span(in.Step)
	if p.comp || b-a == 1 {
		if p.step != in.Step {
			return false
		}
	} else if p.step < a || p.step >= b {
		return false
	} else {
		t.branch, t.grp = p.step, [2]int{a, b}
		defer func() { t.branch = -1 }()
		data = in.Data // a branch's change to the data is dropped (see Parallel)
	}
	state, attempts := t.state(p.step, p.comp)
	if (p.comp && (in.Status != Compensating || *state != compRunning)) ||
		(!p.comp && (in.Status != Running || *state != StepRunning)) || *attempts+1 != p.attempt {
		return false
	}
	*attempts = p.attempt
	if cerr == nil {
		in.Data = data
		t.succeeded(p.step, p.comp, p.attempt, d)
	} else {
		// A permanent refusal of an action had no effect; anything else may have.
		moved := t.failed(p.step, p.comp, p.attempt, d, cerr, !handoff.IsPermanent(cerr))
		if !moved && !p.comp && in.Status == Running {
			in.Steps[p.step].State = StepRunning // retried after the delay
		}
	}
	if t.branch >= 0 && in.Status == Running {
		in.DueAt = t.now // the fork looks at its branches again
	}
	return true
}
