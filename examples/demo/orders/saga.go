package orders

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/saga"
)

const (
	// SagaName is the demo's order saga: reserve the stock, charge the
	// card, confirm the order; when the order cannot be confirmed, the
	// charge is refunded and the stock released.
	SagaName = "demo-order"
	// StuckSagaID is the saga the demo starts once per database for a
	// customer on hold: its confirmation fails for good, and its refund
	// fails until an operator retries it (handoff saga retry), so that
	// right after start handoff saga list --status stuck shows one.
	StuckSagaID = "demo-order-on-hold"
	// SagaOrders is how many orders of a run the producer starts an order
	// saga for (in the order's transaction).
	SagaOrders = 3
)

// sagaTables are the tables the order saga's local steps write; made
// before any part runs, as the other demo tables.
var sagaTables = []string{
	`CREATE TABLE IF NOT EXISTS demo_stock (order_id TEXT PRIMARY KEY, status TEXT NOT NULL)`,
}

// orderSaga defines the demo's order saga. Its stock steps are local:
// each runs in the coordinator's transaction on the demo's database. The
// card is charged and refunded by calls to a payment provider (played
// here by the flow itself), outside any transaction. c is the coordinator
// it is registered with (the refund reads the saga's history through it).
func orderSaga(c **saga.Coordinator) (*saga.Definition[Order], error) {
	stock := func(q string) saga.Action[Order] {
		return saga.Local(func(ctx context.Context, tx *sql.Tx, r *saga.Run[Order]) error {
			_, err := tx.ExecContext(ctx, q, r.Data.Order)
			return err
		})
	}
	return saga.Define(SagaName, []saga.Step[Order]{
		{Name: "reserve-stock",
			Action:     stock(`INSERT OR REPLACE INTO demo_stock (order_id, status) VALUES (?, 'held')`),
			Compensate: stock(`UPDATE demo_stock SET status = 'released' WHERE order_id = ?`)},
		{Name: "charge-card",
			Action: saga.Call(func(ctx context.Context, r *saga.Run[Order]) error { return nil }),
			// The payment provider holds a refund to a customer on hold
			// until a person has looked at it: it fails until the saga's
			// history has an operator's retry. Three quick attempts, then
			// the saga is stuck. (A call runs outside the coordinator's
			// transaction, so reading the history holds no lock.)
			Compensate: saga.Call(func(ctx context.Context, r *saga.Run[Order]) error {
				if r.Data.Customer != Blocked {
					return nil
				}
				h, err := (*c).History(ctx, r.SagaID)
				if err != nil {
					return err
				}
				for _, e := range h {
					if e.Kind == saga.EvOperatorRetry {
						return nil
					}
				}
				return fmt.Errorf("payment provider: a refund to customer %s needs an operator's look; once looked at, run: handoff saga retry %s", r.Data.Customer, r.SagaID)
			}),
			CompensateRetry: saga.Retry{MaxAttempts: 3, Backoff: saga.Backoff{Initial: 100 * time.Millisecond, Max: time.Second}}},
		{Name: "confirm",
			Action: saga.Local(func(ctx context.Context, tx *sql.Tx, r *saga.Run[Order]) error {
				if r.Data.Customer == Blocked {
					return handoff.Permanent(fmt.Errorf("customer %s is on hold: the order cannot be confirmed", r.Data.Customer))
				}
				_, err := tx.ExecContext(ctx, `UPDATE demo_stock SET status = 'confirmed' WHERE order_id = ?`, r.Data.Order)
				return err
			})},
	}, saga.WithVersion("1"))
}

// sagas makes the coordinator and registers the order saga on it.
func (f *Flow) sagas() (*saga.Coordinator, *saga.Saga[Order], error) {
	var c *saga.Coordinator
	def, err := orderSaga(&c)
	if err != nil {
		return nil, nil, fmt.Errorf("orders: %w", err)
	}
	c, err = saga.New(sqlite.SagaStore(f.cfg.DB), saga.WithOwner("demo-orders"), saga.WithLogger(f.cfg.Logger))
	if err != nil {
		return nil, nil, fmt.Errorf("orders: %w", err)
	}
	s, err := saga.Register(c, def)
	if err != nil {
		return nil, nil, fmt.Errorf("orders: %w", err)
	}
	return c, s, nil
}

// runSagas runs the coordinator. A database holding demo sagas of a
// version this flow does not have is no reason to stop the demo: it says
// so and leaves them.
func (f *Flow) runSagas(ctx context.Context, c *saga.Coordinator) error {
	err := c.Run(ctx)
	var ve *saga.VersionError
	if errors.As(err, &ve) {
		f.cfg.Logger.Warn("demo: the order sagas do not run: the database has some of another version", "err", err)
		return nil
	}
	return err
}

// stuckSaga starts, once per database (the saga's id is the mark), the
// order saga of a customer on hold, which ends up stuck until an operator
// retries it.
func (f *Flow) stuckSaga(ctx context.Context, s *saga.Saga[Order], c *saga.Coordinator) error {
	switch _, err := c.Get(ctx, StuckSagaID); {
	case err == nil:
		f.cfg.Logger.Info("demo: the order saga of the customer on hold was started before (once per database)", "saga", StuckSagaID)
		return nil
	case !errors.Is(err, saga.ErrNotFound):
		if ctx.Err() == nil {
			f.cfg.Logger.Warn("demo: could not look for the order saga of the customer on hold; not starting it", "err", err)
		}
		return nil
	}
	o := Order{Order: fmt.Sprintf("o-%d-on-hold", time.Now().Unix()), Customer: Blocked, Total: 25}
	if err := f.write(ctx, func(tx *sql.Tx) error {
		_, err := s.Start(ctx, tx, o, saga.WithID(StuckSagaID))
		return err
	}); err != nil || ctx.Err() != nil {
		return err
	}
	f.cfg.Logger.Info("demo: started an order saga whose refund fails until an operator retries it; see it with: go run ./cmd/handoff saga list --status stuck", "saga", StuckSagaID)
	return nil
}

// write runs fn in a transaction on the demo's database and commits it,
// trying again while the database is busy. SQLite has one writer, and its
// busy timeout is wall-clock time: in a process short of CPU (a loaded
// machine, a nice'd test), the writers beside this one (the producer, the
// relay, the consumer's inbox, the sagas) can hold the lock past it. That
// is no reason to stop the demo, or handoff dev around it: wait for the
// lock and try again, as the producer goes on after a failed order. It
// returns nil when ctx ends.
func (f *Flow) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	once := func() error {
		tx, err := f.cfg.DB.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if err := fn(tx); err != nil {
			return err
		}
		return tx.Commit()
	}
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err := once()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if !sqlite.IsConflict(err) {
			return err
		}
		f.cfg.Logger.Warn("demo: the database is busy (SQLite has one writer); trying again", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}
