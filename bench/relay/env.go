package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natsadapter "github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/bench/internal/sysstat"
)

// env holds what all measurements share: the two databases (the producing
// service's and the consuming service's), a NATS connection for stream
// statistics, and a run id that names schemas and streams.
type env struct {
	cfg        config
	admin      *sql.DB // on the -pg database: creates and drops the two databases
	prodDB     string  // database names
	consDB     string
	prodAdmin  *sql.DB
	consAdmin  *sql.DB
	js         jetstream.JetStream
	closeNATS  func()
	id         string
	seq        int
	createdDBs bool
}

func newEnv(ctx context.Context, cfg config) (*env, error) {
	admin, err := postgres.Open(ctx, cfg.pg)
	if err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, admin: admin, id: strconv.FormatInt(time.Now().Unix()%1_000_000, 36)}
	e.prodDB, e.consDB = "bench_relay_"+e.id+"_orders", "bench_relay_"+e.id+"_billing"
	for _, db := range []string{e.prodDB, e.consDB} {
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+db); err != nil {
			e.close()
			return nil, fmt.Errorf("create database %s: %w", db, err)
		}
	}
	e.createdDBs = true
	if e.prodAdmin, err = postgres.Open(ctx, dsnFor(cfg.pg, e.prodDB, "")); err != nil {
		e.close()
		return nil, err
	}
	if e.consAdmin, err = postgres.Open(ctx, dsnFor(cfg.pg, e.consDB, "")); err != nil {
		e.close()
		return nil, err
	}
	nc, err := natsadapter.Connect(cfg.nats)
	if err != nil {
		e.close()
		return nil, err
	}
	e.closeNATS = nc.Close
	if e.js, err = jetstream.New(nc); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) close() {
	if e.closeNATS != nil {
		e.closeNATS()
	}
	for _, db := range []*sql.DB{e.prodAdmin, e.consAdmin} {
		if db != nil {
			db.Close()
		}
	}
	if e.createdDBs {
		for _, db := range []string{e.prodDB, e.consDB} {
			if _, err := e.admin.Exec("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)"); err != nil {
				fmt.Fprintf(os.Stderr, "drop database %s: %v\n", db, err)
			}
		}
	}
	e.admin.Close()
}

// dsnFor replaces the database of a postgres:// URL and adds a search_path.
func dsnFor(base, db, schema string) string {
	u, q, _ := strings.Cut(base, "?")
	if i := strings.LastIndexByte(u, '/'); i > len("postgres://") {
		u = u[:i]
	}
	u += "/" + db
	if schema != "" {
		if q != "" {
			q += "&"
		}
		q += "search_path=" + schema
	}
	if q != "" {
		u += "?" + q
	}
	return u
}

// space is one measurement's schemas (same name in both databases) and topic.
type space struct {
	name    string
	prodDSN string
	consDSN string
	topic   string
	streams []string // to delete at the end
	e       *env
}

func (e *env) space(ctx context.Context, label string) (*space, error) {
	e.seq++
	name := fmt.Sprintf("m%02d_%s", e.seq, label)
	for _, db := range []*sql.DB{e.prodAdmin, e.consAdmin} {
		if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
			return nil, fmt.Errorf("create schema %s: %w", name, err)
		}
	}
	s := &space{name: name, e: e,
		prodDSN: dsnFor(e.cfg.pg, e.prodDB, name), consDSN: dsnFor(e.cfg.pg, e.consDB, name),
		topic: "bench.relay." + e.id + "." + name}
	for _, q := range []string{
		// The producing service's business row.
		"CREATE TABLE " + name + ".bench_orders (id TEXT PRIMARY KEY, k TEXT NOT NULL, n BIGINT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now())",
	} {
		if _, err := e.prodAdmin.ExecContext(ctx, q); err != nil {
			return nil, err
		}
	}
	for _, q := range []string{
		// The consuming service's effect row, and Watermill's dedup table.
		"CREATE TABLE " + name + ".bench_effects (msg_id TEXT NOT NULL, k TEXT NOT NULL)",
		"CREATE TABLE " + name + ".wm_inbox (msg_id TEXT PRIMARY KEY)",
	} {
		if _, err := e.consAdmin.ExecContext(ctx, q); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *space) drop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, st := range s.streams {
		_ = s.e.js.DeleteStream(ctx, st)
	}
	for _, db := range []*sql.DB{s.e.prodAdmin, s.e.consAdmin} {
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+s.name+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "drop schema %s: %v\n", s.name, err)
		}
	}
}

// streamMsgs returns how many messages stream holds (0 if it does not exist yet).
func (e *env) streamMsgs(ctx context.Context, stream string) (int64, error) {
	st, err := e.js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int64(info.State.Msgs), nil
}

// count runs a COUNT query.
func count(ctx context.Context, db *sql.DB, q string) (int64, error) {
	var n int64
	err := db.QueryRowContext(ctx, q).Scan(&n)
	return n, err
}

// payload is a JSON document of exactly size bytes.
func payload(key string, n int64, size int) []byte {
	b := make([]byte, 0, size)
	b = fmt.Appendf(b, `{"key":%q,"n":%d,"pad":"`, key, n)
	for len(b) < size-2 {
		b = append(b, 'x')
	}
	return append(b, '"', '}')
}

// tracker records commits and receipts of one measurement.
type tracker struct {
	committed atomic.Int64
	received  atomic.Int64 // receipts, duplicates included
	failed    atomic.Int64 // producer transactions that failed
	mu        sync.Mutex
	commitAt  map[string]int64 // id → commit time (Unix ns)
	recvAt    map[string]int64 // id → first receipt time
	pubAt     map[string]int64 // id → broker ack of the relay's publish
	fetchAt   map[string]int64 // id → start of the relay fetch that first returned it (table mode)
	dups      int64
}

func newTracker() *tracker {
	return &tracker{commitAt: make(map[string]int64, 1<<16), recvAt: make(map[string]int64, 1<<16), pubAt: make(map[string]int64, 1<<16), fetchAt: make(map[string]int64, 1<<16)}
}

func (t *tracker) commit(id string) {
	now := time.Now().UnixNano()
	t.mu.Lock()
	t.commitAt[id] = now
	t.mu.Unlock()
	t.committed.Add(1)
}

func (t *tracker) receive(id string) {
	now := time.Now().UnixNano()
	t.mu.Lock()
	if _, ok := t.recvAt[id]; ok {
		t.dups++
	} else {
		t.recvAt[id] = now
	}
	t.mu.Unlock()
	t.received.Add(1)
}

// published records the broker's acknowledgement of the relay's publish.
func (t *tracker) published(ids []string) {
	now := time.Now().UnixNano()
	t.mu.Lock()
	for _, id := range ids {
		if _, ok := t.pubAt[id]; !ok {
			t.pubAt[id] = now
		}
	}
	t.mu.Unlock()
}

// fetched records the start of a relay fetch that returned ids.
func (t *tracker) fetched(at time.Time, ids []string) {
	t.mu.Lock()
	for _, id := range ids {
		if _, ok := t.fetchAt[id]; !ok {
			t.fetchAt[id] = at.UnixNano()
		}
	}
	t.mu.Unlock()
}

// fetchSplit returns sorted commit→fetch-start and fetch-start→publish-ack
// delays of the events a table-mode relay fetched (empty otherwise).
func (t *tracker) fetchSplit() (toFetch, fetchToPub []time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, f := range t.fetchAt {
		c, ok := t.commitAt[id]
		p, ok2 := t.pubAt[id]
		if !ok || !ok2 {
			continue
		}
		toFetch = append(toFetch, time.Duration(max(f-c, 0)))
		fetchToPub = append(fetchToPub, time.Duration(max(p-f, 0)))
	}
	slices.Sort(toFetch)
	slices.Sort(fetchToPub)
	return toFetch, fetchToPub
}

// split returns sorted commit→publish-ack and publish-ack→receipt delays.
func (t *tracker) split() (toPub, toRecv []time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, p := range t.pubAt {
		c, ok := t.commitAt[id]
		r, ok2 := t.recvAt[id]
		if !ok || !ok2 {
			continue
		}
		toPub = append(toPub, time.Duration(max(p-c, 0)))
		toRecv = append(toRecv, time.Duration(max(r-p, 0)))
	}
	slices.Sort(toPub)
	slices.Sort(toRecv)
	return toPub, toRecv
}

// distinctReceived is how many different ids were received.
func (t *tracker) distinctReceived() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return int64(len(t.recvAt))
}

// check reports committed events never received, and received ids never committed.
func (t *tracker) check() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var lost, foreign int
	for id := range t.commitAt {
		if _, ok := t.recvAt[id]; !ok {
			lost++
		}
	}
	for id := range t.recvAt {
		if _, ok := t.commitAt[id]; !ok {
			foreign++
		}
	}
	if lost > 0 || foreign > 0 {
		return fmt.Errorf("correctness: %d committed events never received, %d received events never committed (of %d committed)", lost, foreign, len(t.commitAt))
	}
	return nil
}

// latencies returns commit-to-receipt delays (a receipt seen before the
// producer's Commit call returned counts as 0).
func (t *tracker) latencies() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]time.Duration, 0, len(t.recvAt))
	for id, r := range t.recvAt {
		c, ok := t.commitAt[id]
		if !ok {
			continue
		}
		out = append(out, time.Duration(max(r-c, 0)))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func quantile(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(q * float64(len(s)-1))
	return s[i]
}

// produce runs writers goroutines calling commit(seq) until dur has passed
// (rate 0: as fast as they go) or, with rate > 0, at rate per second for
// dur. With total > 0 it stops after total calls instead of after dur.
func produce(ctx context.Context, writers int, dur time.Duration, rate float64, total int64, commit func(ctx context.Context, seq int64) error) error {
	var next atomic.Int64
	start := time.Now()
	end := start.Add(dur)
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				seq := next.Add(1) - 1
				if total > 0 && seq >= total {
					return
				}
				if rate > 0 {
					at := start.Add(time.Duration(seq) * interval)
					if !at.Before(end) {
						return
					}
					if d := time.Until(at); d > 0 {
						time.Sleep(d)
					}
				} else if total <= 0 && time.Now().After(end) {
					return
				}
				if err := commit(ctx, seq); err != nil {
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

// waitFor polls cond every 50ms until it holds, failing when progress()
// has not changed for stall.
func waitFor(ctx context.Context, stall time.Duration, cond func() (bool, error), progress func() int64) error {
	last, at := progress(), time.Now()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if p := progress(); p != last {
			last, at = p, time.Now()
		} else if time.Since(at) > stall {
			return fmt.Errorf("no progress for %v (at %d)", stall, p)
		}
	}
}

// sampler measures wall time, machine CPU busy fraction (/proc/stat), this
// process's CPU time, and the CPU time of postgres and nats-server.
type sampler struct {
	t0            time.Time
	busy0, total0 uint64
	proc0         time.Duration
	svc0          map[string]time.Duration
	elapsed       time.Duration
	busy          float64
	proc          time.Duration
	svc           map[string]time.Duration
}

func (s *sampler) start() {
	s.busy0, s.total0 = sysstat.MachineCPU()
	s.proc0 = sysstat.SelfCPU()
	s.svc0 = serviceCPU()
	s.t0 = time.Now()
}

func (s *sampler) stop() {
	s.elapsed = time.Since(s.t0)
	b, t := sysstat.MachineCPU()
	if t > s.total0 {
		s.busy = float64(b-s.busy0) / float64(t-s.total0)
	}
	s.proc = sysstat.SelfCPU() - s.proc0
	s.svc = serviceCPU()
	for k, v := range s.svc {
		s.svc[k] = v - s.svc0[k]
	}
}

// cores reports CPU use as cores (CPU seconds per second) of this process,
// postgres and nats-server.
func (s *sampler) cores() string {
	sec := s.elapsed.Seconds()
	if sec == 0 {
		return ""
	}
	return fmt.Sprintf("machine %.0f%% busy, load %s; cores: bench process %.2f, postgres %.2f, nats-server %.2f",
		100*s.busy, sysstat.LoadAvg()[0], s.proc.Seconds()/sec, s.svc["postgres"].Seconds()/sec, s.svc["nats-server"].Seconds()/sec)
}

func serviceCPU() map[string]time.Duration {
	out := map[string]time.Duration{"postgres": 0, "nats-server": 0}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
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
		if _, ok := out[comm]; !ok {
			continue
		}
		f := strings.Fields(string(b[close+1:]))
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[comm] += time.Duration(ut+st) * (time.Second / 100)
	}
	return out
}

// dump appends the fetch log and each event's commit, fetch, publish-ack
// and receipt times (Unix ns) to path, then empties the fetch log.
func (t *tracker) dump(path string, l *fetchLogger) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fetch log:", err)
		return
	}
	defer f.Close()
	l.mu.Lock()
	for _, line := range l.lines {
		fmt.Fprintln(f, line)
	}
	l.lines = nil
	l.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, c := range t.commitAt {
		fmt.Fprintf(f, "E %d %d %d %d\n", c, t.fetchAt[id], t.pubAt[id], t.recvAt[id])
	}
	fmt.Fprintln(f, "R")
}
