package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/handoffhq/handoff/adapter/mysql"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/alert"
	"github.com/handoffhq/handoff/metrics"
	"github.com/handoffhq/handoff/saga"
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
		"alert when outbox rows have waited this long on partitions no relay holds a lease on")
}

// sagaCounter returns d's saga store as what the saga gauge and the
// stuck-saga check read.
func sagaCounter(d *database) alert.SagaCounter {
	var s saga.Store
	switch d.kind {
	case postgresDB:
		s = postgres.SagaStore(d.DB)
	case mysqlDB:
		s = mysql.SagaStore(d.DB)
	default:
		s = sqlite.SagaStore(d.DB)
	}
	c, _ := s.(alert.SagaCounter)
	return c
}

// dbAlertChecks are the alert checks of a process that sees the database:
// open dead letters, an old outbox backlog, stuck sagas, and (withLeases,
// for a process running no relay of its own) outbox partitions no relay
// leases. Each re-reads the database, so an alert whose hook a crash lost
// still goes out, and each resolves when its condition clears.
func dbAlertChecks(d *database, f observeFlags, withLeases bool) ([]alert.Check, error) {
	if f.noLease <= 0 {
		return nil, fmt.Errorf("--alert-no-lease %v: must be > 0", f.noLease)
	}
	checks := []alert.Check{
		alert.DeadLetters(d.dlqStore(), deadLetterRecheck),
		alert.Backlog("outbox", d.relayStore(), f.backlog, checkEvery),
	}
	if c := sagaCounter(d); c != nil {
		checks = append(checks, alert.StuckSagas(c, checkEvery))
	}
	if ls, ok := d.relayStore().(alert.LeaseSource); ok && withLeases {
		checks = append(checks, alert.Unleased("outbox", ls, f.noLease, checkEvery))
	}
	return checks, nil
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
