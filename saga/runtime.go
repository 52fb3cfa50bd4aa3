package saga

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/handoffhq/handoff"
)

// runtime is a Definition[T] with T erased, for the coordinator.
type runtime interface {
	name() string
	version() string
	stepNames() []string
	// span returns the steps [from, to) that run together with step i (a
	// Parallel step's branches; i alone otherwise).
	span(i int) (from, to int)
	kind(i int, comp bool) actionKind
	retry(i int, comp bool) Retry
	timeout(i int) time.Duration
	deadline() time.Duration
	local(ctx context.Context, tx *sql.Tx, in *Instance, i int, comp bool, key string, attempt int) error
	command(in *Instance, i int, comp bool, key string, attempt int) (string, *handoff.Message, error)
	reply(ctx context.Context, tx *sql.Tx, in *Instance, i int, comp bool, key string, attempt int, m *handoff.Message) error
	call(ctx context.Context, in *Instance, i int, comp bool, key string, attempt int) (json.RawMessage, error)
}

type defRuntime[T any] struct{ d *Definition[T] }

func (r defRuntime[T]) name() string        { return r.d.name }
func (r defRuntime[T]) version() string     { return r.d.version }
func (r defRuntime[T]) stepNames() []string { return r.d.Steps() }
func (r defRuntime[T]) span(i int) (int, int) {
	if i < 0 || i >= len(r.d.span) {
		return i, i + 1
	}
	return r.d.span[i][0], r.d.span[i][1]
}
func (r defRuntime[T]) deadline() time.Duration { return r.d.deadline }
func (r defRuntime[T]) timeout(i int) time.Duration {
	return r.d.steps[i].timeout()
}

func (r defRuntime[T]) action(i int, comp bool) *Action[T] {
	if comp {
		return &r.d.steps[i].Compensate
	}
	return &r.d.steps[i].Action
}

func (r defRuntime[T]) kind(i int, comp bool) actionKind { return r.action(i, comp).kind }

func (r defRuntime[T]) retry(i int, comp bool) Retry {
	if comp {
		p := r.d.steps[i].CompensateRetry
		p.MaxAttempts = p.max(DefaultCompensateAttempts)
		return p
	}
	p := r.d.steps[i].Retry
	p.MaxAttempts = p.max(3)
	return p
}

func (r defRuntime[T]) run(in *Instance, i int, key string, attempt int) (*Run[T], error) {
	run := &Run[T]{SagaID: in.ID, CorrelationID: in.CorrelationID, Step: r.d.steps[i].Name, Attempt: attempt, Key: key}
	if err := json.Unmarshal(in.Data, &run.Data); err != nil {
		return nil, handoff.Permanent(fmt.Errorf("saga %s: decode data: %w", in.ID, err))
	}
	return run, nil
}

func encode[T any](in *Instance, run *Run[T]) error {
	b, err := json.Marshal(run.Data)
	if err != nil {
		return handoff.Permanent(fmt.Errorf("saga %s: encode data: %w", in.ID, err))
	}
	in.Data = b
	return nil
}

func (r defRuntime[T]) local(ctx context.Context, tx *sql.Tx, in *Instance, i int, comp bool, key string, attempt int) error {
	run, err := r.run(in, i, key, attempt)
	if err != nil {
		return err
	}
	if err := safe(func() error { return r.action(i, comp).local(ctx, tx, run) }); err != nil {
		return err
	}
	return encode(in, run)
}

func (r defRuntime[T]) command(in *Instance, i int, comp bool, key string, attempt int) (string, *handoff.Message, error) {
	run, err := r.run(in, i, key, attempt)
	if err != nil {
		return "", nil, err
	}
	a := r.action(i, comp)
	var m *handoff.Message
	err = safe(func() error {
		var err error
		m, err = a.build(run)
		return err
	})
	if err != nil {
		return "", nil, err
	}
	if m == nil {
		return "", nil, handoff.Permanent(fmt.Errorf("step %s: build returned no message", run.Step))
	}
	return a.topic, m, nil
}

func (r defRuntime[T]) reply(ctx context.Context, tx *sql.Tx, in *Instance, i int, comp bool, key string, attempt int, m *handoff.Message) error {
	a := r.action(i, comp)
	if a.onReply == nil {
		return nil
	}
	run, err := r.run(in, i, key, attempt)
	if err != nil {
		return err
	}
	if err := safe(func() error { return a.onReply(ctx, tx, run, m) }); err != nil {
		return err
	}
	return encode(in, run)
}

func (r defRuntime[T]) call(ctx context.Context, in *Instance, i int, comp bool, key string, attempt int) (json.RawMessage, error) {
	run, err := r.run(in, i, key, attempt)
	if err != nil {
		return nil, err
	}
	if err := safe(func() error { return r.action(i, comp).call(ctx, run) }); err != nil {
		return nil, err
	}
	cp := *in
	if err := encode(&cp, run); err != nil {
		return nil, err
	}
	return cp.Data, nil
}

// safe turns a panic in user code into a permanent error.
func safe(fn func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = handoff.Permanent(fmt.Errorf("panic: %v", p))
		}
	}()
	return fn()
}
