package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff/adapter/mysql"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/alert"
	"github.com/handoffhq/handoff/alert/alertstate"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/metrics"
)

// checkEvery is how often the alert checks that read the database run
// (backlog, stuck sagas, unleased partitions): an alert goes out within
// this of its condition becoming true, well inside the 5 seconds the
// alerts promise. The dead-letter re-check is slower: the dlq hook sends
// a first letter at once, the re-check only catches one a crash lost.
const (
	checkEvery        = 2 * time.Second
	deadLetterRecheck = 30 * time.Second
)

// registerDB registers the flags of the checks that read the database.
func (f *observeFlags) registerDB(fs *flag.FlagSet) {
	fs.DurationVar(&f.noLease, "alert-no-lease", time.Minute,
		"alert when outbox rows have waited this long on partitions no relay holds a lease on (relay: when it has held none this long); 0: off (a WAL relay, which takes no leases)")
}

// sagaCounter returns d's saga store as what the saga gauge and the
// stuck-saga check read.
func sagaCounter(d *database) alert.SagaCounter {
	c, _ := d.sagaStore().(alert.SagaCounter)
	return c
}

// dbAlerts are the alert options of a process that sees the database: its
// checks (open dead letters, an old outbox backlog, stuck sagas, and,
// withLeases, for a process running no relay of its own, outbox
// partitions no relay leases) and the alert state shared through the
// database. Each check re-reads the database, so an alert whose hook a
// crash lost still goes out, and each resolves when its condition clears;
// the shared state makes the processes on one database (serve's
// instances, relays) send each episode once between them.
func dbAlerts(d *database, f observeFlags, withLeases bool) ([]alert.Option, error) {
	if f.noLease < 0 {
		return nil, fmt.Errorf("--alert-no-lease %v: must be >= 0 (0: off)", f.noLease)
	}
	checks := []alert.Check{
		alert.DeadLetters(d.dlqStore(), deadLetterRecheck),
		alert.Backlog("outbox", d.relayStore(), f.backlog, checkEvery),
	}
	if c := sagaCounter(d); c != nil {
		checks = append(checks, alert.StuckSagas(c, checkEvery))
	}
	if ls, ok := d.relayStore().(alert.LeaseSource); ok && withLeases && f.noLease > 0 {
		checks = append(checks, alert.Unleased("outbox", ls, f.noLease, checkEvery))
	}
	opts := []alert.Option{alert.WithState(d.alertState())}
	for _, c := range checks {
		opts = append(opts, alert.WithCheck(c))
	}
	return opts, nil
}

func (d *database) alertState() alertstate.Store {
	switch d.kind {
	case postgresDB:
		return postgres.AlertState(d.DB)
	case mysqlDB:
		return mysql.AlertState(d.DB)
	}
	return sqlite.AlertState(d.DB)
}

// dbMetrics registers the gauges read from the database: the outbox, the
// open dead letters and the unfinished sagas.
func dbMetrics(m *metrics.Metrics, d *database) error {
	errs := []error{m.Outbox("outbox", d.relayStore()), m.DeadLetters(d.dlqStore())}
	if c := sagaCounter(d); c != nil {
		errs = append(errs, m.Sagas(c))
	}
	return errors.Join(errs...)
}

// relayAlerting is handoff relay's alerting: the manager is made when the
// relay starts, once its own check (RelayLease) can be added.
type relayAlerting struct {
	notifiers []alert.Notifier
	opts      []alert.Option
	m         atomic.Pointer[alert.Manager]
}

// relayAlerts returns the alerting of a relay on d: the database's checks
// (without the unleased-partitions one: a relay sees its own leases).
func relayAlerts(d *database, f observeFlags, log *slog.Logger) (*relayAlerting, error) {
	notifiers, err := f.notifiers()
	if err != nil {
		return nil, err
	}
	opts, err := dbAlerts(d, f, false)
	if err != nil {
		return nil, err
	}
	return &relayAlerting{notifiers: notifiers, opts: append(opts, alert.WithLogger(log))}, nil
}

func (a *relayAlerting) add(c alert.Check) { a.opts = append(a.opts, alert.WithCheck(c)) }

// FirstDeadLetter is the dlq hook: the alert at once, while the relay runs.
func (a *relayAlerting) FirstDeadLetter(ctx context.Context, l *dlq.Letter) {
	if m := a.m.Load(); m != nil {
		m.FirstDeadLetter(ctx, l)
	}
}

// runWithAlerts runs the alert manager while run runs.
func runWithAlerts(ctx context.Context, a *relayAlerting, run func(context.Context) error) error {
	m, err := alert.New(a.notifiers, a.opts...)
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	a.m.Store(m)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx)
	}()
	err = run(ctx)
	cancel()
	<-done
	return err
}
