package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Checker is a broker that can say whether it is reachable now. The relay
// checks a publisher that implements it when it starts, and then on every
// stats round, so that an unreachable broker is logged (with the cause and
// the address the adapter's error names) even while there is nothing to
// publish. The broker adapters' clients implement it; telemetry.Publisher
// passes it through.
type Checker interface {
	Check(ctx context.Context) error
}

// The parts the relay depends on, as its outage logs and Health name them.
const (
	PartBroker   = "broker"
	PartDatabase = "database"
)

// partError attributes an error to the part that failed.
type partError struct {
	part string
	err  error
}

func (e *partError) Error() string { return e.err.Error() }
func (e *partError) Unwrap() error { return e.err }

func onPart(part string, err error) error {
	if err == nil {
		return nil
	}
	var pe *partError
	if errors.As(err, &pe) {
		return err
	}
	return &partError{part: part, err: err}
}

// partOf returns the part an error is attributed to (the broker, unless a
// store call failed).
func partOf(err error) string {
	var pe *partError
	if errors.As(err, &pe) {
		return pe.part
	}
	return PartBroker
}

// outages tracks the parts that are down and logs them: the first failure
// at once, with its cause, then a reminder at most every interval while it
// lasts, then the recovery with how long it lasted.
type outages struct {
	r     *Relay
	mu    sync.Mutex
	every time.Duration
	down  map[string]*outage
}

type outage struct {
	since, logged time.Time
	failures      int
	err           error
}

func (o *outages) failed(part string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	d := o.down[part]
	if d == nil {
		o.down[part] = &outage{since: now, logged: now, failures: 1, err: err}
		o.r.log.Error("relay: "+part+" unreachable; retrying with backoff", "relay", o.r.owner, "err", err)
		return
	}
	d.failures++
	d.err = err
	if now.Sub(d.logged) >= o.every {
		d.logged = now
		o.r.log.Error("relay: "+part+" still unreachable", "relay", o.r.owner, "for", now.Sub(d.since).Round(time.Second),
			"failures", d.failures, "err", err)
	}
}

func (o *outages) recovered(part string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	d := o.down[part]
	if d == nil {
		return
	}
	delete(o.down, part)
	o.r.log.Info("relay: "+part+" reachable again", "relay", o.r.owner, "after", time.Since(d.since).Round(time.Millisecond),
		"failures", d.failures)
}

// health returns nil, or an error naming each part that is down and why.
func (o *outages) health() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var errs []error
	for _, part := range []string{PartDatabase, PartBroker} {
		if d := o.down[part]; d != nil {
			errs = append(errs, fmt.Errorf("%s unreachable for %v: %w", part, time.Since(d.since).Round(time.Second), d.err))
		}
	}
	return errors.Join(errs...)
}

// Health returns nil while the relay reaches its database and its broker,
// else an error naming each part that is down ("database", "broker"), since
// when, and the last cause. Serve it on a health endpoint.
func (r *Relay) Health() error { return r.outages.health() }

// Progress is what a relay did since Run started, and the outbox's state
// at the last stats round.
type Progress struct {
	Started      time.Time     // when Run started (zero before)
	Published    int64         // rows published (and deleted) since then
	DeadLettered int64         // rows the broker refused for good, dead-lettered
	Pending      int           // rows waiting, at the last stats round (-1: not measured yet)
	OldestAge    time.Duration // age of the oldest waiting row then
	Held         int           // refused rows holding their keys then (their letters are open)
	Partitions   int           // partitions held now
}

// Rate is the mean number of rows published per second since Run started.
func (p Progress) Rate() float64 {
	if p.Started.IsZero() {
		return 0
	}
	secs := time.Since(p.Started).Seconds()
	if secs <= 0 {
		return 0
	}
	return float64(p.Published) / secs
}

// Progress returns a snapshot of what the relay did since Run started.
func (r *Relay) Progress() Progress {
	r.pmu.Lock()
	defer r.pmu.Unlock()
	p := r.progress
	p.Published = r.published.Load()
	p.DeadLettered = r.deadLettered.Load()
	return p
}

// logProgress writes the periodic progress line: rows published per second
// over the last interval, the backlog and the age of its oldest row.
func (r *Relay) logProgress(prevPublished int64, prevAt time.Time) {
	p := r.Progress()
	rate := 0.0
	if secs := time.Since(prevAt).Seconds(); secs > 0 {
		rate = float64(p.Published-prevPublished) / secs
	}
	r.log.Info("relay: progress", "relay", r.owner, "published", p.Published, "per_second", fmt.Sprintf("%.1f", rate),
		"backlog", p.Pending, "oldest", p.OldestAge.Round(time.Millisecond), "held_keys", p.Held,
		"dead_lettered", p.DeadLettered, "partitions", p.Partitions)
}
