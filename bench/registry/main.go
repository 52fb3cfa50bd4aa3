// Command registry measures handoff's schema registry server (issue 5) as
// its own process, `handoff registry serve`, driven over HTTP by this
// program (the load generator, a separate process). It is a program, not a
// test, so CI never runs it:
//
//	cd bench && go run ./registry -rounds 3
//
// It builds ../cmd/handoff (or takes -handoff PATH), creates a fresh
// PostgreSQL schema (or a SQLite file with -db sqlite), starts the server on
// it, and per round measures: GET /schemas/ids/{id} over 100 ids (closed
// loop, -conns keep-alive connections; plus wrk as a cross-check when it is
// installed); registrations/s with each client on its own subject and with
// all clients on one subject; and the FULL_TRANSITIVE compatibility check and
// registration of a new version against 100 earlier ones. It stops the
// server by its PID, drops the schema, prints a summary and writes it with
// the machine, date and command line to registry/results/.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/handoffhq/handoff/bench/internal/sysstat"
	"github.com/jackc/pgx/v5"
)

type config struct {
	pg, dbs, handoff, src, wrk, out, sqliteDir string
	rounds, conns, regConns, ids               int
	perSubject, versions, checks, wrkThreads   int
	warm, dur                                  time.Duration
	cold                                       bool
	workloads                                  map[string]bool
}

func main() {
	var cfg config
	var workloads string
	flag.StringVar(&cfg.pg, "pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL URL; a fresh schema is created in its database and dropped at the end")
	flag.StringVar(&cfg.dbs, "db", "postgres", "databases to run on, in order: postgres, sqlite, or postgres,sqlite")
	flag.StringVar(&cfg.sqliteDir, "sqlite-dir", "", "directory of the SQLite file (default: a temporary directory)")
	flag.StringVar(&cfg.handoff, "handoff", "", "handoff binary (default: go build ./cmd/handoff in -src)")
	flag.StringVar(&cfg.src, "src", "..", "handoff module root, built when -handoff is not given")
	flag.StringVar(&cfg.wrk, "wrk", "wrk", `wrk binary for the cross-check of reads ("" or missing: skipped)`)
	flag.IntVar(&cfg.wrkThreads, "wrk-threads", 2, "wrk -t")
	flag.StringVar(&cfg.out, "out", "registry/results", "directory of the results file")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds (medians are quoted)")
	flag.IntVar(&cfg.conns, "conns", 16, "keep-alive connections of the read workload (and wrk -c)")
	flag.IntVar(&cfg.regConns, "reg-conns", 16, "concurrent clients of the registration workloads")
	flag.IntVar(&cfg.ids, "ids", 100, "schema ids the reads cycle through")
	flag.IntVar(&cfg.perSubject, "per-subject", 100, "registrations per subject before the registration workloads move to a new subject")
	flag.IntVar(&cfg.versions, "versions", 100, "versions of the FULL_TRANSITIVE subject")
	flag.IntVar(&cfg.checks, "checks", 50, "timed compatibility checks and registrations against those versions, per round")
	flag.BoolVar(&cfg.cold, "cold", true, "restart the server before the checks and time the first (cold) one separately")
	flag.DurationVar(&cfg.warm, "warmup", time.Second, "warm-up before each closed-loop window (excluded)")
	flag.DurationVar(&cfg.dur, "dur", 5*time.Second, "measured window of each closed-loop workload (and wrk -d)")
	flag.StringVar(&workloads, "workloads", "reads,wrk,regs,regs1,transitive", "workloads to run")
	flag.Parse()
	cfg.workloads = map[string]bool{}
	for _, w := range strings.Split(workloads, ",") {
		cfg.workloads[strings.TrimSpace(w)] = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench registry:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) (err error) {
	var log, sum bytes.Buffer
	out := io.MultiWriter(os.Stdout, &log)
	host, _ := os.Hostname()
	started := time.Now().UTC()
	fmt.Fprintf(out, "# bench/registry %s, host %s\n", started.Format(time.RFC3339), host)
	fmt.Fprintf(out, "# command: cd bench && go run ./registry %s\n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(out, "# machine: %s\n", machine())
	fmt.Fprintf(out, "# load average at start: %s\n", strings.Join(sysstat.LoadAvg(), " "))
	defer func() {
		fmt.Fprintf(out, "# load average at end: %s; finished %s (%s)\n", strings.Join(sysstat.LoadAvg(), " "),
			time.Now().UTC().Format(time.RFC3339), time.Since(started).Round(time.Second))
		if err != nil {
			fmt.Fprintf(&log, "\nFAILED: %v\n", err)
		}
		if werr := writeResults(cfg, started, host, log.Bytes(), sum.Bytes()); werr != nil && err == nil {
			err = werr
		}
	}()

	tmp, err := os.MkdirTemp("", "bench-registry-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := cfg.handoff
	if bin == "" {
		t0 := time.Now()
		if bin, err = buildHandoff(ctx, cfg.src, tmp); err != nil {
			return err
		}
		fmt.Fprintf(out, "# built %s from %s in %s\n", bin, cfg.src, time.Since(t0).Round(time.Millisecond))
	}
	if cfg.wrk != "" && cfg.workloads["wrk"] {
		if p, err := exec.LookPath(cfg.wrk); err != nil {
			fmt.Fprintf(out, "# wrk not found (%v): cross-check skipped\n", err)
			cfg.wrk = ""
		} else {
			cfg.wrk = p
			v, _ := exec.Command(p, "-v").CombinedOutput()
			l, _, _ := strings.Cut(string(v), "\n")
			fmt.Fprintf(out, "# %s\n", strings.TrimSpace(l))
		}
	} else {
		cfg.wrk = ""
	}
	fmt.Fprintf(out, "# settings: rounds %d, warm-up %s, window %s, read conns %d, registration clients %d, %d ids, %d registrations per subject, %d versions, %d checks\n",
		cfg.rounds, cfg.warm, cfg.dur, cfg.conns, cfg.regConns, cfg.ids, cfg.perSubject, cfg.versions, cfg.checks)

	results := map[string][]*roundResult{}
	var names []string
	for _, name := range strings.Split(cfg.dbs, ",") {
		name = strings.TrimSpace(name)
		b := &backend{name: name, cfg: cfg, bin: bin, tmp: tmp}
		if err := b.prepare(ctx, out); err != nil {
			return err
		}
		rs, err := b.runAll(ctx, out)
		b.cleanup()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		results[name] = rs
		names = append(names, name)
	}
	summary(io.MultiWriter(os.Stdout, &sum), cfg, names, results)
	return nil
}

// prepare creates the database (a PostgreSQL schema or a SQLite file).
func (b *backend) prepare(ctx context.Context, out io.Writer) error {
	switch b.name {
	case "postgres":
		conn, err := pgx.Connect(ctx, b.cfg.pg)
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		var version string
		if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
			conn.Close(ctx)
			return err
		}
		schema := "bench_registry_" + strconv.FormatInt(time.Now().Unix()%1_000_000, 36)
		if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
			conn.Close(ctx)
			return fmt.Errorf("create schema %s: %w", schema, err)
		}
		sep := "?"
		if strings.Contains(b.cfg.pg, "?") {
			sep = "&"
		}
		b.db = b.cfg.pg + sep + "search_path=" + schema
		v, _, _ := strings.Cut(version, " on ")
		fmt.Fprintf(out, "# postgres: %s, schema %s (dropped at the end)\n", v, schema)
		b.cleanup = func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
				fmt.Fprintf(os.Stderr, "drop schema %s: %v\n", schema, err)
			}
			conn.Close(ctx)
		}
	case "sqlite":
		dir := b.cfg.sqliteDir
		if dir == "" {
			dir = b.tmp
		}
		b.db = filepath.Join(dir, "registry-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".db")
		fmt.Fprintf(out, "# sqlite: %s (removed at the end)\n", b.db)
		db := b.db
		b.cleanup = func() {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(db + suffix)
			}
		}
	default:
		return fmt.Errorf("unknown -db %q (postgres or sqlite)", b.name)
	}
	return nil
}

// runAll starts the server, runs the rounds and stops the server.
func (b *backend) runAll(ctx context.Context, out io.Writer) (_ []*roundResult, err error) {
	if err := b.start(); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "\n## %s: server pid %d at %s\n", b.name, b.srv.pid, b.srv.url)
	defer func() {
		if serr := b.srv.stop(); serr != nil && err == nil {
			err = serr
		}
		if err != nil {
			err = fmt.Errorf("%w\nserver log (%s): %s", err, b.srv.logPath, tail(b.srv.logPath))
		}
	}()
	t0 := time.Now()
	if err := b.setupReads(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "registered %d read schemas (ids %d..%d) in %s\n", len(b.ids), b.ids[0], b.ids[len(b.ids)-1], time.Since(t0).Round(time.Millisecond))
	var rs []*roundResult
	w := b.cfg.workloads
	for round := range b.cfg.rounds {
		r := &roundResult{}
		rs = append(rs, r)
		fmt.Fprintf(out, "\n### %s round %d (load %s)\n", b.name, round+1, strings.Join(sysstat.LoadAvg(), " "))
		if w["reads"] {
			r.reads = b.reads(ctx)
			if err := loadErr("reads", r.reads); err != nil {
				return rs, err
			}
			r.rssKB = rssKB(b.srv.pid)
			fmt.Fprintf(out, "reads    %2d conns: %8.0f req/s  p50 %s ms  p99 %s ms  max %s ms  (%d requests; %s; server CPU %.1f µs/req; server RSS %d MB)\n",
				b.cfg.conns, r.reads.rate(), ms(r.reads.q(0.5)), ms(r.reads.q(0.99)), ms(r.reads.q(1)), r.reads.n, r.reads.cpu,
				perReq(r.reads.cpu.srvTime, r.reads.n), r.rssKB/1024)
		}
		if w["wrk"] && b.cfg.wrk != "" {
			wr, err := b.runWrk(ctx)
			if err != nil {
				return rs, err
			}
			r.wrk = wr
			fmt.Fprintf(out, "wrk      %2d conns: %8.0f req/s  p50 %s ms  p99 %s ms  (non-2xx %d; %s; server %.2f cores)\n",
				b.cfg.conns, wr.rps, ms(wr.p50), ms(wr.p99), wr.non2xx, orNone(wr.errLine), wr.srvCPU.srv)
			if round == 0 {
				fmt.Fprintf(out, "wrk output, round 1:\n%s", indent(wr.output))
			}
			if wr.non2xx > 0 {
				return rs, fmt.Errorf("wrk: %d non-2xx responses", wr.non2xx)
			}
		}
		if w["regs"] {
			r.own, r.ownSubj = b.regsOwn(ctx, round)
			if err := loadErr("registrations (own subjects)", r.own); err != nil {
				return rs, err
			}
			fmt.Fprintf(out, "regs own %2d clients: %6.0f reg/s  p50 %s ms  p99 %s ms  max %s ms  (%d registrations into %d subjects; %s; server CPU %.0f µs/reg, postgres %.0f µs/reg)\n",
				b.cfg.regConns, r.own.rate(), ms(r.own.q(0.5)), ms(r.own.q(0.99)), ms(r.own.q(1)), r.own.n, r.ownSubj, r.own.cpu,
				perReq(r.own.cpu.srvTime, r.own.n), perReq(r.own.cpu.pgTime, r.own.n))
		}
		if w["regs1"] {
			r.one = b.regsOne(ctx, round)
			if err := loadErr("registrations (one subject)", r.one); err != nil {
				return rs, err
			}
			fmt.Fprintf(out, "regs one %2d clients: %6.0f reg/s  p50 %s ms  p99 %s ms  max %s ms  (%d registrations; %s; server CPU %.0f µs/reg, postgres %.0f µs/reg)\n",
				b.cfg.regConns, r.one.rate(), ms(r.one.q(0.5)), ms(r.one.q(0.99)), ms(r.one.q(1)), r.one.n, r.one.cpu,
				perReq(r.one.cpu.srvTime, r.one.n), perReq(r.one.cpu.pgTime, r.one.n))
		}
		if w["transitive"] {
			if err := b.transitive(ctx, round, r); err != nil {
				return rs, fmt.Errorf("transitive: %w", err)
			}
			fmt.Fprintf(out, "transitive: %d versions registered one by one in %s; FULL_TRANSITIVE check against %d: cold (after restart) %s ms, warm median %s p99 %s max %s ms (%d runs); registering version %d: median %s p99 %s max %s ms\n",
				b.cfg.versions, r.transSetup.Round(time.Millisecond), b.cfg.versions, ms(r.cold),
				ms(quantile(r.checks, 0.5)), ms(quantile(r.checks, 0.99)), ms(quantile(r.checks, 1)), len(r.checks),
				b.cfg.versions+1, ms(quantile(r.regs, 0.5)), ms(quantile(r.regs, 0.99)), ms(quantile(r.regs, 1)))
		}
	}
	return rs, nil
}

func loadErr(what string, r loadResult) error {
	if r.errs > 0 {
		return fmt.Errorf("%s: %d of %d requests failed, first: %w", what, r.errs, r.errs+r.n, r.firstEr)
	}
	if r.n == 0 {
		return fmt.Errorf("%s: no request completed in the window", what)
	}
	return nil
}

func perReq(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

func orNone(s string) string {
	if s == "" {
		return "no socket errors"
	}
	return s
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

// writeResults writes the run's output to <out>/<date>-<host>.md.
func writeResults(cfg config, started time.Time, host string, log, sum []byte) error {
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	path := filepath.Join(cfg.out, started.Format("2006-01-02-150405")+"-"+host+".md")
	body := "```\n" + string(log) + "```\n\n" + string(sum)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		return err
	}
	fmt.Printf("# results written to %s\n", path)
	return nil
}
