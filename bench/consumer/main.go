// Command consumer is the consumer-runtime benchmark of issue 2: handoff's
// consumer with the PostgreSQL inbox against Watermill's router with its
// in-memory deduplicator, both on NATS JetStream, in one run.
//
//	cd bench && go run ./consumer -n 20000 -reps 3
//
// Each repetition runs handoff then Watermill (alternating) on a fresh
// JetStream stream and a fresh PostgreSQL schema (bench_*, dropped at the
// end). Throughput: N messages are published first, then the consumer is
// started and timed until the N-th handler transaction has committed.
// Latency: messages are published at a fixed rate while the consumer runs,
// each carrying its publish time; commit time minus publish time is recorded
// after the handler's transaction committed. Every run is checked: rows == N
// and no duplicate ids, and handoff's run leaves no dead letter.
//
// Limits (-limits): the same transaction without consuming, with
// synchronous_commit off, Watermill's transaction alone, 32 messages per
// transaction with a savepoint each (what grouping would allow; handoff does
// not group), and handoff's runtime with a handler that does nothing. Each
// run reports its CPU per message for the benchmark process, its PostgreSQL
// backends and nats-server, and PostgreSQL's commits and WAL flushes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/handoffhq/handoff/bench/internal/sysstat"
)

type config struct {
	n        int
	reps     int
	workers  int
	inflight int
	keys     int
	size     int
	latDur   time.Duration
	rate     float64
	rateMode string
	natsURL  string
	pgURL    string
	limits   bool
	cpuprof  string
	skipLat  bool
	batch    int
}

func main() {
	var cfg config
	flag.IntVar(&cfg.n, "n", 20000, "messages per throughput run")
	flag.IntVar(&cfg.reps, "reps", 3, "repetitions of each measurement (alternating handoff, Watermill)")
	flag.IntVar(&cfg.workers, "workers", 8, "handoff workers = Watermill SubscribersCount")
	flag.IntVar(&cfg.inflight, "inflight", 1000, "max unacked messages (handoff WithMaxInFlight = Watermill MaxAckPending)")
	flag.IntVar(&cfg.keys, "keys", 64, "partition keys")
	flag.IntVar(&cfg.size, "size", 1024, "payload bytes (JSON)")
	flag.DurationVar(&cfg.latDur, "latency-duration", 10*time.Second, "publishing time of each latency run")
	flag.Float64Var(&cfg.rate, "rate", 0, "latency publish rate, msgs/s (0: from -rate-mode)")
	flag.StringVar(&cfg.rateMode, "rate-mode", "handoff", "with -rate 0: 'handoff' = half of handoff's median throughput for both, 'own' = half of each one's own median")
	flag.StringVar(&cfg.natsURL, "nats", "nats://127.0.0.1:4222", "NATS URL")
	flag.StringVar(&cfg.pgURL, "pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL URL (schemas bench_* are created and dropped in it)")
	flag.BoolVar(&cfg.limits, "limits", true, "also measure what limits the rate (transaction alone, synchronous_commit off, no-op handler)")
	flag.StringVar(&cfg.cpuprof, "cpuprofile", "", "write a CPU profile of the first handoff throughput run's consumption (from the consumer's start to the last commit) to this file")
	flag.BoolVar(&cfg.skipLat, "skip-latency", false, "skip the latency runs")
	flag.IntVar(&cfg.batch, "batch", 32, "handoff: messages of different keys per inbox transaction (a savepoint each); 1 = one transaction per message")
	flag.Parse()
	if err := cfg.check(); err != nil {
		fmt.Fprintln(os.Stderr, "consumer bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "consumer bench:", err)
		os.Exit(1)
	}
}

func (c config) check() error {
	switch {
	case c.n < 1:
		return fmt.Errorf("-n %d: must be ≥ 1", c.n)
	case c.reps < 1:
		return fmt.Errorf("-reps %d: must be ≥ 1", c.reps)
	case c.workers < 1:
		return fmt.Errorf("-workers %d: must be ≥ 1", c.workers)
	case c.inflight < 1:
		return fmt.Errorf("-inflight %d: must be ≥ 1", c.inflight)
	case c.keys < 1:
		return fmt.Errorf("-keys %d: must be ≥ 1", c.keys)
	case c.size < 64:
		return fmt.Errorf("-size %d: must be ≥ 64", c.size)
	case c.rateMode != "handoff" && c.rateMode != "own":
		return fmt.Errorf("-rate-mode %q: must be handoff or own", c.rateMode)
	}
	return nil
}

// result is one measured run.
type result struct {
	system  string // "handoff" or "watermill"
	phase   string // "throughput" or "latency"
	n       int
	elapsed time.Duration
	// firstAfter is the time from the consumer's start to its first commit.
	firstAfter time.Duration
	rate       float64 // msgs/s handled (throughput) or offered (latency)
	lat        []time.Duration
	series     []int64 // commits in each second
	commits    int64   // pg_stat_database xact_commit delta (whole database)
	walSyncs   int64   // pg_stat_wal wal_sync delta (whole server)
	cpuBusy    float64 // machine CPU busy fraction during the run
	procCPU    time.Duration
	svcCPU     map[string]time.Duration
	rows       int
	distinct   int
}

func (r result) msgsPerSec() float64 { return float64(r.n) / r.elapsed.Seconds() }

// steady is the rate from the first commit to the last one.
func (r result) steady() float64 { return float64(r.n-1) / (r.elapsed - r.firstAfter).Seconds() }

func run(ctx context.Context, cfg config) error {
	e, err := newEnv(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.close()

	fmt.Printf("consumer bench: n=%d reps=%d workers=%d inflight=%d keys=%d size=%dB batch=%d nats=%s GOMAXPROCS=%d\n",
		cfg.n, cfg.reps, cfg.workers, cfg.inflight, cfg.keys, cfg.size, cfg.batch, cfg.natsURL, runtime.GOMAXPROCS(0))
	fmt.Printf("load average at start: %s\n", strings.Join(sysstat.LoadAvg(), " "))

	var thr = map[string][]result{}
	for i := 0; i < cfg.reps; i++ {
		for _, sys := range []string{"handoff", "watermill"} {
			if sys == "handoff" && i == 0 && cfg.cpuprof != "" {
				profileNext = cfg.cpuprof // the sampler profiles the consumption window only
			}
			r, err := e.measure(ctx, sys, "throughput", cfg.n, 0, 0)
			profileNext = ""
			if err != nil {
				return fmt.Errorf("%s throughput rep %d: %w", sys, i+1, err)
			}
			thr[sys] = append(thr[sys], r)
			defer fmt.Printf("  timeline %s rep %d, commits per second: %v\n", sys, i+1, r.series)
			fmt.Printf("  throughput rep %d %-9s %8.0f msgs/s  (%d in %v, first commit after %v, %.0f msgs/s from then; %d PG commits, %d WAL flushes; machine cpu busy %.0f%%; cpu µs/msg: bench %.0f, its postgres backends %.0f, nats-server %.0f; rows %d distinct %d)\n",
				i+1, sys, r.msgsPerSec(), r.n, r.elapsed.Round(time.Millisecond), r.firstAfter.Round(time.Millisecond), r.steady(), r.commits, r.walSyncs, 100*r.cpuBusy,
				perMsg(r.procCPU, r.n), perMsg(r.svcCPU["postgres"], r.n), perMsg(r.svcCPU["nats-server"], r.n), r.rows, r.distinct)
		}
	}
	med := func(rs []result) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = r.msgsPerSec()
		}
		return median(v)
	}
	hThr, wThr := med(thr["handoff"]), med(thr["watermill"])

	lat := map[string][]result{}
	rates := map[string]float64{}
	if !cfg.skipLat {
		switch {
		case cfg.rate > 0:
			rates["handoff"], rates["watermill"] = cfg.rate, cfg.rate
		case cfg.rateMode == "own":
			rates["handoff"], rates["watermill"] = hThr/2, wThr/2
		default:
			rates["handoff"], rates["watermill"] = hThr/2, hThr/2
		}
		for i := 0; i < cfg.reps; i++ {
			for _, sys := range []string{"handoff", "watermill"} {
				r, err := e.measure(ctx, sys, "latency", 0, rates[sys], cfg.latDur)
				if err != nil {
					return fmt.Errorf("%s latency rep %d: %w", sys, i+1, err)
				}
				lat[sys] = append(lat[sys], r)
				fmt.Printf("  latency    rep %d %-9s %6.0f msgs/s offered, %d msgs: p50 %v p99 %v max %v (cpu busy %.0f%%, rows %d distinct %d)\n",
					i+1, sys, r.rate, r.n, pct(r.lat, 50), pct(r.lat, 99), pct(r.lat, 100), 100*r.cpuBusy, r.rows, r.distinct)
			}
		}
	}

	var lim []limit
	if cfg.limits {
		lim, err = e.limits(ctx)
		if err != nil {
			return fmt.Errorf("limits: %w", err)
		}
	}

	report(cfg, thr, lat, rates, hThr, wThr, lim)
	return nil
}

func report(cfg config, thr, lat map[string][]result, rates map[string]float64, hThr, wThr float64, lim []limit) {
	fmt.Println()
	fmt.Println("raw numbers")
	for _, sys := range []string{"handoff", "watermill"} {
		var t []string
		for _, r := range thr[sys] {
			t = append(t, fmt.Sprintf("%.0f", r.msgsPerSec()))
		}
		fmt.Printf("  %-9s throughput msgs/s: %s\n", sys, strings.Join(t, ", "))
		var p50, p99, mx []string
		for _, r := range lat[sys] {
			p50 = append(p50, ms(pct(r.lat, 50)))
			p99 = append(p99, ms(pct(r.lat, 99)))
			mx = append(mx, ms(pct(r.lat, 100)))
		}
		if len(lat[sys]) > 0 {
			fmt.Printf("  %-9s latency at %.0f msgs/s: p50 %s ms; p99 %s ms; max %s ms\n", sys, rates[sys],
				strings.Join(p50, ", "), strings.Join(p99, ", "), strings.Join(mx, ", "))
		}
	}
	fmt.Println()
	fmt.Printf("medians of %d runs (n=%d, %dB, %d keys, %d workers/subscribers)\n", cfg.reps, cfg.n, cfg.size, cfg.keys, cfg.workers)
	fmt.Println("| system | msgs/s | latency rate (msgs/s) | p50 ms | p99 ms | max ms |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	for _, sys := range []string{"handoff", "watermill"} {
		t := hThr
		name := "handoff (consumer + PostgreSQL inbox)"
		if sys == "watermill" {
			t, name = wThr, "Watermill (router + in-memory Deduplicator)"
		}
		p := func(q float64) string {
			if len(lat[sys]) == 0 {
				return "-"
			}
			v := make([]float64, len(lat[sys]))
			for i, r := range lat[sys] {
				v[i] = float64(pct(r.lat, q)) / float64(time.Millisecond)
			}
			return fmt.Sprintf("%.1f", median(v))
		}
		fmt.Printf("| %s | %.0f | %.0f | %s | %s | %s |\n", name, t, rates[sys], p(50), p(99), p(100))
	}
	fmt.Printf("\nratio handoff/Watermill throughput: %.2fx (target ≥ 2x: %v)\n", hThr/wThr, hThr/wThr >= 2)
	// The machine is shared: the ratio within each repetition (handoff and
	// Watermill back to back) and the CPU each spends per message are more
	// robust than the ratio of the medians.
	var per, hc, wc []float64
	cpu := func(r result) float64 {
		return perMsg(r.procCPU, r.n) + perMsg(r.svcCPU["postgres"], r.n) + perMsg(r.svcCPU["nats-server"], r.n)
	}
	for i := range min(len(thr["handoff"]), len(thr["watermill"])) {
		h, w := thr["handoff"][i], thr["watermill"][i]
		per = append(per, h.msgsPerSec()/w.msgsPerSec())
		hc, wc = append(hc, cpu(h)), append(wc, cpu(w))
	}
	fmt.Printf("ratio per repetition: %s → median %.2fx\n", joinf(per, "%.2f"), median(per))
	fmt.Printf("cpu µs/msg (bench + its postgres backends + nats-server), handoff: %s → median %.0f; Watermill: %s → median %.0f; Watermill ÷ handoff %.2fx\n",
		joinf(hc, "%.0f"), median(hc), joinf(wc, "%.0f"), median(wc), median(wc)/median(hc))
	if len(lim) > 0 {
		fmt.Println("\nwhat limits the rate (one run each)")
		for _, l := range lim {
			fmt.Printf("  %-56s %7.0f /s  (%.1f msgs per WAL flush; machine cpu busy %.0f%%; cpu µs/msg: bench %.0f, postgres %.0f, nats-server %.0f)\n",
				l.name, l.rate, l.perFlush, 100*l.cpuBusy, perMsg(l.s.proc, l.n), perMsg(l.s.svc["postgres"], l.n), perMsg(l.s.svc["nats-server"], l.n))
		}
	}
	fmt.Printf("load average at end: %s\n", strings.Join(sysstat.LoadAvg(), " "))
}

func perMsg(d time.Duration, n int) float64 {
	return float64(d) / float64(time.Microsecond) / float64(n)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pct returns the q-th percentile (nearest rank) of d; q=100 is the max.
func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q/100*float64(len(s))+0.5) - 1
	i = max(0, min(i, len(s)-1))
	return s[i]
}

func joinf(v []float64, f string) string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = fmt.Sprintf(f, x)
	}
	return strings.Join(out, ", ")
}
