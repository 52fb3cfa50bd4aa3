package saga

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/handoffhq/handoff"
)

// CloudEvents extensions on a saga's commands and their replies.
const (
	ExtSagaID      = "sagaid"      // the saga's id
	ExtSagaKey     = "sagakey"     // the step's idempotency key: saga id / step / generation
	ExtSagaOutcome = "sagaoutcome" // on a reply: "ok" or "failed"
	ExtSagaError   = "sagaerror"   // on a failed reply: why
)

// Key returns the idempotency key a saga command carries ("" for a
// message that is not one): deduplicate the command's effect by it, since
// a command is sent again with the same key when its reply is late.
func Key(cmd *handoff.Message) string { return cmd.Extensions[ExtSagaKey] }

// Reply returns the reply to a saga command: a message of type typ from
// source with data, correlated with cmd (its correlation id, its id as
// causation id, its saga extensions), reporting failure when failure is
// not nil. A failure reply means the command had no effect: the step is
// not compensated. Send it through the outbox in the transaction of the
// command's effect.
func Reply(cmd *handoff.Message, source, typ string, data []byte, failure error) *handoff.Message {
	m := handoff.NewMessage(source, typ, data)
	m.CorrelationID, m.CausationID, m.PartitionKey = cmd.CorrelationID, cmd.ID, cmd.Extensions[ExtSagaID]
	m.Extensions = map[string]string{ExtSagaID: cmd.Extensions[ExtSagaID], ExtSagaKey: cmd.Extensions[ExtSagaKey],
		ExtSagaOutcome: "ok"}
	if failure != nil {
		m.Extensions[ExtSagaOutcome] = "failed"
		e := failure.Error()
		if len(e) > 1000 {
			e = e[:1000]
		}
		m.Extensions[ExtSagaError] = e
	}
	return m
}

// HandleReply applies a reply to a saga command, in tx: give it to an
// inbox (inbox.Handler) subscribed to the reply topics, so a reply
// delivered twice is applied once. A reply to the step the saga waits on
// (same key) completes it, or fails it; any other (late after a timeout,
// for a saga that moved on or ended) is recorded in the history and
// otherwise ignored. Errors are permanent for a message that is no saga
// reply.
func (c *Coordinator) HandleReply(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
	id, k := m.Extensions[ExtSagaID], m.Extensions[ExtSagaKey]
	if id == "" || k == "" {
		return handoff.Permanent(fmt.Errorf("%w: message %s", ErrNotReply, m.ID))
	}
	in, err := c.store.Lock(ctx, tx, id)
	if errors.Is(err, ErrNotFound) {
		c.log.Warn("saga: reply to a saga that does not exist (purged?)", "saga", id, "message", m.ID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("saga: reply %s: %w", m.ID, err)
	}
	rt, err := c.runtimeOf(in)
	if err != nil {
		return fmt.Errorf("saga: reply %s: %w", m.ID, err)
	}
	now := time.Now().UTC()
	t := c.transition(tx, rt, in, now)
	t.owner, t.epoch = "", 0
	comp := strings.Contains(k, "/undo/")
	i := in.Step
	fork := false
	if !comp && in.Status == Running && i >= 0 && i < len(in.Steps) {
		// A Parallel step waits on several branches: the key names which.
		if a, b := rt.span(i); b-a > 1 {
			name, _ := parseKey(k)
			for j := a; j < b; j++ {
				if in.Steps[j].Name == name {
					i, fork = j, true
					t.branch, t.grp = j, [2]int{a, b}
				}
			}
		}
	}
	waiting := i >= 0 && i < len(in.Steps) && key(in, i, comp) == k &&
		((!comp && in.Status == Running && in.Steps[i].State == StepWaiting) ||
			(comp && in.Status == Compensating && in.Steps[i].Comp == compWaiting))
	if !waiting {
		step, gen := parseKey(k)
		t.event(EvReplyLate, step, 0, gen, 0, "reply "+m.ID+" to "+k+" after the step moved on; ignored")
		return t.finish(ctx)
	}
	st := &in.Steps[i]
	_, attempts := t.state(i, comp)
	if m.Extensions[ExtSagaOutcome] == "failed" {
		cause := errors.New(m.Extensions[ExtSagaError])
		if !comp {
			// A failed reply: the command had no effect. Later attempts are
			// not made: the service answered.
			cause = handoff.Permanent(cause)
		}
		t.failed(i, comp, *attempts, 0, cause, false)
	} else {
		if err := rt.reply(ctx, tx, in, i, comp, k, *attempts, m); err != nil {
			return err // the inbox retries the reply
		}
		t.succeeded(i, comp, *attempts, 0)
		_ = st
	}
	if fork && in.Status == Running {
		in.DueAt = now // the fork looks at its branches again
	}
	t.branch = -1
	in.LeaseOwner, in.LeaseUntil = "", time.Time{}
	if err := t.finish(ctx); err != nil {
		return fmt.Errorf("saga: reply %s: %w", m.ID, err)
	}
	c.Wake()
	return nil
}

func parseKey(k string) (step string, gen int) {
	parts := strings.Split(k, "/")
	if len(parts) < 3 {
		return "", 0
	}
	gen, _ = strconv.Atoi(parts[len(parts)-1])
	return parts[1], gen
}
