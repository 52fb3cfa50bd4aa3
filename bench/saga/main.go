// Command saga measures handoff's saga coordinator on PostgreSQL: three-step
// sagas with local steps, completed sagas per second and the p50/p99 saga
// duration (start to completed), with a given number of other sagas in
// flight (waiting on a reply, with timers due in an hour), to show that the
// cost of a transition does not grow with the number in flight.
//
//	go run ./saga -inflight 1000 -duration 10s
//	go run ./saga -inflight 100000 -duration 10s -mode coordinator
//	go run ./saga -inflight 1000 -duration 20s -mode temporal -temporal /tmp/temporal [-temporal-db /tmp/t.db]
//
// Modes: eager (the default) starts each saga in a transaction of its own
// and Start runs the three local steps in it, so the saga has completed
// when that transaction commits; coordinator makes the first step a no-op
// remote Call, so Start only creates the saga and the coordinator's Run
// claims it (a lease), runs the call and then the local steps: the path a
// saga with a remote step takes. temporal runs the same three-step saga on
// Temporal (its Go SDK, local activities) against the temporal CLI's dev
// server, which the run starts and stops itself (see temporal.go).
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/saga"
)

type data struct {
	Start int64 `json:"start"`
	N     int   `json:"n"`
}

func main() {
	dsn := flag.String("dsn", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL URL")
	inflight := flag.Int("inflight", 1000, "sagas in flight besides the measured ones")
	duration := flag.Duration("duration", 10*time.Second, "how long to start sagas")
	workers := flag.Int("workers", 8, "concurrent starters")
	mode := flag.String("mode", "eager", "eager, coordinator or temporal (the peer: the same saga on a temporal dev server)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measured run to this file")
	temporalBin := flag.String("temporal", "/tmp/temporal", "temporal CLI binary whose dev server -mode temporal starts")
	temporalDB := flag.String("temporal-db", "", "-mode temporal: the dev server's database file (default: in memory)")
	pollers := flag.Int("pollers", 0, "-mode temporal: the SDK worker's workflow task pollers (0: the SDK's default)")
	flag.Parse()
	if *mode == "temporal" {
		runTemporal(temporalConfig{bin: *temporalBin, dbFile: *temporalDB, inflight: *inflight,
			duration: *duration, workers: *workers, pollers: *pollers})
		return
	}
	ctx := context.Background()

	schema := fmt.Sprintf("bench_saga_%d", time.Now().UnixNano())
	admin, err := postgres.Open(ctx, *dsn)
	check(err)
	_, err = admin.Exec("CREATE SCHEMA " + schema)
	check(err)
	defer admin.Exec("DROP SCHEMA " + schema + " CASCADE")
	db, err := postgres.Open(ctx, *dsn+"&search_path="+schema)
	check(err)
	db.SetMaxOpenConns(*workers + 8)
	check(postgres.Migrate(ctx, db))
	_, err = db.Exec(`CREATE TABLE effects (saga TEXT NOT NULL, step TEXT NOT NULL)`)
	check(err)

	var mu sync.Mutex
	var durations []time.Duration
	local := func(step string) saga.Action[data] {
		return saga.Local(func(ctx context.Context, tx *sql.Tx, r *saga.Run[data]) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO effects (saga, step) VALUES ($1, $2)`, r.SagaID, step)
			r.Data.N++
			if step == "s3" {
				d := time.Since(time.Unix(0, r.Data.Start))
				mu.Lock()
				durations = append(durations, d)
				mu.Unlock()
			}
			return err
		})
	}
	steps := []saga.Step[data]{{Name: "s1", Action: local("s1")}, {Name: "s2", Action: local("s2")}, {Name: "s3", Action: local("s3")}}
	if *mode == "coordinator" {
		steps[0] = saga.Step[data]{Name: "s1", Action: saga.Call(func(context.Context, *saga.Run[data]) error { return nil })}
	}
	def, err := saga.Define("bench", steps)
	check(err)
	c, err := saga.New(postgres.SagaStore(db), saga.WithWorkers(*workers), saga.WithPollInterval(100*time.Millisecond))
	check(err)
	s, err := saga.Register(c, def)
	check(err)

	// The sagas in flight: waiting on a reply to s1, timers an hour away.
	seed(ctx, db, def.Version(), *inflight)

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- c.Run(runCtx) }()

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	var started atomic.Int64
	end := time.Now().Add(*duration)
	t0 := time.Now()
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				tx, err := db.BeginTx(ctx, nil)
				check(err)
				_, err = s.Start(ctx, tx, data{Start: time.Now().UnixNano()})
				check(err)
				check(tx.Commit())
				started.Add(1)
			}
		}()
	}
	wg.Wait()
	// Wait for the started sagas to complete (coordinator mode).
	for {
		var n int
		check(db.QueryRow(`SELECT COUNT(*) FROM handoff_saga WHERE status = 'completed'`).Scan(&n))
		if int64(n) >= started.Load() {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(t0)
	stop()
	<-done
	mu.Lock()
	slices.Sort(durations)
	p := func(q float64) time.Duration { return durations[int(q*float64(len(durations)-1))] }
	fmt.Printf("mode=%s inflight=%d workers=%d sagas=%d elapsed=%.1fs completed/s=%.0f p50=%v p99=%v\n",
		*mode, *inflight, *workers, len(durations), elapsed.Seconds(), float64(len(durations))/elapsed.Seconds(),
		p(0.5).Round(10*time.Microsecond), p(0.99).Round(10*time.Microsecond))
}

// seed inserts n sagas waiting on a reply, in bulk.
func seed(ctx context.Context, db *sql.DB, version string, n int) {
	now := time.Now()
	due := now.Add(time.Hour).UnixMicro()
	steps := `[{"name":"s1","state":"waiting","attempts":1,"gen":1},{"name":"s2","state":"pending","gen":1},{"name":"s3","state":"pending","gen":1}]`
	_, err := db.ExecContext(ctx, `INSERT INTO handoff_saga (id, name, version, correlation_id, status, step_no, steps, data,
		due_at, deadline, lease_owner, lease_until, epoch, events, error, created_at, updated_at)
		SELECT 'seed-' || g, 'bench', $1, 'seed-' || g, 'running', 0, $2, '{"start":0,"n":0}', $3, 0, '', 0, 1, 0, '', $4, $4
		FROM generate_series(1, $5) g`, version, steps, due, now.UnixMicro(), n)
	check(err)
	_, err = db.ExecContext(ctx, `ANALYZE handoff_saga`)
	check(err)
}

// atExit, if set, runs before check exits (it stops a server the run started).
var atExit func()

func check(err error) {
	if err != nil {
		log.Print(err)
		if atExit != nil {
			atExit()
		}
		os.Exit(1)
	}
}
