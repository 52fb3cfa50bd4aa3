package alert

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/handoffhq/handoff/breaker"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/relay"
	"github.com/handoffhq/handoff/saga"
)

// LetterLister is what [DeadLetters] reads: *dlq.Queue and every dlq.Store
// are one.
type LetterLister interface {
	List(ctx context.Context, f dlq.Filter) ([]*dlq.Letter, error)
}

// DeadLetters re-reads the open letters every every: a consumer with any
// fires dead_letter (so a first letter whose hook was lost in a crash is
// still seen), and one whose letters were all replayed, purged or deleted
// resolves. It reads pages of 1,000 letters, up to 100,000.
func DeadLetters(src LetterLister, every time.Duration) Check {
	return Check{Condition: ConditionDeadLetter, Every: every, Find: func(ctx context.Context) ([]Alert, error) {
		open := map[string]int{}
		first := map[string]*dlq.Letter{}
		f := dlq.Filter{State: dlq.StateOpen, Limit: 1000}
		for seen := 0; seen < 100_000; {
			ls, err := src.List(ctx, f)
			if err != nil {
				return nil, fmt.Errorf("dead letters: %w", err)
			}
			for _, l := range ls {
				open[l.Consumer]++
				if first[l.Consumer] == nil {
					first[l.Consumer] = l
				}
			}
			seen += len(ls)
			if len(ls) < f.Limit {
				break
			}
			f.After = ls[len(ls)-1].ID
		}
		var out []Alert
		for c, n := range open {
			out = append(out, deadLetterAlert(c, n, first[c]))
		}
		return out, nil
	}}
}

// StatsSource is what [Backlog] reads: relay.Store is one.
type StatsSource interface {
	Stats(ctx context.Context) (relay.Stats, error)
}

// Backlog fires outbox_backlog (subject name) while the oldest pending row
// of src is older than threshold, checked every every.
func Backlog(name string, src StatsSource, threshold, every time.Duration) Check {
	return Check{Condition: ConditionBacklog, Every: every, Find: func(ctx context.Context) ([]Alert, error) {
		st, err := src.Stats(ctx)
		if err != nil {
			return nil, fmt.Errorf("outbox %s: %w", name, err)
		}
		if st.Oldest.IsZero() {
			return nil, nil
		}
		age := time.Since(st.Oldest)
		if age <= threshold {
			return nil, nil
		}
		return []Alert{{Subject: name, Severity: SeverityCritical,
			Summary: fmt.Sprintf("outbox %s: the oldest of %d pending rows is %v old (threshold %v): is a relay running and the broker reachable?",
				name, st.Pending, age.Round(time.Second), threshold),
			Details: map[string]string{"outbox": name, "pending": fmt.Sprint(st.Pending), "oldest_age_seconds": fmt.Sprintf("%.0f", age.Seconds())}}}, nil
	}}
}

// Breakers fires breaker_open for each breaker not closed, checked every
// every: the re-check of the breakers' state listener (see
// Manager.OnStateChange).
func Breakers(every time.Duration, bs ...*breaker.Breaker) Check {
	return Check{Condition: ConditionBreakerOpen, Every: every, Local: true, Find: func(context.Context) ([]Alert, error) {
		var out []Alert
		for _, b := range bs {
			if b.State() != breaker.Closed {
				out = append(out, breakerAlert(b.Name()))
			}
		}
		return out, nil
	}}
}

// ProgressSource is what [RelayLease] reads: *relay.Relay is one.
type ProgressSource interface {
	Progress() relay.Progress
	Owner() string
}

// RelayLease fires relay_no_lease while the relay has been running for
// longer than grace and has held no partition for that long (checked every
// every). Run no more relays than the outbox has partitions, or the
// extra ones hold none by design and fire this.
func RelayLease(r ProgressSource, grace, every time.Duration) Check {
	var lastHeld time.Time
	return Check{Condition: ConditionNoLease, Every: every, Local: true, Find: func(context.Context) ([]Alert, error) {
		p := r.Progress()
		now := time.Now()
		if p.Started.IsZero() || p.Partitions > 0 {
			lastHeld = now
			return nil, nil
		}
		if lastHeld.Before(p.Started) {
			lastHeld = p.Started
		}
		if now.Sub(lastHeld) <= grace {
			return nil, nil
		}
		return []Alert{{Subject: r.Owner(), Severity: SeverityCritical,
			Summary: fmt.Sprintf("relay %s has held no outbox partition for %v: is the database reachable, or are there more relays than partitions?",
				r.Owner(), now.Sub(lastHeld).Round(time.Second)),
			Details: map[string]string{"relay": r.Owner()}}}, nil
	}}
}

// SagaCounter is what [StuckSagas] reads: the SQL saga stores
// (adapter/postgres, sqlite, mysql SagaStore) have this method.
type SagaCounter interface {
	CountsByName(ctx context.Context) ([]saga.Count, error)
}

// StuckSagas fires saga_stuck (subject: the saga's name) while any saga of
// that name is Stuck in src, checked every every, and resolves it when an
// operator has retried, skipped or aborted them all. It is the re-check of
// the coordinator's hook (see [Manager.SagaStuck]): a stuck saga whose
// hook was lost in a crash still alerts.
func StuckSagas(src SagaCounter, every time.Duration) Check {
	return Check{Condition: ConditionSagaStuck, Every: every, Find: func(ctx context.Context) ([]Alert, error) {
		counts, err := src.CountsByName(ctx)
		if err != nil {
			return nil, fmt.Errorf("sagas: %w", err)
		}
		stuck := map[string]int{}
		var names []string
		for _, c := range counts {
			if c.Status == saga.Stuck && c.Sagas > 0 {
				if stuck[c.Name] == 0 {
					names = append(names, c.Name)
				}
				stuck[c.Name] += c.Sagas
			}
		}
		out := make([]Alert, 0, len(names))
		for _, n := range names {
			out = append(out, sagaAlert(n, stuck[n], nil))
		}
		return out, nil
	}}
}

func sagaAlert(name string, n int, a *saga.Alert) Alert {
	al := Alert{Condition: ConditionSagaStuck, Subject: name, Severity: SeverityCritical,
		Summary: fmt.Sprintf("saga %s has stuck instances (a compensation kept failing): see `handoff saga list --status stuck`, then retry, skip or abort", name),
		Details: map[string]string{"saga": name}}
	if n > 0 {
		al.Details["stuck"] = fmt.Sprint(n)
	}
	if a != nil {
		al.Details["saga_id"], al.Details["step"], al.Details["error"] = a.SagaID, a.Step, a.Error
	}
	return al
}

// LeaseSource is what [Unleased] reads: the SQL relay stores
// (adapter/postgres, sqlite, mysql RelayStore) have this method. It
// returns, per outbox partition with pending rows and no live lease, since
// when its oldest row has waited uncovered.
type LeaseSource interface {
	Unleased(ctx context.Context) (map[int]time.Time, error)
}

// Unleased fires relay_no_lease (subject name) while some partition of the
// outbox src has had pending rows and no live relay lease for longer than
// grace, checked every every: the database's view of a missing relay,
// for a process that runs none itself (handoff serve). A relay's own view
// is [RelayLease].
func Unleased(name string, src LeaseSource, grace, every time.Duration) Check {
	return Check{Condition: ConditionNoLease, Every: every, Find: func(ctx context.Context) ([]Alert, error) {
		un, err := src.Unleased(ctx)
		if err != nil {
			return nil, fmt.Errorf("outbox %s: %w", name, err)
		}
		now := time.Now()
		var parts []int
		var since time.Time
		for p, t := range un {
			if now.Sub(t) > grace {
				parts = append(parts, p)
				if since.IsZero() || t.Before(since) {
					since = t
				}
			}
		}
		if len(parts) == 0 {
			return nil, nil
		}
		slices.Sort(parts)
		return []Alert{{Subject: name, Severity: SeverityCritical,
			Summary: fmt.Sprintf("outbox %s: %d partitions have had pending rows and no relay lease for up to %v: is a relay running (handoff relay)?",
				name, len(parts), now.Sub(since).Round(time.Second)),
			Details: map[string]string{"outbox": name, "partitions": fmt.Sprint(parts), "uncovered_seconds": fmt.Sprintf("%.0f", now.Sub(since).Seconds())}}}, nil
	}}
}
