package saga_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/saga"
)

type backend struct {
	name  string
	db    *sql.DB
	store saga.Store
}

// backends returns a fresh PostgreSQL schema and SQLite file, migrated.
func backends(t *testing.T) []backend {
	t.Helper()
	ctx := context.Background()
	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "saga.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	if err := sqlite.Migrate(ctx, lite); err != nil {
		t.Fatal(err)
	}
	out := []backend{{"sqlite", lite, sqlite.SagaStore(lite)}}
	pg := testenv.Postgres(t)
	if err := postgres.Migrate(ctx, pg); err != nil {
		t.Fatal(err)
	}
	return append(out, backend{"postgres", pg, postgres.SagaStore(pg)})
}

func mustExec(t testing.TB, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
}

type order struct {
	ID      string `json:"id"`
	Charged bool   `json:"charged"`
}

// localSaga records each step's effect and undo as a row in effects; the
// step named in fail fails for good.
func localSaga(t testing.TB, fail string) *saga.Definition[order] {
	t.Helper()
	step := func(name string) saga.Step[order] {
		return saga.Step[order]{Name: name,
			Action: saga.Local(func(ctx context.Context, tx *sql.Tx, r *saga.Run[order]) error {
				if name == fail {
					return handoff.Permanent(errors.New(name + " refused"))
				}
				if name == "charge" {
					r.Data.Charged = true
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO effects (saga, what) VALUES ('`+r.SagaID+`', '`+name+`')`)
				return err
			}),
			Compensate: saga.Local(func(ctx context.Context, tx *sql.Tx, r *saga.Run[order]) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO effects (saga, what) VALUES ('`+r.SagaID+`', 'undo `+name+`')`)
				return err
			}),
			Retry: saga.Retry{MaxAttempts: 1}}
	}
	def, err := saga.Define("order", []saga.Step[order]{step("charge"), step("reserve"), step("confirm")})
	if err != nil {
		t.Fatal(err)
	}
	return def
}

func effects(t testing.TB, db *sql.DB, id string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT what FROM effects WHERE saga = '` + id + `' ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		out = append(out, s)
	}
	return out
}

func effectsTable(t testing.TB, b backend) {
	t.Helper()
	if b.name == "postgres" {
		mustExec(t, b.db, `CREATE TABLE effects (n BIGSERIAL PRIMARY KEY, saga TEXT, what TEXT)`)
	} else {
		mustExec(t, b.db, `CREATE TABLE effects (n INTEGER PRIMARY KEY AUTOINCREMENT, saga TEXT, what TEXT)`)
	}
}

func start[T any](t testing.TB, db *sql.DB, s *saga.Saga[T], data T, opts ...saga.StartOption) string {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.Start(context.Background(), tx, data, opts...)
	if err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return id
}

func kinds(evs []saga.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Kind+":"+e.Step)
	}
	return out
}

func TestSaga_LocalStepsCompleteInTheStartersTransaction(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			effectsTable(t, b)
			c, err := saga.New(b.store)
			if err != nil {
				t.Fatal(err)
			}
			s, err := saga.Register(c, localSaga(t, ""))
			if err != nil {
				t.Fatal(err)
			}
			id := start(t, b.db, s, order{ID: "o-1"}, saga.WithID("order-o-1"), saga.WithCorrelation("corr-1"))
			in, err := c.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if in.Status != saga.Completed || string(in.Data) != `{"id":"o-1","charged":true}` || in.LeaseOwner != "" {
				t.Fatalf("saga = %s data %s owner %q, want completed with the step's change to the data, no lease", in.Status, in.Data, in.LeaseOwner)
			}
			if got := effects(t, b.db, id); len(got) != 3 {
				t.Fatalf("effects = %v", got)
			}
			h, _ := b.store.History(context.Background(), id)
			want := []string{"started:", "step.done:charge", "step.done:reserve", "step.done:confirm", "completed:"}
			if got := kinds(h); len(got) != len(want) || got[4] != want[4] || got[1] != want[1] {
				t.Fatalf("history = %v, want %v", got, want)
			}
			// A rolled-back start leaves nothing: no saga, no effects.
			tx, _ := b.db.Begin()
			if _, err := s.Start(context.Background(), tx, order{ID: "o-2"}, saga.WithID("order-o-2")); err != nil {
				t.Fatal(err)
			}
			tx.Rollback()
			if _, err := c.Get(context.Background(), "order-o-2"); !errors.Is(err, saga.ErrNotFound) {
				t.Fatalf("after rollback: %v, want ErrNotFound", err)
			}
			if got := effects(t, b.db, "order-o-2"); len(got) != 0 {
				t.Fatalf("effects after rollback = %v", got)
			}
		})
	}
}

func TestSaga_FailedStepCompensatesCompletedStepsInReverse(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			effectsTable(t, b)
			c, _ := saga.New(b.store)
			s, err := saga.Register(c, localSaga(t, "confirm"))
			if err != nil {
				t.Fatal(err)
			}
			id := start(t, b.db, s, order{ID: "o-1"})
			in, _ := c.Get(context.Background(), id)
			got := effects(t, b.db, id)
			want := []string{"charge", "reserve", "undo reserve", "undo charge"}
			if in.Status != saga.Compensated || len(got) != 4 || got[2] != want[2] || got[3] != want[3] {
				t.Fatalf("saga %s, effects %v; want compensated, %v (no undo of confirm, which never ran)", in.Status, got, want)
			}
		})
	}
}

// sqliteMem opens an in-memory SQLite database inside a synctest bubble.
func sqliteMem(t *testing.T) backend {
	t.Helper()
	db, err := sqlite.Open(context.Background(), "file:"+testenv.Unique("m")+"?mode=memory&cache=shared")
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlite.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	b := backend{"sqlite", db, sqlite.SagaStore(db)}
	effectsTable(t, b)
	return b
}

func TestSaga_RetryDelaysAreDurableTimers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := sqliteMem(t)
		defer b.db.Close()
		var calls atomic.Int32
		def, err := saga.Define("flaky", []saga.Step[order]{{Name: "charge",
			Action: saga.Local(func(ctx context.Context, tx *sql.Tx, r *saga.Run[order]) error {
				if calls.Add(1) < 3 {
					return errors.New("busy")
				}
				return nil
			}),
			Retry: saga.Retry{MaxAttempts: 3, Backoff: saga.Backoff{Initial: 10 * time.Second, NoJitter: true}}}})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := saga.New(b.store, saga.WithPollInterval(time.Second))
		s, _ := saga.Register(c, def)
		t0 := time.Now()
		id := start(t, b.db, s, order{ID: "o"})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- c.Run(ctx) }()
		for {
			time.Sleep(time.Second)
			in, _ := c.Get(context.Background(), id)
			if in.Status == saga.Completed {
				break
			}
			if time.Since(t0) > time.Minute {
				t.Fatalf("not completed after a minute: %s", in.Status)
			}
		}
		// Delays 10s then 20s: the third attempt ran no earlier than 30s after the start.
		if el := time.Since(t0); el < 30*time.Second || calls.Load() != 3 {
			t.Fatalf("completed after %v with %d calls, want ≥30s and 3", el, calls.Load())
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

func TestSaga_CompensationThatKeepsFailingIsStuckWithAnAlert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := sqliteMem(t)
		defer b.db.Close()
		var fixed atomic.Bool
		var alerts atomic.Int32
		def, _ := saga.Define("stuck", []saga.Step[order]{
			{Name: "charge", Action: saga.Local(func(context.Context, *sql.Tx, *saga.Run[order]) error { return nil }),
				Compensate: saga.Local(func(context.Context, *sql.Tx, *saga.Run[order]) error {
					if !fixed.Load() {
						return errors.New("refund service down")
					}
					return nil
				}),
				CompensateRetry: saga.Retry{MaxAttempts: 4, Backoff: saga.Backoff{Initial: time.Second}}},
			{Name: "reserve", Action: saga.Local(func(context.Context, *sql.Tx, *saga.Run[order]) error {
				return handoff.Permanent(errors.New("out of stock"))
			})},
		})
		c, _ := saga.New(b.store, saga.WithAlerter(saga.AlerterFunc(func(ctx context.Context, a saga.Alert) error {
			if a.Step != "charge" || a.Attempts != 4 {
				t.Errorf("alert = %+v", a)
			}
			alerts.Add(1)
			return nil
		})))
		s, _ := saga.Register(c, def)
		id := start(t, b.db, s, order{ID: "o"})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- c.Run(ctx) }()
		wait := func(want saga.Status) {
			t.Helper()
			for range 600 {
				time.Sleep(time.Second)
				if in, _ := c.Get(context.Background(), id); in.Status == want && (want != saga.Stuck || alerts.Load() > 0) {
					return
				}
			}
			in, _ := c.Get(context.Background(), id)
			t.Fatalf("saga is %s, want %s", in.Status, want)
		}
		wait(saga.Stuck)
		time.Sleep(time.Minute) // nothing more happens to a stuck saga, and the alert is not repeated
		if n := alerts.Load(); n != 1 {
			t.Fatalf("alerts = %d, want 1", n)
		}
		if err := c.Retry(context.Background(), "nope"); !errors.Is(err, saga.ErrNotFound) {
			t.Fatalf("Retry of an unknown saga: %v", err)
		}
		fixed.Store(true)
		if err := c.Retry(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		wait(saga.Compensated)
		if err := c.Retry(context.Background(), id); !errors.Is(err, saga.ErrNotStuck) {
			t.Fatalf("Retry of a compensated saga: %v, want ErrNotStuck", err)
		}
		cancel()
		<-done
	})
}
