// Command relay measures handoff's outbox and relay end to end against
// Watermill's forwarder (issue 3): PostgreSQL outbox → relay → NATS
// JetStream → consumer with the inbox on a second PostgreSQL database, 1 KB
// payloads. It is a program, not a test, so CI never runs it:
//
//	cd bench && go run ./relay -rounds 3
//
// Per round, alternating handoff and Watermill: the database-only ceiling
// (the business-row + outbox-row transaction with no relay), sustained rates
// with producers saturating PostgreSQL (relay only, then with the consumer
// on), commit-to-receipt latency at half the sustained end-to-end rate, and
// the drain rate of a backlog committed before the relay started. Every
// measurement checks that every committed event arrived.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/outbox"
)

type config struct {
	pg, nats              string
	writers, keys, size   int
	dur, latDur           time.Duration
	backlog               int64
	fillWriters, fillPer  int
	rounds, batch, relays int
	workers               int
	wmPoll                time.Duration
	cpuprofile            string
	drainprofile          string
	phases                string
	systems               string
	notify                bool
	relayParams           string
	linger                time.Duration
	latRate               float64
	relayLinger           time.Duration
	consumerBatch         int
	consumerInflight      int
}

// system is one stack under test, set up in one measurement's space.
type system interface {
	name() string
	commit(ctx context.Context, seq int64) error
	fill(ctx context.Context, n int64, per int) error
	startRelay(ctx context.Context) error
	startConsumer(ctx context.Context) error
	stream() string
	pending(ctx context.Context) (int64, error) // outbox rows left; -1: not measured
	phases() *phaseTiming                       // nil: not measured
	close() error
}

type factory func(ctx context.Context, cfg config, sp *space, tr *tracker) (system, error)

var factories = map[string]factory{"handoff": newHandoff, "watermill": newWatermill,
	"handoff-wal": newHandoffWAL(postgres.WALMessages), "handoff-walrows": newHandoffWAL(postgres.WALRows)}

func main() {
	var cfg config
	var backlog int
	flag.StringVar(&cfg.pg, "pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL URL (its database is used to create and drop the bench databases)")
	flag.StringVar(&cfg.nats, "nats", "nats://127.0.0.1:4222", "NATS URL (JetStream)")
	flag.IntVar(&cfg.writers, "writers", 8, "producer goroutines (one transaction at a time each)")
	flag.IntVar(&cfg.keys, "keys", 1000, "partition keys")
	flag.IntVar(&cfg.size, "size", 1024, "event payload bytes")
	flag.DurationVar(&cfg.dur, "dur", 10*time.Second, "length of the ceiling and sustained windows")
	flag.DurationVar(&cfg.latDur, "latdur", 10*time.Second, "length of the latency window")
	flag.IntVar(&backlog, "backlog", 200_000, "events in the drain backlog")
	flag.IntVar(&cfg.fillWriters, "fill-writers", 4, "goroutines filling the backlog")
	flag.IntVar(&cfg.fillPer, "fill-per", 50, "events per transaction when filling the backlog")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds (medians are quoted)")
	flag.IntVar(&cfg.batch, "batch", 1000, "handoff relay batch size (relay.WithBatchSize)")
	flag.IntVar(&cfg.relays, "relays", 1, "handoff relays")
	flag.IntVar(&cfg.workers, "workers", 16, "consumer workers (handoff WithWorkers, Watermill SubscribersCount)")
	flag.DurationVar(&cfg.wmPoll, "wm-poll", 10*time.Millisecond, "Watermill SQL subscriber PollInterval (its default is 1s)")
	flag.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write a CPU profile of handoff's first sustained end-to-end window here (pprof labels part=relay|consumer)")
	flag.StringVar(&cfg.drainprofile, "drainprofile", "", "write a CPU profile of handoff's first backlog drain here")
	flag.StringVar(&cfg.phases, "phases", "ceiling,writer,relay,consumer,e2e,latency,drain", "measurements to run")
	flag.StringVar(&cfg.systems, "systems", "handoff,watermill", "systems to run, in this order each round")
	flag.BoolVar(&cfg.notify, "notify", true, "experiment: false writes handoff's outbox without NOTIFY (relay polls)")
	flag.StringVar(&cfg.relayParams, "relay-params", "", "experiment: runtime parameters for the relay's PostgreSQL connections, e.g. synchronous_commit=off")
	flag.IntVar(&cfg.consumerBatch, "consumer-batch", 32, "handoff consumer: messages of different keys per inbox transaction (consumer.WithBatchSize); 1: one transaction per message")
	flag.IntVar(&cfg.consumerInflight, "consumer-inflight", 1000, "handoff consumer with -consumer-batch > 1: consumer.WithMaxInFlight")
	flag.DurationVar(&cfg.linger, "linger", time.Millisecond, "WAL relay: how long a batch waits for more events (postgres.WithWALBatch)")
	flag.DurationVar(&cfg.relayLinger, "relay-linger", -1, "table-mode relay: relay.WithLinger (-1: the library's default)")
	flag.Float64Var(&cfg.latRate, "latrate", 0, "events/s of the latency phase (0: half of the round's end-to-end received/s, or 1000 without the e2e phase)")
	flag.Parse()
	cfg.backlog = int64(backlog)

	if os.Getenv("HANDOFF_BENCH_FETCHLOG") != "" {
		fetchLog = &fetchLogger{}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench relay:", err)
		os.Exit(1)
	}
}

// result is one measurement of one system in one round.
type result struct {
	ceiling float64 // commits/s, no relay

	relayCommit, relayPub float64 // relay only: commits/s and publishes/s in the window
	relayMaxBacklog       int64
	relayEndBacklog       int64
	relayTail             time.Duration

	e2eCommit, e2ePub, e2eRecv float64
	e2eMaxLag, e2eEndLag       int64 // committed − received
	e2eTail                    time.Duration

	latRate       float64
	p50, p99, pmx time.Duration

	fillRate, drain float64

	consumerCeiling float64 // received/s draining a full stream, relay idle
}

func run(ctx context.Context, cfg config) error {
	e, err := newEnv(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.close()
	host, _ := os.Hostname()
	fmt.Printf("# bench/relay %s, host %s, %d CPUs, %s, run id %s\n", time.Now().UTC().Format(time.RFC3339), host, runtime.NumCPU(), runtime.Version(), e.id)
	fmt.Printf("# flags: %s\n", strings.Join(os.Args[1:], " "))
	systems := strings.Split(cfg.systems, ",")
	want := map[string]bool{}
	for _, p := range strings.Split(cfg.phases, ",") {
		want[p] = true
	}
	res := map[string][]*result{}
	for round := range cfg.rounds {
		rs := map[string]*result{}
		for _, s := range systems {
			if factories[s] == nil {
				return fmt.Errorf("unknown system %q", s)
			}
			rs[s] = &result{}
			res[s] = append(res[s], rs[s])
		}
		step := func(phase string, f func(sys string, r *result) error) error {
			if !want[phase] {
				return nil
			}
			for _, s := range systems {
				if err := f(s, rs[s]); err != nil {
					return fmt.Errorf("round %d %s %s: %w", round+1, phase, s, err)
				}
			}
			return nil
		}
		fmt.Printf("\n## round %d\n", round+1)
		if err := step("ceiling", func(s string, r *result) error { return e.ceiling(ctx, s, r) }); err != nil {
			return err
		}
		if want["writer"] {
			if err := e.writerVariants(ctx); err != nil {
				return err
			}
		}
		if err := step("relay", func(s string, r *result) error { return e.sustained(ctx, s, r, false, "") }); err != nil {
			return err
		}
		if err := step("consumer", func(s string, r *result) error { return e.consumerCeiling(ctx, s, r) }); err != nil {
			return err
		}
		if err := step("e2e", func(s string, r *result) error {
			prof := ""
			if round == 0 && strings.HasPrefix(s, "handoff") && prof == "" && cfg.cpuprofile != "" {
				prof = strings.Replace(cfg.cpuprofile, ".pprof", "-"+s+".pprof", 1)
			}
			return e.sustained(ctx, s, r, true, prof)
		}); err != nil {
			return err
		}
		if err := step("latency", func(s string, r *result) error {
			rate := r.e2eRecv / 2
			if cfg.latRate > 0 {
				rate = cfg.latRate
			}
			if rate == 0 {
				rate = 1000
			}
			return e.latency(ctx, s, r, rate)
		}); err != nil {
			return err
		}
		if err := step("drain", func(s string, r *result) error {
			prof := ""
			if round == 0 && s == "handoff" {
				prof = cfg.drainprofile
			}
			return e.drain(ctx, s, r, prof)
		}); err != nil {
			return err
		}
	}
	summary(cfg, systems, res)
	return nil
}

// measure sets up a space and a system, runs f, and tears both down.
func (e *env) measure(ctx context.Context, sys, label string, f func(s system, sp *space, tr *tracker) error) error {
	sp, err := e.space(ctx, sys[:1]+"_"+label)
	if err != nil {
		return err
	}
	defer sp.drop()
	tr := newTracker()
	s, err := factories[sys](ctx, e.cfg, sp, tr)
	if err != nil {
		return err
	}
	sp.streams = append(sp.streams, s.stream())
	err = f(s, sp, tr)
	return errors.Join(err, s.close())
}

func (e *env) ceiling(ctx context.Context, sys string, r *result) error {
	return e.measure(ctx, sys, "ceil", func(s system, sp *space, tr *tracker) error {
		var smp sampler
		smp.start()
		if err := produce(ctx, e.cfg.writers, e.cfg.dur, 0, 0, s.commit); err != nil {
			return err
		}
		smp.stop()
		n := tr.committed.Load()
		r.ceiling = float64(n) / smp.elapsed.Seconds()
		rows, err := count(ctx, e.prodAdmin, "SELECT COUNT(*) FROM "+sp.name+".bench_orders")
		if err != nil {
			return err
		}
		if rows != n {
			return fmt.Errorf("correctness: %d business rows, %d commits", rows, n)
		}
		fmt.Printf("%-9s ceiling (no relay):       %6.0f tx/s   (%d tx in %.1fs; %s)\n", sys, r.ceiling, n, smp.elapsed.Seconds(), smp.cores())
		return nil
	})
}

// writerVariants measures the parts of handoff's write transaction with
// the statements of its PostgreSQL outbox store, no relay: business row +
// outbox row; + the per-key lock row; + NOTIFY (the full transaction).
func (e *env) writerVariants(ctx context.Context) error {
	for _, v := range []struct {
		name              string
		lock, notif       bool
		noRow, walMessage bool
		advisory          bool
	}{
		{name: "business row alone", noRow: true},
		{name: "business + logical decoding message", noRow: true, walMessage: true},
		{name: "business + outbox insert"},
		{name: "+ key lock upsert", lock: true},
		{name: "+ advisory key lock", advisory: true},
		{name: "+ advisory key lock + NOTIFY", advisory: true, notif: true},
		{name: "business + outbox insert + NOTIFY", notif: true},
	} {
		err := e.measure(ctx, "handoff", "wv", func(s system, sp *space, tr *tracker) error {
			db := s.(*handoffSys).db
			var smp sampler
			smp.start()
			err := produce(ctx, e.cfg.writers, e.cfg.dur/2, 0, 0, func(ctx context.Context, seq int64) error {
				key := "k" + strconv.FormatInt(seq%int64(e.cfg.keys), 10)
				id := handoff.NewID()
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					return err
				}
				defer tx.Rollback()
				if _, err := tx.ExecContext(ctx, `INSERT INTO bench_orders (id, k, n) VALUES ($1, $2, $3)`, id, key, seq); err != nil {
					return err
				}
				if v.lock {
					if _, err := tx.ExecContext(ctx, `INSERT INTO handoff_outbox_keys (partition_key, writes) VALUES ($1, 1)
		ON CONFLICT (partition_key) DO UPDATE SET writes = handoff_outbox_keys.writes + 1`, key); err != nil {
						return err
					}
				}
				if v.advisory {
					h := fnv.New32a()
					h.Write([]byte(key))
					if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, int32(0x68616e64), int32(h.Sum32())); err != nil {
						return err
					}
				}
				if v.walMessage {
					// What WAL mode writes: the envelope as a transactional
					// logical decoding message, no table row.
					if _, err := tx.ExecContext(ctx, `SELECT pg_logical_emit_message(true, 'handoff', $1::bytea)`,
						payload(key, seq, e.cfg.size+300)); err != nil {
						return err
					}
				}
				if !v.noRow {
					if _, err := tx.ExecContext(ctx, `INSERT INTO handoff_outbox (topic, partition_no, partition_key, message_id, envelope, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
						sp.topic, outbox.Partition(key, id, outbox.DefaultPartitions), key, id, payload(key, seq, e.cfg.size+300), time.Now().UTC()); err != nil {
						return err
					}
				}
				if v.notif {
					if _, err := tx.ExecContext(ctx, `NOTIFY handoff_outbox`); err != nil {
						return err
					}
				}
				if err := tx.Commit(); err != nil {
					return err
				}
				tr.committed.Add(1)
				return nil
			})
			smp.stop()
			if err != nil {
				return err
			}
			fmt.Printf("handoff   writer parts: %-34s %6.0f tx/s (%s)\n", v.name, float64(tr.committed.Load())/smp.elapsed.Seconds(), smp.cores())
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// sustained runs producers flat out for dur with the relay (and the
// consumer, when e2e) running, then waits until everything arrived.
func (e *env) sustained(ctx context.Context, sys string, r *result, e2e bool, profile string) error {
	label := "relay"
	if e2e {
		label = "e2e"
	}
	return e.measure(ctx, sys, label, func(s system, sp *space, tr *tracker) error {
		if e2e {
			if err := s.startConsumer(ctx); err != nil {
				return err
			}
		}
		if err := s.startRelay(ctx); err != nil {
			return err
		}
		time.Sleep(500 * time.Millisecond) // subscriptions and leases in place
		stream := s.stream()
		var (
			mu         sync.Mutex
			maxBacklog int64
			maxLag     int64
			lastPub    int64
		)
		sctx, stopSampling := context.WithCancel(ctx)
		defer stopSampling()
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-sctx.Done():
					return
				case <-t.C:
				}
				c := tr.committed.Load()
				p, err := e.streamMsgs(sctx, stream)
				if err != nil {
					continue
				}
				mu.Lock()
				maxBacklog = max(maxBacklog, c-p)
				maxLag = max(maxLag, c-tr.received.Load())
				lastPub = p
				mu.Unlock()
			}
		}()
		var ph0 phaseSnapshot
		if s.phases() != nil {
			ph0 = s.phases().snapshot()
		}
		if profile != "" {
			f, err := os.Create(profile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
		}
		var smp sampler
		smp.start()
		err := produce(ctx, e.cfg.writers, e.cfg.dur, 0, 0, s.commit)
		c := tr.committed.Load()
		p, perr := e.streamMsgs(ctx, stream)
		recv := tr.distinctReceived()
		smp.stop()
		if profile != "" {
			pprof.StopCPUProfile()
		}
		stopSampling()
		<-sampled
		if err != nil {
			return err
		}
		if perr != nil {
			return perr
		}
		_ = lastPub
		sec := smp.elapsed.Seconds()
		var phases string
		if s.phases() != nil {
			phases = s.phases().snapshot().sub(ph0).String()
		}
		windowEnd := time.Now()
		if err := waitFor(ctx, 60*time.Second, func() (bool, error) {
			n, err := e.streamMsgs(ctx, stream)
			if err != nil {
				return false, err
			}
			return n >= c && (!e2e || tr.distinctReceived() >= c), nil
		}, func() int64 {
			n, _ := e.streamMsgs(ctx, stream)
			return n + tr.received.Load()
		}); err != nil {
			return fmt.Errorf("waiting for the tail: %w", err)
		}
		tail := time.Since(windowEnd)
		if err := e.checkAll(ctx, s, sp, tr, c, e2e); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if !e2e {
			r.relayCommit, r.relayPub = float64(c)/sec, float64(p)/sec
			r.relayMaxBacklog, r.relayEndBacklog, r.relayTail = max(maxBacklog, c-p), c-p, tail
			fmt.Printf("%-9s relay only, saturating:   %6.0f commits/s, %6.0f published/s; backlog max %d, at end %d; tail %.2fs; %s\n",
				sys, r.relayCommit, r.relayPub, r.relayMaxBacklog, r.relayEndBacklog, tail.Seconds(), smp.cores())
		} else {
			r.e2eCommit, r.e2ePub, r.e2eRecv = float64(c)/sec, float64(p)/sec, float64(recv)/sec
			r.e2eMaxLag, r.e2eEndLag, r.e2eTail = max(maxLag, c-recv), c-recv, tail
			fmt.Printf("%-9s end to end, saturating:   %6.0f commits/s, %6.0f published/s, %6.0f received/s; consumer lag max %d, at end %d; backlog max %d; tail %.2fs; %s\n",
				sys, r.e2eCommit, r.e2ePub, r.e2eRecv, r.e2eMaxLag, r.e2eEndLag, max(maxBacklog, c-p), tail.Seconds(), smp.cores())
		}
		if phases != "" {
			fmt.Printf("          %s\n", phases)
		}
		return nil
	})
}

// checkAll checks that the stream holds exactly the committed events, the
// outbox is empty (handoff), and with a consumer that every committed event
// was received and had its effect exactly once.
func (e *env) checkAll(ctx context.Context, s system, sp *space, tr *tracker, c int64, e2e bool) error {
	n, err := e.streamMsgs(ctx, s.stream())
	if err != nil {
		return err
	}
	if n != c {
		return fmt.Errorf("correctness: stream holds %d messages, %d committed", n, c)
	}
	if err := waitFor(ctx, 10*time.Second, func() (bool, error) {
		left, err := s.pending(ctx)
		return left <= 0, err
	}, func() int64 { return 0 }); err != nil {
		return fmt.Errorf("outbox not emptied: %w", err)
	}
	if !e2e {
		return nil
	}
	if err := tr.check(); err != nil {
		return err
	}
	// Effects commit after receipt: wait for the last ones.
	var rows, distinct int64
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := e.consAdmin.QueryRowContext(ctx, "SELECT COUNT(*), COUNT(DISTINCT msg_id) FROM "+sp.name+".bench_effects").Scan(&rows, &distinct); err != nil {
			return err
		}
		if rows >= c || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if rows != c || distinct != c {
		return fmt.Errorf("correctness: %d effect rows, %d distinct, want %d", rows, distinct, c)
	}
	return nil
}

func (e *env) latency(ctx context.Context, sys string, r *result, rate float64) error {
	return e.measure(ctx, sys, "lat", func(s system, sp *space, tr *tracker) error {
		if err := s.startConsumer(ctx); err != nil {
			return err
		}
		if err := s.startRelay(ctx); err != nil {
			return err
		}
		time.Sleep(500 * time.Millisecond)
		var smp sampler
		smp.start()
		if err := produce(ctx, e.cfg.writers, e.cfg.latDur, rate, 0, s.commit); err != nil {
			return err
		}
		c := tr.committed.Load()
		if err := waitFor(ctx, 60*time.Second, func() (bool, error) { return tr.distinctReceived() >= c, nil },
			func() int64 { return tr.received.Load() }); err != nil {
			return err
		}
		smp.stop()
		if err := e.checkAll(ctx, s, sp, tr, c, true); err != nil {
			return err
		}
		lat := tr.latencies()
		if path := os.Getenv("HANDOFF_BENCH_FETCHLOG"); path != "" && fetchLog != nil {
			tr.dump(path, fetchLog)
		}
		r.latRate = float64(c) / e.cfg.latDur.Seconds()
		r.p50, r.p99, r.pmx = quantile(lat, 0.50), quantile(lat, 0.99), quantile(lat, 1)
		toPub, toRecv := tr.split()
		fmt.Printf("%-9s latency at %5.0f ev/s:   p50 %s, p99 %s, max %s (%d events; %s)\n",
			sys, r.latRate, ms(r.p50), ms(r.p99), ms(r.pmx), len(lat), smp.cores())
		fmt.Printf("          commit→publish acked p50 %s p99 %s; publish acked→receipt p50 %s p99 %s\n",
			ms(quantile(toPub, .5)), ms(quantile(toPub, .99)), ms(quantile(toRecv, .5)), ms(quantile(toRecv, .99)))
		if toFetch, fetchToPub := tr.fetchSplit(); len(toFetch) > 0 {
			fmt.Printf("          commit→fetch start p50 %s p99 %s; fetch start→publish acked p50 %s p99 %s\n",
				ms(quantile(toFetch, .5)), ms(quantile(toFetch, .99)), ms(quantile(fetchToPub, .5)), ms(quantile(fetchToPub, .99)))
		}
		return nil
	})
}

func (e *env) drain(ctx context.Context, sys string, r *result, profile string) error {
	return e.measure(ctx, sys, "drain", func(s system, sp *space, tr *tracker) error {
		t0 := time.Now()
		if err := s.fill(ctx, e.cfg.backlog, e.cfg.fillPer); err != nil {
			return fmt.Errorf("fill: %w", err)
		}
		r.fillRate = float64(e.cfg.backlog) / time.Since(t0).Seconds()
		c := tr.committed.Load()
		if c != e.cfg.backlog {
			return fmt.Errorf("fill committed %d, want %d", c, e.cfg.backlog)
		}
		if _, err := e.prodAdmin.ExecContext(ctx, "VACUUM ANALYZE"); err != nil {
			return err
		}
		var ph0 phaseSnapshot
		if s.phases() != nil {
			ph0 = s.phases().snapshot()
		}
		if profile != "" {
			f, err := os.Create(profile)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
		}
		var smp sampler
		smp.start()
		if err := s.startRelay(ctx); err != nil {
			return err
		}
		stream := s.stream()
		err := waitFor(ctx, 60*time.Second, func() (bool, error) {
			n, err := e.streamMsgs(ctx, stream)
			return n >= c, err
		}, func() int64 { n, _ := e.streamMsgs(ctx, stream); return n })
		smp.stop()
		if profile != "" {
			pprof.StopCPUProfile()
		}
		if err != nil {
			return err
		}
		r.drain = float64(c) / smp.elapsed.Seconds()
		if err := e.checkAll(ctx, s, sp, tr, c, false); err != nil {
			return err
		}
		fmt.Printf("%-9s backlog drain:            %6.0f ev/s   (%d events in %.2fs, filled at %.0f ev/s; %s)\n",
			sys, r.drain, c, smp.elapsed.Seconds(), r.fillRate, smp.cores())
		if s.phases() != nil {
			fmt.Printf("          %s\n", s.phases().snapshot().sub(ph0))
		}
		return nil
	})
}

// consumerCeiling is the consumer side alone: the stream is filled first
// (a backlog committed, then relayed with no consumer running), then the
// consumer with its inbox starts and drains it; received/s is its ceiling,
// the other side of end-to-end's "smaller of the two ceilings".
func (e *env) consumerCeiling(ctx context.Context, sys string, r *result) error {
	return e.measure(ctx, sys, "cons", func(s system, sp *space, tr *tracker) error {
		if err := s.fill(ctx, e.cfg.backlog, e.cfg.fillPer); err != nil {
			return fmt.Errorf("fill: %w", err)
		}
		c := tr.committed.Load()
		if err := s.startRelay(ctx); err != nil {
			return err
		}
		stream := s.stream()
		if err := waitFor(ctx, 120*time.Second, func() (bool, error) {
			n, err := e.streamMsgs(ctx, stream)
			return n >= c, err
		}, func() int64 { n, _ := e.streamMsgs(ctx, stream); return n }); err != nil {
			return fmt.Errorf("filling the stream: %w", err)
		}
		var smp sampler
		smp.start()
		if err := s.startConsumer(ctx); err != nil {
			return err
		}
		if err := waitFor(ctx, 120*time.Second, func() (bool, error) { return tr.distinctReceived() >= c, nil },
			func() int64 { return tr.received.Load() }); err != nil {
			return err
		}
		smp.stop()
		if err := e.checkAll(ctx, s, sp, tr, c, true); err != nil {
			return err
		}
		r.consumerCeiling = float64(c) / smp.elapsed.Seconds()
		fmt.Printf("%-9s consumer ceiling (stream full, relay idle): %6.0f received/s (%d in %.2fs; %s)\n",
			sys, r.consumerCeiling, c, smp.elapsed.Seconds(), smp.cores())
		return nil
	})
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/1e6) }

func median[T any](rs []*result, f func(*result) T, less func(a, b T) int) T {
	v := make([]T, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.SortFunc(v, less)
	return v[len(v)/2]
}

func medF(rs []*result, f func(*result) float64) float64 {
	return median(rs, f, func(a, b float64) int {
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	})
}

func medD(rs []*result, f func(*result) time.Duration) time.Duration {
	return median(rs, f, func(a, b time.Duration) int { return int(a - b) })
}

func medI(rs []*result, f func(*result) int64) int64 {
	return median(rs, f, func(a, b int64) int {
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	})
}

func summary(cfg config, systems []string, res map[string][]*result) {
	fmt.Printf("\n## medians of %d rounds\n\n", cfg.rounds)
	fmt.Println("| | " + strings.Join(systems, " | ") + " |")
	fmt.Println("|---" + strings.Repeat("|---:", len(systems)) + "|")
	row := func(label string, f func(rs []*result) string) {
		cells := make([]string, len(systems))
		for i, s := range systems {
			cells[i] = f(res[s])
		}
		fmt.Printf("| %s | %s |\n", label, strings.Join(cells, " | "))
	}
	f0 := func(f func(*result) float64) func([]*result) string {
		return func(rs []*result) string { return fmt.Sprintf("%.0f", medF(rs, f)) }
	}
	row("ceiling: business row + outbox row tx/s, no relay", f0(func(r *result) float64 { return r.ceiling }))
	row("relay only, saturating: commits/s", f0(func(r *result) float64 { return r.relayCommit }))
	row("relay only, saturating: published/s", f0(func(r *result) float64 { return r.relayPub }))
	row("relay only: backlog max / at end", func(rs []*result) string {
		return fmt.Sprintf("%d / %d", medI(rs, func(r *result) int64 { return r.relayMaxBacklog }), medI(rs, func(r *result) int64 { return r.relayEndBacklog }))
	})
	row("end to end, saturating: commits/s", f0(func(r *result) float64 { return r.e2eCommit }))
	row("end to end, saturating: published/s", f0(func(r *result) float64 { return r.e2ePub }))
	row("end to end, saturating: received/s", f0(func(r *result) float64 { return r.e2eRecv }))
	row("end to end: consumer lag max / at end", func(rs []*result) string {
		return fmt.Sprintf("%d / %d", medI(rs, func(r *result) int64 { return r.e2eMaxLag }), medI(rs, func(r *result) int64 { return r.e2eEndLag }))
	})
	row("latency run rate ev/s", f0(func(r *result) float64 { return r.latRate }))
	row("commit→receipt p50", func(rs []*result) string { return ms(medD(rs, func(r *result) time.Duration { return r.p50 })) })
	row("commit→receipt p99", func(rs []*result) string { return ms(medD(rs, func(r *result) time.Duration { return r.p99 })) })
	row("backlog drain ev/s", f0(func(r *result) float64 { return r.drain }))
	row("consumer ceiling, received/s (stream full, relay idle)", f0(func(r *result) float64 { return r.consumerCeiling }))

	w := res["watermill"]

	// Ratios are taken within each round (both systems measured minutes
	// apart under the same machine load), then the median is quoted.
	ratio := func(label, target string, a, b []*result, fa, fb func(*result) float64) {
		var v []float64
		for i := range a {
			if i < len(b) && fb(b[i]) > 0 {
				v = append(v, fa(a[i])/fb(b[i]))
			}
		}
		if len(v) == 0 {
			return
		}
		per := make([]string, len(v))
		for i, x := range v {
			per[i] = fmt.Sprintf("%.2f", x)
		}
		slices.Sort(v)
		fmt.Printf("%s: median %.2f (rounds: %s)%s\n", label, v[len(v)/2], strings.Join(per, ", "), target)
	}
	ceil := func(r *result) float64 { return r.ceiling }
	for _, name := range systems {
		h := res[name]
		if !strings.HasPrefix(name, "handoff") {
			continue
		}
		fmt.Println()
		ratio(name+" relay-only published / own ceiling", " (target ≥ 0.90)", h, h, func(r *result) float64 { return r.relayPub }, ceil)
		ratio(name+" relay-only commits / own ceiling", "", h, h, func(r *result) float64 { return r.relayCommit }, ceil)
		ratio(name+" end-to-end received / own ceiling", "", h, h, func(r *result) float64 { return r.e2eRecv }, ceil)
		lesser := func(r *result) float64 {
			if r.consumerCeiling == 0 {
				return 0
			}
			return min(r.ceiling, r.consumerCeiling)
		}
		// On a machine whose CPU both sides share, running them together
		// can at best reach the rate at which their per-event CPU costs add
		// up to the whole machine: 1 / (1/producer + 1/consumer).
		additive := func(r *result) float64 {
			if r.consumerCeiling == 0 || r.ceiling == 0 {
				return 0
			}
			return 1 / (1/r.ceiling + 1/r.consumerCeiling)
		}
		ratio(name+" end-to-end received / min(own ceiling, consumer ceiling)", " (target ≥ 0.90)", h, h, func(r *result) float64 { return r.e2eRecv }, lesser)
		ratio(name+" end-to-end received / 1/(1/own ceiling + 1/consumer ceiling)", " (shared-CPU bound)", h, h, func(r *result) float64 { return r.e2eRecv }, additive)
		fmt.Printf("%s p99 at half load: median %s (target ≤ 10ms)\n", name, ms(medD(h, func(r *result) time.Duration { return r.p99 })))
		if w != nil {
			ratio(name+" ceiling / watermill", "", h, w, ceil, ceil)
			ratio(name+" relay only published / watermill", "", h, w, func(r *result) float64 { return r.relayPub }, func(r *result) float64 { return r.relayPub })
			ratio(name+" end to end received / watermill", "", h, w, func(r *result) float64 { return r.e2eRecv }, func(r *result) float64 { return r.e2eRecv })
			ratio(name+" backlog drain / watermill", " (target ≥ 10)", h, w, func(r *result) float64 { return r.drain }, func(r *result) float64 { return r.drain })
		}
	}
}
