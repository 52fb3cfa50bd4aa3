package main

// The peer: the same three-step saga on Temporal, through its Go SDK against
// the temporal CLI's dev server (in memory, or with a SQLite database file).
// The program starts the dev server itself, on a free loopback port, and
// stops it (by its PID) when the run ends.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

type temporalConfig struct {
	bin      string // the temporal CLI binary
	dbFile   string // "" for the in-memory dev server
	inflight int
	duration time.Duration
	workers  int // concurrent starters, each waiting for its saga's result
	pollers  int // workflow task pollers of the SDK worker (0: the SDK's default)
}

// stepsDone counts the saga steps run, less those compensated. Each step
// records itself in memory only (handoff's steps each insert a row in the
// saga's transaction, so this side does less work per step).
var stepsDone atomic.Int64

// sagaStep is each of the saga's three local activities.
func sagaStep(_ context.Context, name string) (string, error) {
	stepsDone.Add(1)
	return name, nil
}

// compensateStep undoes a step; it runs only when a later step failed.
func compensateStep(_ context.Context, name string) error {
	stepsDone.Add(-1)
	return nil
}

// threeStepSaga runs s1, s2 and s3 as local activities; if a step fails, the
// steps done so far are compensated in reverse order (unused on success).
func threeStepSaga(ctx workflow.Context) (err error) {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var done []string
	defer func() {
		if err == nil {
			return
		}
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		for _, name := range slices.Backward(done) {
			if cerr := workflow.ExecuteLocalActivity(dctx, compensateStep, name).Get(dctx, nil); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()
	for _, name := range []string{"s1", "s2", "s3"} {
		var out string
		if err := workflow.ExecuteLocalActivity(ctx, sagaStep, name).Get(ctx, &out); err != nil {
			return fmt.Errorf("step %s: %w", name, err)
		}
		done = append(done, out)
	}
	return nil
}

// seededReady counts the waiting sagas whose first workflow task has run.
var seededReady atomic.Int64

func markReady(context.Context) error {
	seededReady.Add(1)
	return nil
}

// waitingSaga stands for a saga in flight: it waits on a timer an hour away
// (after a local activity that tells the run its timer is set).
func waitingSaga(ctx workflow.Context) error {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
	if err := workflow.ExecuteLocalActivity(ctx, markReady).Get(ctx, nil); err != nil {
		return err
	}
	return workflow.Sleep(ctx, time.Hour)
}

func runTemporal(cfg temporalConfig) {
	ctx := context.Background()
	port := freePort()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{"server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", strconv.Itoa(port),
		"--http-port", strconv.Itoa(freePort()), "--metrics-port", strconv.Itoa(freePort()), "--log-level", "error"}
	store := "memory"
	if cfg.dbFile != "" {
		os.Remove(cfg.dbFile)
		args = append(args, "--db-filename", cfg.dbFile)
		store = "dbfile"
	}
	srv := exec.Command(cfg.bin, args...)
	srv.Stdout, srv.Stderr = os.Stderr, os.Stderr
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	check(srv.Start())
	var once sync.Once
	stopServer := func() {
		once.Do(func() {
			_ = srv.Process.Signal(syscall.SIGTERM)
			exited := make(chan struct{})
			go func() { _ = srv.Wait(); close(exited) }()
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = srv.Process.Kill()
				<-exited
			}
			if cfg.dbFile != "" {
				os.Remove(cfg.dbFile)
			}
		})
	}
	atExit = stopServer // check stops the server before it exits
	defer stopServer()

	logger := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	var c client.Client
	var err error
	for deadline := time.Now().Add(60 * time.Second); ; {
		c, err = client.Dial(client.Options{HostPort: addr, Namespace: "default", Logger: logger})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		check(fmt.Errorf("temporal dev server at %s not ready: %w", addr, err))
	}
	defer c.Close()

	queue := fmt.Sprintf("bench-saga-%d", time.Now().UnixNano())
	opts := worker.Options{}
	if cfg.pollers > 0 {
		opts.MaxConcurrentWorkflowTaskPollers = cfg.pollers
	}
	w := worker.New(c, queue, opts)
	w.RegisterWorkflow(threeStepSaga)
	w.RegisterWorkflow(waitingSaga)
	check(w.Start())
	defer w.Stop()

	// The sagas in flight: started, each waiting on a timer an hour away.
	seedStart := time.Now()
	var next atomic.Int64
	var sg sync.WaitGroup
	for range 32 {
		sg.Go(func() {
			for i := next.Add(1); i <= int64(cfg.inflight); i = next.Add(1) {
				_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("seed-%d", i), TaskQueue: queue}, waitingSaga)
				check(err)
			}
		})
	}
	sg.Wait()
	// Measure only once the worker has no seeding backlog left.
	for seededReady.Load() < int64(cfg.inflight) {
		time.Sleep(50 * time.Millisecond)
	}
	seeded := time.Since(seedStart)

	var mu sync.Mutex
	var durations []time.Duration
	var failed atomic.Int64
	var id atomic.Int64
	end := time.Now().Add(cfg.duration)
	t0 := time.Now()
	var wg sync.WaitGroup
	for range cfg.workers {
		wg.Go(func() {
			for time.Now().Before(end) {
				start := time.Now()
				run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("saga-%d", id.Add(1)), TaskQueue: queue}, threeStepSaga)
				if err == nil {
					err = run.Get(ctx, nil)
				}
				if err != nil {
					failed.Add(1)
					continue
				}
				d := time.Since(start)
				mu.Lock()
				durations = append(durations, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	if len(durations) == 0 {
		check(fmt.Errorf("no saga completed on temporal (%d failed)", failed.Load()))
	}
	slices.Sort(durations)
	p := func(q float64) time.Duration { return durations[int(q*float64(len(durations)-1))] }
	fmt.Printf("mode=temporal store=%s inflight=%d workers=%d sagas=%d failed=%d seeded_in=%.1fs elapsed=%.1fs completed/s=%.0f p50=%v p99=%v\n",
		store, cfg.inflight, cfg.workers, len(durations), failed.Load(), seeded.Seconds(), elapsed.Seconds(),
		float64(len(durations))/elapsed.Seconds(), p(0.5).Round(10*time.Microsecond), p(0.99).Round(10*time.Microsecond))
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
