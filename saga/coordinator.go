package saga

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/outbox"
)

// Alert is what an [Alerter] is told about a stuck saga.
type Alert struct {
	SagaID        string
	Name          string
	CorrelationID string
	Step          string // whose compensation kept failing
	Attempts      int
	Error         string
}

// Alerter is told when a saga gets stuck: a compensation failed on every
// attempt. It is called after the transition committed, and again (by
// this or another coordinator) until it returns nil: at least once.
type Alerter interface {
	SagaStuck(ctx context.Context, a Alert) error
}

// AlerterFunc is a function as an Alerter.
type AlerterFunc func(ctx context.Context, a Alert) error

// SagaStuck calls f.
func (f AlerterFunc) SagaStuck(ctx context.Context, a Alert) error { return f(ctx, a) }

// Coordinator runs sagas: it starts them, moves them on by their steps,
// compensates, keeps their timers and leases, and records their history.
// Several coordinators (processes) may share one database; each saga is
// owned by one at a time.
type Coordinator struct {
	store     Store
	outbox    *outbox.Writer
	owner     string
	lease     time.Duration
	poll      time.Duration
	workers   int
	batch     int
	alerter   Alerter
	observer  Observer
	log       *slog.Logger
	retention time.Duration
	cleanup   time.Duration

	mu      sync.Mutex
	defs    map[string]map[string]runtime // name → version → definition
	current map[string]runtime            // name → the version new sagas start on
	busy    map[string]bool
	wake    chan struct{}
}

// Option configures a Coordinator.
type Option func(*Coordinator) error

// WithOutbox sets the writer Command steps send through (required for them).
func WithOutbox(w *outbox.Writer) Option {
	return func(c *Coordinator) error {
		if w == nil {
			return errors.New("saga: WithOutbox: writer must not be nil")
		}
		c.outbox = w
		return nil
	}
}

// WithOwner names this coordinator in leases and history (default: a new
// UUIDv7 per Coordinator). Two running coordinators must not share one.
func WithOwner(id string) Option {
	return func(c *Coordinator) error {
		if id == "" || len(id) > 100 {
			return fmt.Errorf("saga: WithOwner(%q): must be 1 to 100 bytes", id)
		}
		c.owner = id
		return nil
	}
}

// WithLease sets how long a coordinator holds a saga it works on before
// another may take it over (default 30s). It bounds the time to resume
// after a crash.
func WithLease(d time.Duration) Option {
	return func(c *Coordinator) error {
		if d < 100*time.Millisecond {
			return fmt.Errorf("saga: WithLease(%v): must be at least 100ms", d)
		}
		c.lease = d
		return nil
	}
}

// WithPollInterval sets how often Run looks for due timers when nothing
// wakes it (default 1s).
func WithPollInterval(d time.Duration) Option {
	return func(c *Coordinator) error {
		if d <= 0 {
			return fmt.Errorf("saga: WithPollInterval(%v): must be positive", d)
		}
		c.poll = d
		return nil
	}
}

// WithWorkers sets how many sagas Run moves on at once (default 4).
func WithWorkers(n int) Option {
	return func(c *Coordinator) error {
		if n < 1 || n > 1024 {
			return fmt.Errorf("saga: WithWorkers(%d): must be between 1 and 1024", n)
		}
		c.workers = n
		return nil
	}
}

// WithAlerter sets the hook told about stuck sagas (default: an error in
// the log).
func WithAlerter(a Alerter) Option {
	return func(c *Coordinator) error {
		if a == nil {
			return errors.New("saga: WithAlerter: alerter must not be nil")
		}
		c.alerter = a
		return nil
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *Coordinator) error {
		if l == nil {
			return errors.New("saga: WithLogger: logger must not be nil")
		}
		c.log = l
		return nil
	}
}

// WithRetention sets how long ended sagas and their history are kept
// (default 30 days); Run deletes older ones every hour.
func WithRetention(d time.Duration) Option {
	return func(c *Coordinator) error {
		if d < time.Minute {
			return fmt.Errorf("saga: WithRetention(%v): must be at least 1m", d)
		}
		c.retention = d
		return nil
	}
}

// New returns a coordinator over store. Register definitions, then Run it.
func New(store Store, opts ...Option) (*Coordinator, error) {
	if store == nil {
		return nil, errors.New("saga: New: store must not be nil")
	}
	c := &Coordinator{store: store, lease: 30 * time.Second, poll: time.Second, workers: 4, batch: 100,
		log: slog.New(slog.DiscardHandler), retention: 30 * 24 * time.Hour, cleanup: time.Hour,
		defs: map[string]map[string]runtime{}, current: map[string]runtime{}, busy: map[string]bool{},
		wake: make(chan struct{}, 1)}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.owner == "" {
		c.owner = handoff.NewID()
	}
	return c, nil
}

// Owner returns the coordinator's name in leases.
func (c *Coordinator) Owner() string { return c.owner }

// Saga starts instances of one definition. Make one with [Register].
type Saga[T any] struct {
	c   *Coordinator
	def *Definition[T]
}

// Register adds def to c (new sagas start on it) and older versions of the
// same saga that instances in flight may still run on. It fails for a
// definition with Command steps when c has no outbox, and for a version
// registered already.
func Register[T any](c *Coordinator, def *Definition[T], older ...*Definition[T]) (*Saga[T], error) {
	if def == nil {
		return nil, errors.New("saga: Register: definition must not be nil")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.current[def.name]; dup {
		return nil, fmt.Errorf("saga: Register %s: registered already", def.name)
	}
	vs := map[string]runtime{}
	for _, d := range append([]*Definition[T]{def}, older...) {
		if d == nil || d.name != def.name {
			return nil, fmt.Errorf("saga: Register %s: an older version must be a definition of the same saga", def.name)
		}
		if _, dup := vs[d.version]; dup {
			return nil, fmt.Errorf("saga: Register %s: version %s given twice", def.name, d.version)
		}
		for _, s := range d.steps {
			if (s.Action.kind == kindCommand || s.Compensate.kind == kindCommand) && c.outbox == nil {
				return nil, fmt.Errorf("saga: Register %s: step %s sends a command: the coordinator needs WithOutbox", def.name, s.Name)
			}
		}
		vs[d.version] = defRuntime[T]{d}
	}
	c.defs[def.name] = vs
	c.current[def.name] = defRuntime[T]{def}
	return &Saga[T]{c: c, def: def}, nil
}

// StartOption configures one saga's start.
type StartOption func(*startConfig) error

type startConfig struct{ id, correlation string }

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// WithID sets the saga's id (default: a new UUIDv7). Starting a second saga
// with an id in use fails (the table's primary key), so an id derived
// from the business key (the order id) makes Start idempotent.
func WithID(id string) StartOption {
	return func(c *startConfig) error {
		if !idRE.MatchString(id) {
			return fmt.Errorf("saga: WithID(%q): must match %s", id, idRE)
		}
		c.id = id
		return nil
	}
}

// WithCorrelation sets the correlation id the saga's commands carry
// (default: the one ctx carries, handoff.ContextWithCause: a saga started
// in a handler joins the conversation of the message handled; else the
// saga id).
func WithCorrelation(id string) StartOption {
	return func(c *startConfig) error {
		if id == "" || len(id) > 255 {
			return fmt.Errorf("saga: WithCorrelation(%q): must be 1 to 255 bytes", id)
		}
		c.correlation = id
		return nil
	}
}

// Start creates a saga in tx, the caller's transaction, and runs its first
// steps there at once: local steps run in tx, a first command is added to
// the outbox in tx. So the saga exists, and has begun, if and only if tx
// commits. A remote call is left to the coordinator's Run after the
// commit. It returns the saga's id.
func (s *Saga[T]) Start(ctx context.Context, tx *sql.Tx, data T, opts ...StartOption) (string, error) {
	var cfg startConfig
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return "", err
		}
	}
	if cfg.id == "" {
		cfg.id = handoff.NewID()
	}
	if cfg.correlation == "" {
		cfg.correlation, _ = handoff.CorrelationFromContext(ctx)
	}
	if cfg.correlation == "" {
		cfg.correlation = cfg.id
	}
	raw, err := jsonMarshal(data)
	if err != nil {
		return "", fmt.Errorf("saga: start %s: encode data: %w", s.def.name, err)
	}
	c := s.c
	now := time.Now().UTC()
	in := &Instance{ID: cfg.id, Name: s.def.name, Version: s.def.version, CorrelationID: cfg.correlation,
		Status: Running, Data: raw, CreatedAt: now, UpdatedAt: now, LeaseOwner: c.owner,
		LeaseUntil: now.Add(c.lease), Epoch: 1}
	for _, n := range s.def.Steps() {
		in.Steps = append(in.Steps, StepState{Name: n, State: StepPending, Gen: 1})
	}
	if s.def.deadline > 0 {
		in.Deadline = now.Add(s.def.deadline)
	}
	// The row is inserted once, with the state the first steps leave
	// (finish): one statement fewer than an insert and an update. An id in
	// use fails there; the caller's transaction must then roll back, and
	// with it what the steps wrote.
	t := c.transition(tx, defRuntime[T]{s.def}, in, now)
	t.create = true
	t.event(EvStarted, "", 0, 0, 0, "")
	if err := t.advance(ctx); err != nil {
		return "", fmt.Errorf("saga: start %s %s: %w", s.def.name, in.ID, err)
	}
	if len(t.needCalls) > 0 || t.needAlert {
		in.DueAt = now // the coordinator's Run takes it from here
	}
	if err := t.finish(ctx); err != nil {
		return "", fmt.Errorf("saga: start %s %s: %w", s.def.name, in.ID, err)
	}
	if !in.DueAt.IsZero() {
		c.Wake()
	}
	return in.ID, nil
}

// Wake makes Run look for due sagas now (and shortly again, since the
// signal may come before the transaction that made one due commits).
func (c *Coordinator) Wake() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Coordinator) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for n := range c.defs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (c *Coordinator) runtimeOf(in *Instance) (runtime, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rt, ok := c.defs[in.Name][in.Version]
	if !ok {
		return nil, fmt.Errorf("%w: %s version %s (saga %s)", ErrUnknownDef, in.Name, in.Version, in.ID)
	}
	return rt, nil
}

// VersionError is returned by Check and Run when sagas in flight started
// on a definition version this coordinator does not have: it names them
// and the step each group is at.
type VersionError struct {
	Groups []InFlight
}

func (e *VersionError) Error() string {
	var b strings.Builder
	b.WriteString("saga: sagas in flight run on definition versions not registered (register the old definition too: saga.Register(c, new, old), or let them finish first):")
	for _, g := range e.Groups {
		fmt.Fprintf(&b, " %s version %s at step %s: %d (%s);", g.Name, g.Version, g.Step, g.Count, strings.Join(g.IDs, ", "))
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Check refuses, with a [VersionError], when sagas in flight started on a
// definition version that is not registered.
func (c *Coordinator) Check(ctx context.Context) error {
	var bad []InFlight
	for _, name := range c.names() {
		groups, err := c.store.InFlight(ctx, name)
		if err != nil {
			return fmt.Errorf("saga: check %s: %w", name, err)
		}
		c.mu.Lock()
		for _, g := range groups {
			if _, ok := c.defs[name][g.Version]; !ok {
				bad = append(bad, g)
			}
		}
		c.mu.Unlock()
	}
	if len(bad) > 0 {
		return &VersionError{Groups: bad}
	}
	return nil
}

// Run checks the definitions against the sagas in flight (see Check), then
// moves sagas on until ctx is done: it claims sagas whose timer is due (a
// started saga, a retry delay, a reply's timeout, a reply received, a
// crashed coordinator's saga once its lease expired) and works on each.
// It returns nil on cancellation.
func (c *Coordinator) Run(ctx context.Context) error {
	if err := c.Check(ctx); err != nil {
		return err
	}
	work := make(chan string)
	var wg sync.WaitGroup
	for range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				c.process(ctx, id)
				c.mu.Lock()
				delete(c.busy, id)
				c.mu.Unlock()
			}
		}()
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	names := c.names()
	timer := time.NewTimer(0)
	defer timer.Stop()
	lastPurge := time.Time{}
	for {
		woken := false
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-c.wake:
			woken = true
		}
		if time.Since(lastPurge) >= c.cleanup {
			lastPurge = time.Now()
			if n, err := c.Purge(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("saga: purge", "err", err)
			} else if n > 0 {
				c.log.Debug("saga: purged ended sagas", "count", n)
			}
		}
		next := c.poll
		for {
			ids, err := c.store.Claim(ctx, names, c.owner, time.Now().UTC(), c.lease, c.batch)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				c.log.Warn("saga: claim", "err", err)
				break
			}
			sent := 0
			for _, id := range ids {
				c.mu.Lock()
				if c.busy[id] {
					c.mu.Unlock()
					continue
				}
				c.busy[id] = true
				c.mu.Unlock()
				select {
				case work <- id:
					sent++
				case <-ctx.Done():
					return nil
				}
			}
			if len(ids) < c.batch || sent == 0 {
				if len(ids) > 0 {
					next = c.poll / 20 // what was claimed may make more due soon
				}
				break
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if woken {
			next = min(next, 20*time.Millisecond) // the waker's transaction may not have committed yet
		}
		timer.Reset(min(next, c.poll))
	}
}

// Purge deletes sagas that ended longer than the retention ago, with their
// history; Run calls it every hour.
func (c *Coordinator) Purge(ctx context.Context) (int, error) {
	before := time.Now().Add(-c.retention)
	total := 0
	for {
		n, err := c.store.Purge(ctx, before, 1000)
		total += n
		if err != nil || n < 1000 {
			return total, err
		}
	}
}

// inTx runs fn in a transaction of the store's database, again on a conflict.
func (c *Coordinator) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		err = func() error {
			tx, err := c.store.DB().BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback() }()
			if err := fn(tx); err != nil {
				return err
			}
			return tx.Commit()
		}()
		if err == nil || !c.store.IsConflict(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// process moves saga id on while this coordinator holds its lease and it
// has work that is due.
func (c *Coordinator) process(ctx context.Context, id string) {
	for ctx.Err() == nil {
		var calls []pendingCall
		var alert *Alert
		var rt runtime
		var snapshot Instance
		err := c.inTx(ctx, func(tx *sql.Tx) error {
			now := time.Now().UTC()
			in, err := c.store.Lock(ctx, tx, id)
			if err != nil {
				return err
			}
			if in.LeaseOwner != c.owner || !in.LeaseUntil.After(now) {
				return ErrLeaseLost
			}
			if rt, err = c.runtimeOf(in); err != nil {
				return err
			}
			t := c.transition(tx, rt, in, now)
			if err := t.advance(ctx); err != nil {
				return err
			}
			if t.needAlert {
				alert = t.alert()
			}
			calls = t.needCalls
			if len(calls) == 0 && alert == nil {
				t.release()
			}
			snapshot = *in
			return t.finish(ctx)
		})
		switch {
		case err == nil:
		case errors.Is(err, ErrLeaseLost) || errors.Is(err, ErrNotFound):
			return
		default:
			if ctx.Err() == nil {
				c.log.Error("saga: transition failed", "saga", id, "err", err)
			}
			return
		}
		switch {
		case len(calls) > 0:
			if !c.runCalls(ctx, rt, &snapshot, calls) {
				return
			}
		case alert != nil:
			c.sendAlert(ctx, alert)
			return
		default:
			return
		}
	}
}

func (c *Coordinator) sendAlert(ctx context.Context, a *Alert) {
	var err error
	if c.alerter != nil {
		err = c.alerter.SagaStuck(ctx, *a)
	} else {
		c.log.Error("saga: stuck: a compensation failed on every attempt; retry, skip or abort it",
			"saga", a.SagaID, "name", a.Name, "step", a.Step, "attempts", a.Attempts, "err", a.Error)
	}
	if err != nil {
		c.log.Warn("saga: alert failed; trying again later", "saga", a.SagaID, "err", err)
		return
	}
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		in, err := c.store.Lock(ctx, tx, a.SagaID)
		if err != nil {
			return err
		}
		if in.Status != Stuck || in.DueAt.IsZero() {
			return nil
		}
		t := c.transition(tx, nil, in, time.Now().UTC())
		in.DueAt = time.Time{}
		t.event(EvAlerted, a.Step, a.Attempts, 0, 0, "")
		t.release()
		return t.finish(ctx)
	})
	if err != nil && ctx.Err() == nil {
		c.log.Warn("saga: record alert", "saga", a.SagaID, "err", err)
	}
}

// runCalls runs the calls (one, or a fork's branches at once) and
// reports whether to go on with the saga.
func (c *Coordinator) runCalls(ctx context.Context, rt runtime, snap *Instance, calls []pendingCall) bool {
	if len(calls) == 1 {
		return c.runCall(ctx, rt, snap, &calls[0])
	}
	ok := make([]bool, len(calls))
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok[i] = c.runCall(ctx, rt, snap, &calls[i])
		}()
	}
	wg.Wait()
	for _, o := range ok {
		if !o {
			return false
		}
	}
	return true
}

// runCall runs a Call step outside any transaction and records its
// outcome; it reports whether to go on with the saga.
func (c *Coordinator) runCall(ctx context.Context, rt runtime, snap *Instance, p *pendingCall) bool {
	cctx, cancel := context.WithTimeout(ctx, min(rt.timeout(p.step), c.lease/2))
	start := time.Now()
	data, cerr := rt.call(cctx, snap, p.step, p.comp, p.key, p.attempt)
	cancel()
	dur := time.Since(start)
	if ctx.Err() != nil {
		return false
	}
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		now := time.Now().UTC()
		in, err := c.store.Lock(ctx, tx, snap.ID)
		if err != nil {
			return err
		}
		if in.LeaseOwner != c.owner || !in.LeaseUntil.After(now) {
			return ErrLeaseLost
		}
		t := c.transition(tx, rt, in, now)
		if !t.callOutcome(p, data, cerr, dur) {
			return nil // the saga moved on meanwhile (deadline): nothing to apply
		}
		return t.finish(ctx)
	})
	if err != nil {
		if !errors.Is(err, ErrLeaseLost) && ctx.Err() == nil {
			c.log.Error("saga: record call outcome", "saga", snap.ID, "err", err)
		}
		return false
	}
	return true
}

// Retry makes a stuck saga try its failing compensation again, with a new
// round of attempts (same idempotency key).
func (c *Coordinator) Retry(ctx context.Context, id string) error {
	return c.operate(ctx, id, EvOperatorRetry, func(in *Instance) {
		st := &in.Steps[in.Step]
		st.CompAttempts, st.Comp = 0, ""
	})
}

// Skip makes a stuck saga take its failing compensation as done (an
// operator undid the effect by hand) and go on with the steps before it.
func (c *Coordinator) Skip(ctx context.Context, id string) error {
	return c.operate(ctx, id, EvOperatorSkip, func(in *Instance) {
		in.Steps[in.Step].Comp = compSkipped
		in.Step--
	})
}

// Abort ends a stuck saga as Aborted: nothing more is done for it.
func (c *Coordinator) Abort(ctx context.Context, id string) error {
	return c.operate(ctx, id, EvOperatorAbort, nil)
}

func (c *Coordinator) operate(ctx context.Context, id, kind string, change func(in *Instance)) error {
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		in, err := c.store.Lock(ctx, tx, id)
		if err != nil {
			return err
		}
		if in.Status != Stuck {
			return &NotStuckError{ID: id, Status: in.Status, Op: map[string]string{
				EvOperatorRetry: "retried", EvOperatorSkip: "skipped", EvOperatorAbort: "aborted"}[kind]}
		}
		now := time.Now().UTC()
		t := c.transition(tx, nil, in, now)
		step := ""
		if in.Step >= 0 && in.Step < len(in.Steps) {
			step = in.Steps[in.Step].Name
		}
		t.owner, t.epoch = "", 0
		t.event(kind, step, 0, 0, 0, "")
		if change == nil {
			in.Status, in.EndedAt, in.DueAt = Aborted, now, time.Time{}
		} else {
			change(in)
			in.Status, in.DueAt = Compensating, now
		}
		in.LeaseOwner, in.LeaseUntil = "", time.Time{}
		return t.finish(ctx)
	})
	var ns *NotStuckError
	if errors.As(err, &ns) {
		return err
	}
	if err != nil {
		return fmt.Errorf("saga: %s %s: %w", kind, id, err)
	}
	c.Wake()
	return nil
}

// Get returns a saga as stored.
func (c *Coordinator) Get(ctx context.Context, id string) (*Instance, error) {
	return c.store.Get(ctx, id)
}

// History returns the timeline of saga id: its transitions, each step's
// attempts with their errors and durations, its compensations, late
// replies and operator actions, in order. It is kept for the retention
// (WithRetention) after the saga ended.
func (c *Coordinator) History(ctx context.Context, id string) ([]Event, error) {
	if _, err := c.store.Get(ctx, id); err != nil {
		return nil, fmt.Errorf("saga: history %s: %w", id, err)
	}
	return c.store.History(ctx, id)
}

// ByCorrelation lists the sagas started with correlation id (WithCorrelation).
func (c *Coordinator) ByCorrelation(ctx context.Context, correlationID string) ([]Summary, error) {
	return c.store.ByCorrelation(ctx, correlationID)
}
