package saga_test

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/mysql"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/saga"
)

var longCrash = flag.Bool("saga.long", false, "run the long form of the saga crash test (200 kills)")

// crashSaga: a local step, a fork of two remote calls (an idempotent
// service keyed by the step's key, in its own table), a local step. Saga n fails at the last
// step when n%4 == 0; the first step's compensation fails for good when
// n%50 == 0 (the saga ends Stuck, with its alert).
func crashSaga(db *sql.DB, kind string, ph func(string) string) (*saga.Definition[int], error) {
	effect := func(what string) saga.Action[int] {
		return saga.Local(func(ctx context.Context, tx *sql.Tx, r *saga.Run[int]) error {
			if what == "s3" && r.Data%4 == 0 {
				return handoff.Permanent(errors.New("refused"))
			}
			if what == "undo s1" && r.Data%50 == 0 {
				return errors.New("cannot undo")
			}
			_, err := tx.ExecContext(ctx, ph(`INSERT INTO effects (saga, what) VALUES (?, ?)`), r.SagaID, what)
			return err
		})
	}
	remote := func(what string) saga.Action[int] {
		return saga.Call(func(ctx context.Context, r *saga.Run[int]) error {
			time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
			q := `INSERT INTO remote (k, saga, what) VALUES (?, ?, ?) ON CONFLICT (k) DO NOTHING`
			if kind == "mysql" {
				q = `INSERT IGNORE INTO remote (k, saga, what) VALUES (?, ?, ?)`
			}
			_, err := db.ExecContext(ctx, ph(q), r.Key, r.SagaID, what)
			return err
		})
	}
	fast := saga.Retry{MaxAttempts: 3, Backoff: saga.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}}
	return saga.Define("crash", []saga.Step[int]{
		{Name: "s1", Action: effect("s1"), Compensate: effect("undo s1"), Retry: fast, CompensateRetry: fast},
		saga.Parallel("fork",
			saga.Step[int]{Name: "s2", Action: remote("s2"), Compensate: remote("undo s2"), Retry: fast, CompensateRetry: fast, Timeout: 5 * time.Second},
			saga.Step[int]{Name: "s2b", Action: remote("s2b"), Compensate: remote("undo s2b"), Retry: fast, CompensateRetry: fast, Timeout: 5 * time.Second}),
		{Name: "s3", Action: effect("s3"), Compensate: effect("undo s3"), Retry: fast, CompensateRetry: fast},
	})
}

func openCrashDB(ctx context.Context, kind, dsn string) (*sql.DB, saga.Store, func(string) string, error) {
	if kind == "mysql" {
		db, err := mysql.Open(ctx, dsn)
		if err != nil {
			return nil, nil, nil, err
		}
		return db, mysql.SagaStore(db), func(q string) string { return q }, nil
	}
	if kind == "postgres" {
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, nil, nil, err
		}
		return db, postgres.SagaStore(db), func(q string) string { return pgq(backend{name: "postgres"}, q) }, nil
	}
	db, err := sqlite.Open(ctx, dsn)
	if err != nil {
		return nil, nil, nil, err
	}
	return db, sqlite.SagaStore(db), func(q string) string { return q }, nil
}

// TestSagaCrashChild is a coordinator process of the crash test.
func TestSagaCrashChild(t *testing.T) {
	spec := os.Getenv("HANDOFF_SAGA_CRASH_CHILD")
	if spec == "" {
		t.Skip("a child process of TestSaga_CrashTest")
	}
	kind, dsn, _ := strings.Cut(spec, "|")
	ctx := context.Background()
	db, store, ph, err := openCrashDB(ctx, kind, dsn)
	if err != nil {
		t.Fatal(err)
	}
	def, err := crashSaga(db, kind, ph)
	if err != nil {
		t.Fatal(err)
	}
	c, err := saga.New(store, saga.WithLease(time.Second), saga.WithPollInterval(50*time.Millisecond), saga.WithWorkers(4),
		saga.WithAlerter(saga.AlerterFunc(func(ctx context.Context, a saga.Alert) error {
			_, err := db.ExecContext(ctx, ph(`INSERT INTO alerts (saga) VALUES (?)`), a.SagaID)
			return err
		})))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := saga.Register(c, def); err != nil {
		t.Fatal(err)
	}
	t.Fatal(c.Run(ctx)) // runs until killed
}

// Sagas with random failures while coordinator processes are killed with
// SIGKILL at random moments, two running at once: every saga ends
// Completed, Compensated, or Stuck with its alert; no effect happens twice;
// no compensation runs for a step that never ran; no saga has two owners
// at once (the epochs of its transitions never go back).
func TestSaga_CrashTest(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	sagas, kills := 1000, 20
	if *longCrash {
		sagas, kills = 1000, 200
	}
	for _, kind := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			var dsn string
			switch kind {
			case "postgres":
				dsn = testenv.PostgresURL(t)
			case "mysql":
				dsn = testenv.MySQLDSN(t)
			default:
				dsn = filepath.Join(t.TempDir(), "crash.db")
			}
			db, store, ph, err := openCrashDB(ctx, kind, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			switch kind {
			case "postgres":
				err = postgres.Migrate(ctx, db)
			case "mysql":
				err = mysql.Migrate(ctx, db)
			default:
				err = sqlite.Migrate(ctx, db)
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range []string{`CREATE TABLE effects (saga VARCHAR(100) NOT NULL, what VARCHAR(50) NOT NULL)`,
				`CREATE TABLE remote (k VARCHAR(200) PRIMARY KEY, saga VARCHAR(100) NOT NULL, what VARCHAR(50) NOT NULL)`,
				`CREATE TABLE alerts (saga VARCHAR(100) NOT NULL)`} {
				mustExec(t, db, q)
			}
			def, _ := crashSaga(db, kind, ph)
			starter, _ := saga.New(store, saga.WithLease(time.Second))
			s, _ := saga.Register(starter, def)
			for n := range sagas {
				start(t, db, s, n, saga.WithID("s-"+strconv.Itoa(n)))
			}
			spawn := func() *exec.Cmd {
				cmd := exec.Command(os.Args[0], "-test.run=^TestSagaCrashChild$", "-test.count=1")
				cmd.Env = append(os.Environ(), "HANDOFF_SAGA_CRASH_CHILD="+kind+"|"+dsn)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				return cmd
			}
			procs := []*exec.Cmd{spawn(), spawn()}
			defer func() {
				for _, p := range procs {
					p.Process.Signal(syscall.SIGKILL)
					p.Wait()
				}
			}()
			pending := func() int {
				var n int
				db.QueryRow(`SELECT COUNT(*) FROM handoff_saga WHERE status IN ('running', 'compensating') OR (status = 'stuck' AND due_at IS NOT NULL)`).Scan(&n)
				return n
			}
			killed := 0
			deadline := time.Now().Add(3 * time.Minute)
			for killed < kills || pending() > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("after %d kills, %d sagas still unfinished", killed, pending())
				}
				time.Sleep(time.Duration(50+rand.IntN(250)) * time.Millisecond)
				if killed < kills {
					i := rand.IntN(2)
					procs[i].Process.Signal(syscall.SIGKILL)
					procs[i].Wait()
					procs[i] = spawn()
					killed++
				}
			}
			counts := map[saga.Status]int{}
			rows, _ := db.Query(`SELECT id, status FROM handoff_saga`)
			status := map[string]saga.Status{}
			for rows.Next() {
				var id, st string
				rows.Scan(&id, &st)
				status[id] = saga.Status(st)
				counts[saga.Status(st)]++
			}
			rows.Close()
			effects := map[string]int{}
			for _, q := range []string{`SELECT saga, what FROM effects`, `SELECT saga, what FROM remote`} {
				rows, _ := db.Query(q)
				for rows.Next() {
					var id, what string
					rows.Scan(&id, &what)
					effects[id+" "+what]++
				}
				rows.Close()
			}
			alerts := map[string]bool{}
			rows, _ = db.Query(`SELECT saga FROM alerts`)
			for rows.Next() {
				var id string
				rows.Scan(&id)
				alerts[id] = true
			}
			rows.Close()
			// A step whose attempts all failed in a way that may have left
			// its effect (a call that timed out or errored after it may
			// have reached the service) is compensated by design: the
			// saga cannot know that it never ran. Only such steps may be
			// undone without their effect.
			gaveUp := map[string]bool{}
			rows, _ = db.Query(ph(`SELECT saga_id, step FROM handoff_saga_events WHERE kind = ?`), saga.EvStepGaveUp)
			for rows.Next() {
				var id, step string
				rows.Scan(&id, &step)
				gaveUp[id+" "+step] = true
			}
			rows.Close()
			for k, n := range effects {
				if n > 1 {
					t.Errorf("effect %s happened %d times", k, n)
				}
				if id, what, ok := strings.Cut(k, " undo "); ok && effects[id+" "+what] == 0 && !gaveUp[id+" "+what] {
					t.Errorf("compensation %s ran for a step that never ran", k)
				}
			}
			takenOver := 0
			for n := range sagas {
				id := "s-" + strconv.Itoa(n)
				want := saga.Completed
				switch {
				case n%4 == 0 && n%50 == 0:
					want = saga.Stuck
				case n%4 == 0:
					want = saga.Compensated
				}
				if status[id] != want {
					t.Errorf("%s is %s, want %s", id, status[id], want)
				}
				if want == saga.Stuck && !alerts[id] {
					t.Errorf("%s is stuck without an alert", id)
				}
				if want == saga.Compensated && (effects[id+" undo s1"] != 1 || effects[id+" undo s2"] != 1 || effects[id+" undo s2b"] != 1 || effects[id+" s3"] != 0) {
					t.Errorf("%s compensated with effects s1=%d s2=%d s2b=%d s3=%d undo s1=%d undo s2=%d undo s2b=%d", id, effects[id+" s1"], effects[id+" s2"],
						effects[id+" s2b"], effects[id+" s3"], effects[id+" undo s1"], effects[id+" undo s2"], effects[id+" undo s2b"])
				}
				if want == saga.Completed && (effects[id+" s1"] != 1 || effects[id+" s2"] != 1 || effects[id+" s2b"] != 1 || effects[id+" s3"] != 1) {
					t.Errorf("%s completed with effects s1=%d s2=%d s2b=%d s3=%d", id, effects[id+" s1"], effects[id+" s2"], effects[id+" s2b"], effects[id+" s3"])
				}
				h, err := store.History(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				var epoch int64
				owners := map[int64]string{}
				for _, e := range h {
					if e.Owner == "" || e.Owner == starter.Owner() {
						continue
					}
					if e.Epoch < epoch {
						t.Errorf("%s: event %d (%s) by %s in epoch %d after epoch %d: two owners at once", id, e.Seq, e.Kind, e.Owner, e.Epoch, epoch)
					}
					if o, ok := owners[e.Epoch]; ok && o != e.Owner {
						t.Errorf("%s: epoch %d has owners %s and %s", id, e.Epoch, o, e.Owner)
					}
					owners[e.Epoch], epoch = e.Owner, e.Epoch
				}
				if len(owners) > 1 {
					takenOver++
				}
			}
			if takenOver == 0 {
				t.Errorf("no saga was worked on by two coordinators: the kills hit no work in progress")
			}
			fmt.Fprintf(os.Stderr, "saga crash test %s: %d sagas, %d SIGKILLs: %d completed, %d compensated, %d stuck (alerts %d); %d sagas moved on by more than one coordinator\n",
				kind, sagas, killed, counts[saga.Completed], counts[saga.Compensated], counts[saga.Stuck], len(alerts), takenOver)
		})
	}
}
