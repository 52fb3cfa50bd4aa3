package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/bench/internal/sysstat"
)

// env holds what all runs share: the configuration, an admin connection to
// PostgreSQL, and a run id that names schemas and streams.
type env struct {
	cfg   config
	admin *sql.DB
	id    string
	seq   int
}

func newEnv(ctx context.Context, cfg config) (*env, error) {
	admin, err := postgres.Open(ctx, cfg.pgURL)
	if err != nil {
		return nil, err
	}
	return &env{cfg: cfg, admin: admin, id: strconv.FormatInt(time.Now().Unix()%1_000_000, 36)}, nil
}

func (e *env) close() { e.admin.Close() }

// next returns a fresh name for one run's schema and stream.
func (e *env) next(label string) string {
	e.seq++
	return fmt.Sprintf("bench_%s_%s%d", e.id, label, e.seq)
}

// schema creates schema name with the business table and returns a DSN
// whose search_path is that schema, and a function that drops it.
func (e *env) schema(ctx context.Context, name string) (dsn string, drop func(), err error) {
	if _, err := e.admin.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		return "", nil, fmt.Errorf("create schema %s: %w", name, err)
	}
	drop = func() {
		if _, err := e.admin.Exec("DROP SCHEMA " + name + " CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "drop schema %s: %v\n", name, err)
		}
	}
	if _, err := e.admin.ExecContext(ctx, "CREATE TABLE "+name+".bench_rows (id TEXT NOT NULL, payload BYTEA NOT NULL)"); err != nil {
		drop()
		return "", nil, fmt.Errorf("create table in %s: %w", name, err)
	}
	sep := "?"
	if strings.Contains(e.cfg.pgURL, "?") {
		sep = "&"
	}
	return e.cfg.pgURL + sep + "search_path=" + name + "&application_name=" + appName, drop, nil
}

// appName marks the benchmark's own PostgreSQL connections, so that only
// their backends' CPU is counted (other engineers share the server).
const appName = "bench-consumer"

// check counts the business rows of schema name.
func (e *env) check(ctx context.Context, name string, r *result) error {
	err := e.admin.QueryRowContext(ctx, "SELECT COUNT(*), COUNT(DISTINCT id) FROM "+name+".bench_rows").Scan(&r.rows, &r.distinct)
	if err != nil {
		return fmt.Errorf("count rows in %s: %w", name, err)
	}
	if r.rows != r.n || r.distinct != r.n {
		return fmt.Errorf("correctness: %s has %d rows, %d distinct ids, want %d and %d", name, r.rows, r.distinct, r.n, r.n)
	}
	return nil
}

// xactCommit reads pg_stat_database.xact_commit of the current database.
// The statistics collector updates it with a delay of up to a second.
func (e *env) xactCommit(ctx context.Context) int64 {
	var n int64
	_ = e.admin.QueryRowContext(ctx, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").Scan(&n)
	return n
}

// walSync reads pg_stat_wal.wal_sync: how many times WAL was flushed to disk
// (one flush may make several commits durable: group commit).
func (e *env) walSync(ctx context.Context) int64 {
	var n int64
	_ = e.admin.QueryRowContext(ctx, "SELECT wal_sync FROM pg_stat_wal").Scan(&n)
	return n
}

// measure runs one measurement of system sys.
func (e *env) measure(ctx context.Context, sys, phase string, n int, rate float64, dur time.Duration) (result, error) {
	if phase == "latency" {
		n = int(rate * dur.Seconds())
	}
	r := result{system: sys, phase: phase, n: n, rate: rate}
	name := e.next(sys[:1] + phase[:1])
	dsn, drop, err := e.schema(ctx, name)
	if err != nil {
		return r, err
	}
	defer drop()
	rec := newRecorder(n, phase == "latency")
	w := workload{cfg: e.cfg, topic: strings.ReplaceAll(name, "_", "."), dsn: dsn, n: n, rate: rate, dur: dur, rec: rec}
	c0, w0 := e.xactCommit(ctx), e.walSync(ctx)
	s := sampler{admin: e.admin}
	switch sys {
	case "handoff":
		err = runHandoff(ctx, w, &s)
	case "watermill":
		err = runWatermill(ctx, w, &s)
	default:
		err = fmt.Errorf("unknown system %q", sys)
	}
	if err != nil {
		return r, err
	}
	if f := rec.first.Load(); f > 0 {
		r.firstAfter = time.Unix(0, f).Sub(s.t0)
	}
	r.elapsed, r.cpuBusy, r.procCPU, r.svcCPU = s.elapsed, s.busy, s.proc, s.svc
	r.lat, r.series = rec.lat, rec.series
	time.Sleep(600 * time.Millisecond) // let the statistics collector catch up
	r.commits, r.walSyncs = e.xactCommit(ctx)-c0, e.walSync(ctx)-w0
	return r, e.check(ctx, name, &r)
}

// workload is what one run does.
type workload struct {
	cfg   config
	topic string // also the stream name (dots → underscores)
	dsn   string
	n     int           // messages
	rate  float64       // > 0: publish at this rate while consuming (latency)
	dur   time.Duration // how long to publish at rate
	rec   *recorder
}

// payload is a JSON document of exactly size bytes carrying seq and the
// publish time ts (Unix nanoseconds).
func payload(seq int, ts int64, size int) []byte {
	b := make([]byte, 0, size)
	b = fmt.Appendf(b, `{"seq":%d,"ts":%d,"pad":"`, seq, ts)
	for len(b) < size-2 {
		b = append(b, 'x')
	}
	return append(b, '"', '}')
}

var tsKey = []byte(`"ts":`)

// publishedAt reads ts back from a payload.
func publishedAt(p []byte) time.Time {
	i := bytes.Index(p, tsKey)
	if i < 0 {
		return time.Time{}
	}
	p = p[i+len(tsKey):]
	j := bytes.IndexByte(p, ',')
	if j < 0 {
		return time.Time{}
	}
	ns, err := strconv.ParseInt(string(p[:j]), 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// recorder counts committed messages, and records their latency.
type recorder struct {
	target  int64
	n       atomic.Int64
	done    chan struct{}
	keepLat bool
	mu      sync.Mutex
	lat     []time.Duration
	first   atomic.Int64 // Unix nanoseconds of the first commit
	series  []int64      // commits per second of wait, for the timeline
}

func newRecorder(n int, keepLat bool) *recorder {
	r := &recorder{target: int64(n), done: make(chan struct{}), keepLat: keepLat}
	if keepLat {
		r.lat = make([]time.Duration, 0, n)
	}
	return r
}

// committed is called after a handler's transaction committed.
func (r *recorder) committed(p []byte) {
	if r.keepLat {
		d := time.Since(publishedAt(p))
		r.mu.Lock()
		r.lat = append(r.lat, d)
		r.mu.Unlock()
	}
	n := r.n.Add(1)
	if n == 1 {
		r.first.Store(time.Now().UnixNano())
	}
	if n == r.target {
		close(r.done)
	}
}

// wait waits until every message committed, or fails after timeout without progress.
func (r *recorder) wait(ctx context.Context, stall time.Duration) error {
	last, at := r.n.Load(), time.Now()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	prev := last
	for tick := 1; ; tick++ {
		select {
		case <-r.done:
			r.series = append(r.series, r.n.Load()-prev)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if tick%10 == 0 {
				n := r.n.Load()
				r.series = append(r.series, n-prev)
				prev = n
			}
			if n := r.n.Load(); n != last {
				last, at = n, time.Now()
			} else if time.Since(at) > stall {
				return fmt.Errorf("no progress for %v: %d of %d committed", stall, n, r.target)
			}
		}
	}
}

// sampler measures wall time, machine CPU busy fraction (/proc/stat) and
// this process's CPU time between start and stop.
type sampler struct {
	t0            time.Time
	busy0, total0 uint64
	proc0         time.Duration
	elapsed       time.Duration
	busy          float64
	proc          time.Duration
	admin         *sql.DB // to find the benchmark's backends
	svc0          map[int]svcProc
	svc           map[string]time.Duration // CPU of the postgres and nats-server processes
	prof          *os.File                 // CPU profile being written, if any
}

// profileNext, when set, is the file the next sampled window's CPU profile
// is written to.
var profileNext string

func (s *sampler) start() {
	if profileNext != "" {
		if f, err := os.Create(profileNext); err != nil {
			fmt.Fprintln(os.Stderr, "cpuprofile:", err)
		} else if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "cpuprofile:", err)
			f.Close()
		} else {
			s.prof = f
		}
	}
	s.busy0, s.total0 = sysstat.MachineCPU()
	s.proc0 = sysstat.SelfCPU()
	s.svc0 = serviceCPU()
	s.t0 = time.Now()
}

func (s *sampler) stop() {
	s.elapsed = time.Since(s.t0)
	if s.prof != nil {
		pprof.StopCPUProfile()
		s.prof.Close()
		s.prof = nil
	}
	b, t := sysstat.MachineCPU()
	if t > s.total0 {
		s.busy = float64(b-s.busy0) / float64(t-s.total0)
	}
	s.proc = sysstat.SelfCPU() - s.proc0
	s.svc = svcDelta(s.svc0, serviceCPU(), s.ours())
}

// serviceCPU reads the CPU time (user + system) of the local services'
// processes, by pid, from /proc/*/stat.
func serviceCPU() map[int]svcProc {
	out := map[int]svcProc{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || close < open {
			continue
		}
		comm := string(b[open+1 : close])
		if comm != "postgres" && comm != "nats-server" {
			continue
		}
		f := strings.Fields(string(b[close+1:])) // f[0] is field 3 (state)
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)                             // field 14
		st, _ := strconv.ParseInt(f[12], 10, 64)                             // field 15
		out[pid] = svcProc{comm, time.Duration(ut+st) * (time.Second / 100)} // USER_HZ
	}
	return out
}

type svcProc struct {
	comm string
	cpu  time.Duration
}

// ours returns the pids of the benchmark's PostgreSQL backends.
func (s *sampler) ours() map[int]bool {
	out := map[int]bool{}
	if s.admin == nil {
		return out
	}
	rows, err := s.admin.Query("SELECT pid FROM pg_stat_activity WHERE application_name = $1", appName)
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) == nil {
			out[pid] = true
		}
	}
	return out
}

// svcDelta sums, by command name, the CPU the services' processes used
// between two samples: for postgres, only the benchmark's backends (ours);
// nats-server is one process shared with other users. A process that exited in between is missed (the
// connection pools keep their backends open for the whole run); one that
// started in between counts in full.
func svcDelta(a, b map[int]svcProc, ours map[int]bool) map[string]time.Duration {
	out := map[string]time.Duration{"postgres": 0, "nats-server": 0}
	for pid, p := range b {
		if p.comm == "postgres" && !ours[pid] {
			continue
		}
		d := p.cpu
		if q, ok := a[pid]; ok && q.comm == p.comm {
			d -= q.cpu
		}
		out[p.comm] += d
	}
	return out
}

// pace calls publish(i) for i in [0, n) at rate per second, from 4
// goroutines, and returns the first error.
func pace(ctx context.Context, n int, rate float64, publish func(i int) error) error {
	const senders = 4
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := 0; g < senders; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += senders {
				if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						errs <- ctx.Err()
						return
					}
				}
				if err := publish(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
