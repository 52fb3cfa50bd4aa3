// Package alert turns handoff's failure conditions into notifications: a
// consumer's first dead letter ([Manager.FirstDeadLetter], [DeadLetters]),
// a breaker opening ([Manager.OnStateChange], [Breakers]), an outbox
// backlog older than a threshold ([Backlog]), a relay holding no lease
// ([RelayLease] in the relay's process, [Unleased] from the database), a
// stuck saga ([Manager.SagaStuck], [StuckSagas]). Each is logged and sent to the
// configured webhooks (generic JSON, Slack-compatible, PagerDuty Events v2)
// as soon as it is seen, once per episode (deduplicated by key), retried with
// backoff, and resolved when the condition clears.
//
//	m, _ := alert.New([]alert.Notifier{slack, pd}, alert.WithLogger(log),
//		alert.WithCheck(alert.DeadLetters(letters, 30*time.Second)), // letters: the dead-letter store
//		alert.WithCheck(alert.Backlog("main", outbox, 5*time.Minute, 2*time.Second)))
//	q, _ := dlq.New(letters, dlq.WithAlerter(m))                  // the first letter, at once
//	b, _ := breaker.New("payments", breaker.WithStateListener(m)) // open, at once
//	go m.Run(ctx)
//
// Hooks see a condition at once; the checks re-read the source of truth on
// their interval, so an alert whose hook was missed (the process crashed
// between storing the letter and notifying) still goes out, and a condition
// that cleared is resolved. Without [WithState], what is firing is held
// in the process's memory: after a restart the checks fire what is still
// true again, and each process running the same checks sends its own copy.
// With WithState (a store of package alertstate: adapter/memory, or the
// SQL adapters' AlertState on the database the processes share), each
// episode of a shared alert is sent once by whichever process sees it
// first, is not sent again by a restarted process while it still holds,
// and is resolved once, by any process whose check sees it clear. Alerts
// of Local checks (a relay's leases) and of breakers stay per process. If
// the state store fails, alerts are sent as without it, so a receiver can
// then see one twice; every format carries the key (PagerDuty's dedup_key)
// to fold them.
//
// Webhooks go only to the URLs given to [NewWebhook]; redirects are not
// followed.
package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/handoffhq/handoff/alert/alertstate"
	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/saga"
)

// Status of an alert.
type Status string

// Statuses.
const (
	Firing   Status = "firing"
	Resolved Status = "resolved"
)

// Conditions the package's checks and hooks raise.
const (
	ConditionDeadLetter  = "dead_letter"    // a consumer has open dead letters
	ConditionBreakerOpen = "breaker_open"   // a breaker is open or half-open
	ConditionBacklog     = "outbox_backlog" // the oldest outbox row is older than the threshold
	ConditionNoLease     = "relay_no_lease" // a running relay holds no partition
	ConditionSagaStuck   = "saga_stuck"     // a saga's compensation kept failing (the coordinator's hook, or StuckSagas)
)

// Severities, as PagerDuty names them.
const (
	SeverityCritical = "critical"
	SeverityError    = "error"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Alert is one condition on one subject.
type Alert struct {
	Key       string            // dedup key: condition/subject unless set
	Condition string            // a Condition* constant, or the caller's
	Subject   string            // what it is about: a consumer, a breaker, an outbox
	Severity  string            // a Severity* constant (default error)
	Summary   string            // one line for people
	Details   map[string]string // extra fields, sent as they are
	Status    Status
	StartsAt  time.Time
	EndsAt    time.Time // set when resolved
}

func (a *Alert) normalise(now time.Time) {
	if a.Key == "" {
		a.Key = a.Condition + "/" + a.Subject
	}
	if a.Severity == "" {
		a.Severity = SeverityError
	}
	if a.StartsAt.IsZero() {
		a.StartsAt = now
	}
	a.Status = Firing
}

// Notifier delivers one alert (firing or resolved). An error wrapped by
// [Permanent] is not retried.
type Notifier interface {
	Notify(ctx context.Context, a Alert) error
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks a notifier's error as not worth retrying (a 4xx answer).
func Permanent(err error) error { return &permanentError{err} }

// Check re-reads a condition's source of truth every Every: Find returns the
// alerts of Condition that hold now. An alert of Condition that is firing
// and that Find no longer returns is resolved (unless it fired after Find
// started).
//
// A check reads a shared source (the database) unless Local is set. With
// [WithState], a shared check resolves the alerts of its Condition that
// any process fired and that no longer hold. A Local check reads what only
// its process sees (a relay's own leases, its breakers): its alerts are
// kept in this process's memory only, even with WithState, so their keys
// must name the process ([RelayLease]'s names the relay's owner), and only
// this process resolves them.
type Check struct {
	Condition string
	Every     time.Duration
	Find      func(ctx context.Context) ([]Alert, error)
	Local     bool
}

// Manager keeps what is firing and delivers changes. Create it with [New],
// start it with Run. It is a dlq.Alerter, a breaker.StateListener and a
// saga.Alerter.
type Manager struct {
	notifiers []Notifier
	checks    []Check
	log       *slog.Logger
	retry     retryPolicy
	state     alertstate.Store

	mu     sync.Mutex
	active map[string]entry
	queues []*queue
}

// entry is an alert this process knows to be firing; local: raised by a
// Local check or the breaker hook, kept out of the shared state.
type entry struct {
	a     Alert
	local bool
}

type retryPolicy struct {
	initial, max time.Duration
	attempts     int
}

// Option configures [New].
type Option func(*Manager) error

// WithLogger sets the logger alerts are logged to (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(m *Manager) error {
		if l == nil {
			return errors.New("alert: WithLogger: must not be nil")
		}
		m.log = l
		return nil
	}
}

// WithRetry sets the delivery retries: delays from initial doubling to max,
// at most attempts tries per notification (default 250ms, 30s, 10).
func WithRetry(initial, max time.Duration, attempts int) Option {
	return func(m *Manager) error {
		if initial <= 0 || max < initial || attempts < 1 {
			return fmt.Errorf("alert: WithRetry(%v, %v, %d): want 0 < initial <= max and attempts >= 1", initial, max, attempts)
		}
		m.retry = retryPolicy{initial, max, attempts}
		return nil
	}
}

// WithState makes the manager share what is firing with the other
// processes alerting on one system (the instances of handoff serve, the
// relays), and with its own next life: before notifying, it records the
// transition in s, and notifies only if s reports that it changed the
// state, so each episode of a shared alert is sent once whichever process
// sees it first, and a restarted process does not send again what is still
// firing. If s fails, the manager notifies as if it had no state (a
// duplicate beats a lost alert) and logs the failure. Alerts of Local
// checks and of breakers stay in memory.
func WithState(s alertstate.Store) Option {
	return func(m *Manager) error {
		if s == nil {
			return errors.New("alert: WithState: must not be nil")
		}
		m.state = s
		return nil
	}
}

// WithCheck adds a periodic check.
func WithCheck(c Check) Option {
	return func(m *Manager) error {
		switch {
		case c.Condition == "":
			return errors.New("alert: WithCheck: Condition: must not be empty")
		case c.Every <= 0:
			return fmt.Errorf("alert: WithCheck %s: Every: %v: must be positive", c.Condition, c.Every)
		case c.Find == nil:
			return fmt.Errorf("alert: WithCheck %s: Find: must not be nil", c.Condition)
		}
		m.checks = append(m.checks, c)
		return nil
	}
}

// New returns a manager delivering to notifiers (none: the log only).
func New(notifiers []Notifier, opts ...Option) (*Manager, error) {
	m := &Manager{notifiers: slices.Clone(notifiers), log: slog.Default(), active: map[string]entry{},
		retry: retryPolicy{250 * time.Millisecond, 30 * time.Second, 10}}
	for i, n := range m.notifiers {
		if n == nil {
			return nil, fmt.Errorf("alert: notifier %d: must not be nil", i)
		}
	}
	for _, o := range opts {
		if err := o(m); err != nil {
			return nil, err
		}
	}
	for range m.notifiers {
		m.queues = append(m.queues, newQueue())
	}
	return m, nil
}

// Fire raises a: logged and sent at once, unless an alert with its key is
// already firing (in this process, or, with [WithState], in the shared
// state).
func (m *Manager) Fire(a Alert) { m.fire(context.Background(), a, false) }

func (m *Manager) fire(ctx context.Context, a Alert, local bool) {
	a.normalise(time.Now())
	if local || m.state == nil {
		m.mu.Lock()
		if _, ok := m.active[a.Key]; ok {
			m.mu.Unlock()
			return
		}
		m.active[a.Key] = entry{a, local}
		m.enqueue(a)
		m.mu.Unlock()
		m.logFired(a)
		return
	}
	won, err := m.state.Fire(ctx, toRecord(a))
	m.mu.Lock()
	_, known := m.active[a.Key]
	if err != nil {
		won = !known
	}
	if !known || won {
		m.active[a.Key] = entry{a, false}
	}
	if won {
		m.enqueue(a)
	}
	m.mu.Unlock()
	switch {
	case err != nil:
		m.log.Warn("alert: shared state failed; deduplicating in this process only", "alert", a.Key, "err", err)
	case !won && !known:
		m.logSent(a.Key)
	}
	if won {
		m.logFired(a)
	}
}

func (m *Manager) logSent(key string) {
	m.log.Info("alert: firing, already sent by another process (or an earlier run of this one)", "alert", key)
}

func (m *Manager) logFired(a Alert) {
	m.log.Error("alert: "+a.Summary, "alert", a.Key, "condition", a.Condition, "subject", a.Subject, "severity", a.Severity)
}

// Resolve clears the alert with key, if it is firing (in this process, or,
// with [WithState], in the shared state): logged and sent.
func (m *Manager) Resolve(key string) { m.resolve(context.Background(), key) }

func (m *Manager) resolve(ctx context.Context, key string) {
	now := time.Now()
	m.mu.Lock()
	e, known := m.active[key]
	if m.state == nil || e.local {
		if !known {
			m.mu.Unlock()
			return
		}
		delete(m.active, key)
		m.mu.Unlock()
		m.resolved(e.a, now)
		return
	}
	m.mu.Unlock()
	r, won, err := m.state.Resolve(ctx, key, now)
	m.mu.Lock()
	delete(m.active, key)
	m.mu.Unlock()
	a := fromRecord(r)
	if err != nil {
		m.log.Warn("alert: shared state failed; resolving in this process only", "alert", key, "err", err)
		won, a = known, e.a
	}
	if won {
		m.resolved(a, now)
	} else if known {
		m.log.Info("alert: resolved by another process", "alert", key)
	}
}

func (m *Manager) resolved(a Alert, at time.Time) {
	a.Status, a.EndsAt = Resolved, at
	m.mu.Lock()
	m.enqueue(a)
	m.mu.Unlock()
	m.log.Info("alert resolved: "+a.Summary, "alert", a.Key, "condition", a.Condition, "subject", a.Subject,
		"after", a.EndsAt.Sub(a.StartsAt).Round(time.Millisecond))
}

func toRecord(a Alert) alertstate.Record {
	return alertstate.Record{Key: a.Key, Condition: a.Condition, Subject: a.Subject, Severity: a.Severity,
		Summary: a.Summary, Details: a.Details, FiredAt: a.StartsAt}
}

func fromRecord(r alertstate.Record) Alert {
	return Alert{Key: r.Key, Condition: r.Condition, Subject: r.Subject, Severity: r.Severity, Summary: r.Summary,
		Details: r.Details, Status: Firing, StartsAt: r.FiredAt}
}

// Active returns the alerts firing now, by key.
func (m *Manager) Active() []Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := slices.Sorted(maps.Keys(m.active))
	out := make([]Alert, 0, len(keys))
	for _, k := range keys {
		out = append(out, m.active[k].a)
	}
	return out
}

func (m *Manager) enqueue(a Alert) {
	for _, q := range m.queues {
		q.push(a)
	}
}

// FirstDeadLetter implements dlq.Alerter: the consumer's dead_letter alert.
func (m *Manager) FirstDeadLetter(ctx context.Context, l *dlq.Letter) {
	m.fire(ctx, deadLetterAlert(l.Consumer, 1, l), false)
}

func deadLetterAlert(consumer string, open int, l *dlq.Letter) Alert {
	a := Alert{Condition: ConditionDeadLetter, Subject: consumer, Severity: SeverityError,
		Summary: fmt.Sprintf("consumer %s has dead letters: inspect with `handoff dlq list --consumer %s`", consumer, consumer),
		Details: map[string]string{"consumer": consumer, "open": fmt.Sprint(open)}}
	if l != nil {
		a.Details["letter"], a.Details["topic"], a.Details["class"] = l.ID, l.Topic, l.Class
	}
	return a
}

// OnStateChange implements breaker.StateListener: breaker_open fires when a
// breaker opens and resolves when it closes again. A breaker is its
// process's own: its alert is local (see [Check]).
func (m *Manager) OnStateChange(c breaker.StateChange) {
	switch c.To {
	case breaker.Open:
		m.fire(context.Background(), breakerAlert(c.Name), true)
	case breaker.Closed:
		m.resolve(context.Background(), ConditionBreakerOpen+"/"+c.Name)
	}
}

// SagaStuck implements saga.Alerter (saga.WithAlerter(m)): the saga's
// name's saga_stuck alert, at once. It is resolved by a [StuckSagas] check
// when none of that name is stuck any more.
func (m *Manager) SagaStuck(ctx context.Context, a saga.Alert) error {
	m.fire(ctx, sagaAlert(a.Name, 0, &a), false)
	return nil
}

func breakerAlert(name string) Alert {
	return Alert{Condition: ConditionBreakerOpen, Subject: name, Severity: SeverityWarning,
		Summary: fmt.Sprintf("breaker %s is open: calls to it fail fast", name), Details: map[string]string{"breaker": name}}
}

// Run runs the checks and delivers notifications until ctx ends; it returns
// nil then. Notifications still queued are dropped (logged).
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i, n := range m.notifiers {
		wg.Go(func() { m.deliver(ctx, n, m.queues[i]) })
	}
	for _, c := range m.checks {
		wg.Go(func() { m.runCheck(ctx, c) })
	}
	wg.Wait()
	return nil
}

func (m *Manager) runCheck(ctx context.Context, c Check) {
	t := time.NewTicker(c.Every)
	defer t.Stop()
	for {
		m.check(ctx, c)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *Manager) check(ctx context.Context, c Check) {
	started := time.Now()
	cctx, cancel := context.WithTimeout(ctx, max(c.Every, 5*time.Second))
	found, err := c.Find(cctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("alert: check failed; its alerts stay as they are", "condition", c.Condition, "err", err)
		}
		return
	}
	shared := !c.Local && m.state != nil
	var firing map[string]alertstate.Record // nil: not read
	if shared {
		rs, err := m.state.Firing(ctx, c.Condition)
		if err != nil {
			m.log.Warn("alert: shared state failed; resolving what this process fired only", "condition", c.Condition, "err", err)
		} else {
			firing = map[string]alertstate.Record{}
			for _, r := range rs {
				firing[r.Key] = r
			}
		}
	}
	now := map[string]bool{}
	for _, a := range found {
		a.Condition = c.Condition
		a.normalise(started)
		now[a.Key] = true
		if r, ok := firing[a.Key]; ok { // notified already, here or elsewhere
			m.mu.Lock()
			_, known := m.active[a.Key]
			if !known {
				a.StartsAt = r.FiredAt
				m.active[a.Key] = entry{a, false}
			}
			m.mu.Unlock()
			if !known {
				m.logSent(a.Key)
			}
			continue
		}
		m.fire(ctx, a, c.Local)
	}
	var gone, forget []string
	for k, r := range firing {
		if !now[k] && r.FiredAt.Before(started) {
			gone = append(gone, k)
		}
	}
	m.mu.Lock()
	for k, e := range m.active {
		if e.a.Condition != c.Condition || e.local != c.Local || now[k] || !e.a.StartsAt.Before(started) {
			continue
		}
		if _, ok := firing[k]; firing != nil && !ok {
			forget = append(forget, k) // resolved by another process
		} else if firing == nil {
			gone = append(gone, k)
		}
	}
	for _, k := range forget {
		delete(m.active, k)
	}
	m.mu.Unlock()
	for _, k := range forget {
		m.log.Info("alert: resolved by another process", "alert", k)
	}
	for _, k := range gone {
		m.resolve(ctx, k)
	}
}

func (m *Manager) deliver(ctx context.Context, n Notifier, q *queue) {
	for {
		a, ok := q.pop(ctx)
		if !ok {
			if k := q.len(); k > 0 {
				m.log.Warn("alert: stopping with notifications undelivered", "count", k)
			}
			return
		}
		delay := m.retry.initial
		for try := 1; ; try++ {
			err := n.Notify(ctx, a)
			if err == nil {
				break
			}
			var pe *permanentError
			if ctx.Err() != nil || errors.As(err, &pe) || try >= m.retry.attempts {
				m.log.Error("alert: notification not delivered", "alert", a.Key, "status", a.Status, "tries", try, "err", err)
				break
			}
			m.log.Warn("alert: notification failed; retrying", "alert", a.Key, "status", a.Status, "try", try, "in", delay, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
			delay = min(delay*2, m.retry.max)
		}
	}
}

// queue is an unbounded FIFO of notifications for one notifier.
type queue struct {
	mu    sync.Mutex
	items []Alert
	ready chan struct{}
}

func newQueue() *queue { return &queue{ready: make(chan struct{}, 1)} }

func (q *queue) push(a Alert) {
	q.mu.Lock()
	q.items = append(q.items, a)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

func (q *queue) pop(ctx context.Context) (Alert, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 && ctx.Err() == nil {
			a := q.items[0]
			q.items = q.items[1:]
			q.mu.Unlock()
			return a, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return Alert{}, false
		case <-q.ready:
		}
	}
}
