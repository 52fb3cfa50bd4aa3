// Command inboxcurve measures what the PostgreSQL inbox's check costs as the
// marks it keeps grow (issue 16's cost curve: 10,000 → 10,000,000 rows kept,
// the table bounded by retention).
//
//	cd bench && go run ./inboxcurve -sizes 10000,100000,1000000,10000000
//
// Two schemas are made on the server (bench_inboxcurve_<id>_ref and _big,
// dropped at the end): ref keeps -ref marks throughout; big is grown to each
// size in turn. The kept marks are shaped like handoff's (UUIDv7 ids, time
// ordered, received over the last 7 days, one consumer), bulk-inserted with
// generate_series, then VACUUM ANALYZE. At each size, after a warm-up, each round measures
// ref then big, one goroutine, no other load from this program:
//
//   - batch: inbox.Handler.HandleBatch of 32 new messages (one transaction:
//     the multi-row mark and a no-op handler), µs per message;
//   - single: inbox.Handler.Handle of one new message, µs per message;
//   - dup: HandleBatch of 32 messages marked already (a redelivery: the
//     check finds them, the handler is not called), µs per message.
//
// The ratio big ÷ ref within a round is what the machine's load does not
// move much; its median over the rounds is the curve.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/bench/internal/sysstat"
	"github.com/handoffhq/handoff/inbox"
)

type config struct {
	pg      string
	sizes   []int
	ref     int
	rounds  int
	batches int
	singles int
}

func main() {
	var cfg config
	var sizes string
	flag.StringVar(&cfg.pg, "pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL URL (schemas bench_inboxcurve_* are created and dropped in it)")
	flag.StringVar(&sizes, "sizes", "10000,100000,1000000,10000000", "marks kept in the big schema, in increasing order")
	flag.IntVar(&cfg.ref, "ref", 10000, "marks kept in the reference schema")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds per size (ref then big each round)")
	flag.IntVar(&cfg.batches, "batches", 100, "batches of 32 per batch and dup measurement")
	flag.IntVar(&cfg.singles, "singles", 500, "messages per single measurement")
	flag.Parse()
	for _, f := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			fmt.Fprintf(os.Stderr, "inboxcurve: -sizes: %q is not a count of marks\n", f)
			os.Exit(2)
		}
		if len(cfg.sizes) > 0 && n < cfg.sizes[len(cfg.sizes)-1] {
			fmt.Fprintf(os.Stderr, "inboxcurve: -sizes: %d after %d: sizes must not decrease (the table only grows)\n", n, cfg.sizes[len(cfg.sizes)-1])
			os.Exit(2)
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	if cfg.rounds < 1 || cfg.batches < 1 || cfg.singles < 1 || cfg.ref < 0 {
		fmt.Fprintln(os.Stderr, "inboxcurve: -rounds, -batches and -singles must be ≥ 1, -ref ≥ 0")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "inboxcurve:", err)
		os.Exit(1)
	}
}

// side is one schema with its pool and inbox handler.
type side struct {
	name string
	db   *sql.DB
	h    *inbox.Handler[*sql.Tx]
	kept int
	dups []*handoff.Message // marked already, for the dup measurement
}

func run(ctx context.Context, cfg config) error {
	admin, err := postgres.Open(ctx, cfg.pg)
	if err != nil {
		return err
	}
	defer admin.Close()
	id := strconv.FormatInt(time.Now().Unix()%1_000_000, 36)
	maxN := max(cfg.ref, cfg.sizes[len(cfg.sizes)-1])
	fmt.Printf("inboxcurve: sizes %v, ref %d, %d rounds, %d batches of 32, %d singles; load average %s\n",
		cfg.sizes, cfg.ref, cfg.rounds, cfg.batches, cfg.singles, strings.Join(sysstat.LoadAvg(), " "))

	open := func(label string) (*side, error) {
		name := "bench_inboxcurve_" + id + "_" + label
		if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
			return nil, err
		}
		sep := "?"
		if strings.Contains(cfg.pg, "?") {
			sep = "&"
		}
		db, err := postgres.Open(ctx, cfg.pg+sep+"search_path="+name)
		if err != nil {
			return nil, err
		}
		if err := postgres.Migrate(ctx, db); err != nil {
			db.Close()
			return nil, err
		}
		in, err := inbox.New(postgres.InboxStore(db), "bench")
		if err != nil {
			db.Close()
			return nil, err
		}
		noop := func(context.Context, *sql.Tx, *handoff.Message) error { return nil }
		return &side{name: name, db: db, h: in.Handler(noop)}, nil
	}
	var sides []*side
	defer func() {
		for _, s := range sides {
			s.db.Close()
			if _, err := admin.Exec("DROP SCHEMA " + s.name + " CASCADE"); err != nil {
				fmt.Fprintf(os.Stderr, "drop schema %s: %v\n", s.name, err)
			}
		}
	}()
	ref, err := open("ref")
	if err != nil {
		return err
	}
	sides = append(sides, ref)
	big, err := open("big")
	if err != nil {
		return err
	}
	sides = append(sides, big)
	if err := grow(ctx, ref, cfg.ref, maxN); err != nil {
		return err
	}

	type row struct {
		size                  int
		tableMB               float64
		batch, single, dup    [2][]float64 // [ref, big] µs/msg per round
		rBatch, rSingle, rDup []float64    // big ÷ ref per round
		fillSec               float64
		loadStart, loadAtEnd  string
	}
	var rows []row
	for _, n := range cfg.sizes {
		t0 := time.Now()
		if err := grow(ctx, big, n, maxN); err != nil {
			return err
		}
		r := row{size: n, fillSec: time.Since(t0).Seconds(), loadStart: sysstat.LoadAvg()[0]}
		_ = admin.QueryRowContext(ctx, "SELECT pg_total_relation_size('"+big.name+".handoff_inbox') / 1048576.0").Scan(&r.tableMB)
		for _, s := range []*side{ref, big} { // warm-up: connections, prepared statements, the index's hot pages
			if _, err := s.measureBatch(ctx, 5); err != nil {
				return fmt.Errorf("%s warm-up: %w", s.name, err)
			}
			if _, err := s.measureSingle(ctx, 20); err != nil {
				return fmt.Errorf("%s warm-up: %w", s.name, err)
			}
		}
		for round := 0; round < cfg.rounds; round++ {
			for i, s := range []*side{ref, big} {
				b, err := s.measureBatch(ctx, cfg.batches)
				if err != nil {
					return fmt.Errorf("%s batch: %w", s.name, err)
				}
				one, err := s.measureSingle(ctx, cfg.singles)
				if err != nil {
					return fmt.Errorf("%s single: %w", s.name, err)
				}
				d, err := s.measureDup(ctx)
				if err != nil {
					return fmt.Errorf("%s dup: %w", s.name, err)
				}
				r.batch[i] = append(r.batch[i], b)
				r.single[i] = append(r.single[i], one)
				r.dup[i] = append(r.dup[i], d)
			}
			r.rBatch = append(r.rBatch, r.batch[1][round]/r.batch[0][round])
			r.rSingle = append(r.rSingle, r.single[1][round]/r.single[0][round])
			r.rDup = append(r.rDup, r.dup[1][round]/r.dup[0][round])
			fmt.Printf("  kept %9d round %d: µs/msg ref/big: batch %.0f/%.0f, single %.0f/%.0f, dup %.0f/%.0f (load %s)\n",
				n, round+1, r.batch[0][round], r.batch[1][round], r.single[0][round], r.single[1][round],
				r.dup[0][round], r.dup[1][round], sysstat.LoadAvg()[0])
		}
		r.loadAtEnd = sysstat.LoadAvg()[0]
		rows = append(rows, r)
	}

	fmt.Printf("\nmedians of %d rounds (µs per message, one goroutine; ratio = big ÷ ref of %d marks, per round → median)\n", cfg.rounds, cfg.ref)
	fmt.Println("| marks kept | table + indexes | batch of 32 new | ratio | single new | ratio | batch of 32 duplicates | ratio | fill s | load |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range rows {
		fmt.Printf("| %d | %.0f MB | %.0f | %.2f | %.0f | %.2f | %.0f | %.2f | %.0f | %s–%s |\n", r.size, r.tableMB,
			median(r.batch[1]), median(r.rBatch), median(r.single[1]), median(r.rSingle), median(r.dup[1]), median(r.rDup),
			r.fillSec, r.loadStart, r.loadAtEnd)
	}
	fmt.Printf("load average at end: %s\n", strings.Join(sysstat.LoadAvg(), " "))
	return nil
}

// grow bulk-inserts marks until s keeps n of them (plus what the
// measurements added). Ids are UUIDv7-shaped, spread over the last 7 days
// by their index out of maxN, as handoff's ids are time ordered.
func grow(ctx context.Context, s *side, n, maxN int) error {
	const chunk = 1_000_000
	for s.kept < n {
		hi := min(n, s.kept+chunk)
		_, err := s.db.ExecContext(ctx, `
			INSERT INTO handoff_inbox (consumer, message_id, received_at)
			SELECT 'bench',
			       substr(t, 1, 8) || '-' || substr(t, 9, 4) || '-7' || substr(h, 1, 3) || '-8' || substr(h, 4, 3) || '-' || substr(h, 7, 12),
			       to_timestamp(ms / 1000.0)
			FROM (SELECT lpad(to_hex(ms), 12, '0') AS t, md5(i::text) AS h, ms
			      FROM (SELECT i, $3::bigint - 604800000 + i * (604800000 / $4::bigint) AS ms
			            FROM generate_series($1::bigint, $2::bigint - 1) AS i) a) b`,
			s.kept, hi, time.Now().UnixMilli()-60_000, max(maxN, 1))
		if err != nil {
			return fmt.Errorf("%s: fill %d..%d: %w", s.name, s.kept, hi, err)
		}
		s.kept = hi
	}
	_, err := s.db.ExecContext(ctx, "VACUUM ANALYZE handoff_inbox")
	return err
}

func batch() []*handoff.Message {
	ms := make([]*handoff.Message, 32)
	for i := range ms {
		ms[i] = handoff.NewMessage("/bench", "bench.t", nil)
	}
	return ms
}

func (s *side) measureBatch(ctx context.Context, batches int) (float64, error) {
	var took time.Duration
	for range batches {
		ms := batch()
		t0 := time.Now()
		for _, err := range s.h.HandleBatch(ctx, ms) {
			if err != nil {
				return 0, err
			}
		}
		took += time.Since(t0)
		s.dups = ms // the last batch is the next dup measurement's
	}
	return us(took) / float64(32*batches), nil
}

func (s *side) measureSingle(ctx context.Context, n int) (float64, error) {
	var took time.Duration
	for range n {
		m := handoff.NewMessage("/bench", "bench.t", nil)
		t0 := time.Now()
		if err := s.h.Handle(ctx, m); err != nil {
			return 0, err
		}
		took += time.Since(t0)
	}
	return us(took) / float64(n), nil
}

// measureDup hands the last marked batch again, 20 times.
func (s *side) measureDup(ctx context.Context) (float64, error) {
	const reps = 20
	var took time.Duration
	for range reps {
		t0 := time.Now()
		for _, err := range s.h.HandleBatch(ctx, s.dups) {
			if err != nil {
				return 0, err
			}
		}
		took += time.Since(t0)
	}
	return us(took) / float64(32*reps), nil
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

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
