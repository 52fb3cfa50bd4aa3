package main

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/inbox"
)

// limit is one ceiling measurement.
type limit struct {
	name     string
	rate     float64
	cpuBusy  float64
	s        sampler
	n        int
	perFlush float64 // messages per WAL flush, filled by limits
}

// limits measures, once each, the parts of handoff's consumer on their own:
// the inbox transaction without a broker (also with synchronous_commit off,
// and Watermill's transaction without the inbox mark), and the consumer
// runtime on JetStream with a handler that does nothing.
func (e *env) limits(ctx context.Context) ([]limit, error) {
	var out []limit
	for _, v := range []struct {
		name  string
		inbox bool
		param string
	}{
		{"tx only: inbox mark + insert, no broker", true, ""},
		{"tx only: inbox mark + insert, synchronous_commit=off", true, "&synchronous_commit=off"},
		{"tx only: insert alone (Watermill's tx), no broker", false, ""},
	} {
		w0 := e.walSync(ctx)
		l, err := e.txOnly(ctx, v.name, v.inbox, v.param)
		if err != nil {
			return nil, err
		}
		time.Sleep(600 * time.Millisecond)
		if w := e.walSync(ctx) - w0; w > 0 {
			l.perFlush = float64(l.n) / float64(w)
		}
		out = append(out, l)
	}

	w0 := e.walSync(ctx)
	l, err := e.txBatched(ctx, 32)
	if err != nil {
		return nil, err
	}
	time.Sleep(600 * time.Millisecond)
	if w := e.walSync(ctx) - w0; w > 0 {
		l.perFlush = float64(l.n) / float64(w)
	}
	out = append(out, l)

	// The runtime and JetStream alone: same consumer, handler acks at once.
	name := e.next("hn")
	dsn, drop, err := e.schema(ctx, name)
	if err != nil {
		return nil, err
	}
	defer drop()
	rec := newRecorder(e.cfg.n, false)
	w := workload{cfg: e.cfg, topic: "bench." + name, dsn: dsn, n: e.cfg.n, rec: rec}
	s := sampler{admin: e.admin}
	noop := handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
		rec.committed(nil)
		return nil
	})
	if err := runHandoffWith(ctx, w, &s, noop); err != nil {
		return nil, err
	}
	out = append(out, limit{"handoff consumer on JetStream, no-op handler (no DB)", float64(e.cfg.n) / s.elapsed.Seconds(), s.busy, s, e.cfg.n, 0})
	return out, nil
}

// txOnly runs n inbox transactions (or bare inserts) from the same number
// of goroutines as the consumer's workers.
func (e *env) txOnly(ctx context.Context, label string, withInbox bool, param string) (limit, error) {
	name := e.next("tx")
	dsn, drop, err := e.schema(ctx, name)
	if err != nil {
		return limit{}, err
	}
	defer drop()
	db, err := postgres.Open(ctx, dsn+param)
	if err != nil {
		return limit{}, err
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db); err != nil {
		return limit{}, err
	}
	in, err := inbox.New(postgres.InboxStore(db), "bench")
	if err != nil {
		return limit{}, err
	}
	rec := newRecorder(e.cfg.n, false)
	h := handoffHandler(in, rec, 1)
	msgs := make([]*handoff.Message, e.cfg.n)
	ts := time.Now().UnixNano()
	for i := range msgs {
		msgs[i] = handoffMessage(e.cfg, i, ts)
	}
	work := make(chan *handoff.Message)
	errs := make(chan error, e.cfg.workers)
	var wg sync.WaitGroup
	s := sampler{admin: e.admin}
	s.start()
	for range e.cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range work {
				var err error
				if withInbox {
					err = h.Handle(ctx, m)
				} else {
					err = bareInsert(ctx, db, m)
					rec.committed(nil)
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, m := range msgs {
		work <- m
	}
	close(work)
	wg.Wait()
	s.stop()
	close(errs)
	if err := <-errs; err != nil {
		return limit{}, fmt.Errorf("%s: %w", label, err)
	}
	r := result{n: e.cfg.n}
	if err := e.check(ctx, name, &r); err != nil {
		return limit{}, err
	}
	return limit{label, float64(e.cfg.n) / s.elapsed.Seconds(), s.busy, s, e.cfg.n, 0}, nil
}

func bareInsert(ctx context.Context, db *sql.DB, m *handoff.Message) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, insertRow, m.ID, m.Data); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// txBatched measures what grouping would allow (handoff does not do it):
// batch messages per transaction, each in its own savepoint with its inbox
// mark and insert, from the same number of goroutines as the workers.
func (e *env) txBatched(ctx context.Context, batch int) (limit, error) {
	label := fmt.Sprintf("tx only: %d msgs per tx, savepoint each (not in handoff)", batch)
	name := e.next("tb")
	dsn, drop, err := e.schema(ctx, name)
	if err != nil {
		return limit{}, err
	}
	defer drop()
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		return limit{}, err
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db); err != nil {
		return limit{}, err
	}
	store := postgres.InboxStore(db)
	ts := time.Now().UnixNano()
	work := make(chan []*handoff.Message)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	s := sampler{admin: e.admin}
	s.start()
	for range e.cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ms := range work {
				if err := savepointBatch(ctx, db, store, ms); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := 0; i < e.cfg.n; i += batch {
		ms := make([]*handoff.Message, 0, batch)
		for j := i; j < min(i+batch, e.cfg.n); j++ {
			ms = append(ms, handoffMessage(e.cfg, j, ts))
		}
		work <- ms
	}
	close(work)
	wg.Wait()
	s.stop()
	close(errs)
	if err := <-errs; err != nil {
		return limit{}, fmt.Errorf("%s: %w", label, err)
	}
	r := result{n: e.cfg.n}
	if err := e.check(ctx, name, &r); err != nil {
		return limit{}, err
	}
	return limit{label, float64(e.cfg.n) / s.elapsed.Seconds(), s.busy, s, e.cfg.n, 0}, nil
}

func savepointBatch(ctx context.Context, db *sql.DB, store inbox.Store[*sql.Tx], ms []*handoff.Message) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, m := range ms {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT m"); err != nil {
			return err
		}
		fresh, err := store.Mark(ctx, tx, "bench", m.ID)
		if err != nil {
			return err
		}
		if fresh[0] {
			if _, err := tx.ExecContext(ctx, insertRow, m.ID, m.Data); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT m"); err != nil {
			return err
		}
	}
	return tx.Commit()
}
