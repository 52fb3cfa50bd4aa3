// Command contract measures can-i-deploy on handoff's contract broker over
// PostgreSQL: a broker holding N pact publications with their
// verification results across 50 pacticipants, asked over HTTP (the route
// Pact's CLI and handoff's use) whether a version can be deployed.
//
//	cd bench && go run ./contract -sizes 1000,10000,100000
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/bench/internal/sysstat"
	"github.com/handoffhq/handoff/contract/broker"
)

const pacticipants = 50

// Each consumer has pacts with the next `fanout` pacticipants, so every
// pacticipant is a consumer of 3 and a provider of 3.
const fanout = 3

func main() {
	dsn := flag.String("db", envOr("HANDOFF_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL URL")
	sizes := flag.String("sizes", "1000,10000,100000", "publication counts to measure")
	queries := flag.Int("queries", 2000, "can-i-deploy requests per size and workload (closed loop)")
	conns := flag.Int("conns", 8, "connections for the concurrent workload")
	dur := flag.Duration("dur", 5*time.Second, "concurrent workload duration")
	flag.Parse()

	fmt.Printf("# contract broker can-i-deploy benchmark\n\n")
	fmt.Printf("date: %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("go: %s %s/%s, GOMAXPROCS %d, nproc %d\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Printf("load average at start: %s\n", strings.Join(sysstat.LoadAvg(), " "))
	fmt.Printf("command: go run ./contract %s\n\n", strings.Join(os.Args[1:], " "))
	fmt.Println("| publications | verifications | workload | requests | p50 ms | p90 ms | p99 ms | max ms | req/s |")
	fmt.Println("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			log.Fatalf("-sizes: %v", err)
		}
		if err := runSize(*dsn, n, *queries, *conns, *dur); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("\nload average at end: %s\n", strings.Join(sysstat.LoadAvg(), " "))
}

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

func runSize(dsn string, n, queries, conns int, dur time.Duration) error {
	ctx := context.Background()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer admin.Close()
	schema := fmt.Sprintf("bench_contract_%d_%d", n, time.Now().UnixNano()%1e6)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		return err
	}
	defer admin.Exec("DROP SCHEMA " + schema + " CASCADE")
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := postgres.Open(ctx, u.String())
	if err != nil {
		return err
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db); err != nil {
		return err
	}
	t0 := time.Now()
	latest, verifs, err := seed(ctx, db, n)
	if err != nil {
		return fmt.Errorf("seed %d: %w", n, err)
	}
	n = verifs // one verification per publication: the count seeded
	log.Printf("seeded %d publications and verifications in %v", n, time.Since(t0).Round(time.Millisecond))

	b, err := broker.New(postgres.ContractStore(db))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: b}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}

	rng := rand.New(rand.NewSource(int64(n)))
	// The questions: each pacticipant's deployed (latest) version, as a
	// CI pipeline asks before deploying it again or a new one.
	ask := func(r *rand.Rand, route string) string {
		p := r.Intn(pacticipants)
		v := latest[p]
		if route == "matrix" {
			return fmt.Sprintf("%s/matrix?q%%5B%%5D%%5Bpacticipant%%5D=%s&q%%5B%%5D%%5Bversion%%5D=%s&latestby=cvpv&environment=production", base, name(p), v)
		}
		return fmt.Sprintf("%s/can-i-deploy?pacticipant=%s&version=%s&environment=production", base, name(p), v)
	}
	get := func(u string) error {
		res, err := client.Get(u)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("%s: %d %s", u, res.StatusCode, body)
		}
		var m struct {
			Summary struct {
				Deployable *bool
				Success    int
			}
		}
		if err := json.Unmarshal(body, &m); err != nil || m.Summary.Deployable == nil || m.Summary.Success < 2*fanout {
			return fmt.Errorf("%s: unexpected answer %s", u, body)
		}
		return nil
	}
	// Warm-up: the connection pool, PostgreSQL's caches.
	for i := 0; i < 200; i++ {
		if err := get(ask(rng, "can-i-deploy")); err != nil {
			return err
		}
	}
	for _, route := range []string{"can-i-deploy", "matrix"} {
		lat := make([]time.Duration, 0, queries)
		start := time.Now()
		for i := 0; i < queries; i++ {
			u := ask(rng, route)
			t := time.Now()
			if err := get(u); err != nil {
				return err
			}
			lat = append(lat, time.Since(t))
		}
		report(n, verifs, "GET /"+route+", 1 connection", lat, time.Since(start))
	}
	// Concurrent: conns clients in a closed loop.
	var (
		mu  sync.Mutex
		all []time.Duration
		wg  sync.WaitGroup
	)
	stop := time.Now().Add(dur)
	var firstErr error
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			r := rand.New(rand.NewSource(seed))
			var mine []time.Duration
			for time.Now().Before(stop) {
				u := ask(r, "can-i-deploy")
				t := time.Now()
				if err := get(u); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}(int64(c + n))
	}
	start := time.Now()
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	report(n, verifs, fmt.Sprintf("GET /can-i-deploy, %d connections", conns), all, time.Since(start))
	return nil
}

func report(n, verifs int, workload string, lat []time.Duration, elapsed time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) string {
		i := int(p*float64(len(lat))) - 1
		if i < 0 {
			i = 0
		}
		return fmt.Sprintf("%.2f", float64(lat[i].Microseconds())/1000)
	}
	fmt.Printf("| %d | %d | %s | %d | %s | %s | %s | %s | %.0f |\n", n, verifs, workload, len(lat), pct(0.5), pct(0.9), pct(0.99), pct(1), float64(len(lat))/elapsed.Seconds())
}

func name(p int) string { return fmt.Sprintf("svc%02d", p) }

// seed writes n publications straight into the broker's tables (bulk
// inserts: seeding through the API would take an hour at 100,000): 50
// pacticipants on branch main; each consumer version publishes one
// distinct pact to each of its 3 providers; each publication is verified
// by the provider's version of the same round (95% successfully) and, for
// the latest round, successfully; each pacticipant's latest version is
// deployed to production. It returns the latest version of each
// pacticipant and the number of verifications.
func seed(ctx context.Context, db *sql.DB, n int) ([]string, int, error) {
	rounds := (n + pacticipants*fanout/2) / (pacticipants * fanout)
	if rounds < 1 {
		rounds = 1
	}
	now := time.Now().UTC().Add(-24 * time.Hour)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback()
	ins := &bulk{tx: tx, ctx: ctx}
	envID := "00000000-0000-4000-8000-000000000001"
	ins.add("handoff_contract_environments", "id, name, display_name, production, created_at", envID, "production", "Production", true, now)
	for p := 0; p < pacticipants; p++ {
		ins.add("handoff_contract_pacticipants", "id, name, main_branch, created_at", p+1, name(p), "main", now)
	}
	// version id of pacticipant p in round r.
	vid := func(p, r int) int { return r*pacticipants + p + 1 }
	for r := 0; r < rounds; r++ {
		at := now.Add(time.Duration(r) * time.Second)
		for p := 0; p < pacticipants; p++ {
			ins.add("handoff_contract_versions", "id, pacticipant_id, number, created_at", vid(p, r), p+1, fmt.Sprintf("%d.0.%d", r/100, r%100), at)
			ins.add("handoff_contract_branches", "version_id, pacticipant_id, branch, created_at", vid(p, r), p+1, "main", at)
		}
	}
	pub, ver := 0, 0
	rng := rand.New(rand.NewSource(1))
	for r := 0; r < rounds; r++ {
		at := now.Add(time.Duration(r) * time.Second)
		for p := 0; p < pacticipants; p++ {
			for k := 1; k <= fanout; k++ {
				prov := (p + k) % pacticipants
				pub++
				content := fmt.Sprintf(`{"consumer":{"name":%q},"provider":{"name":%q},"interactions":[{"description":"round %d","request":{"method":"GET","path":"/x/%d"},"response":{"status":200,"body":{"id":%d,"items":[{"sku":"A-1","qty":2}]}}}],"metadata":{"pactSpecification":{"version":"3.0.0"}}}`,
					name(p), name(prov), r, r, pub)
				sha := fmt.Sprintf("%040x", pub)
				ins.add("handoff_contract_contents", "id, consumer_id, provider_id, sha, content, created_at", pub, p+1, prov+1, sha, content, at)
				ins.add("handoff_contract_publications", "id, consumer_version_id, consumer_id, provider_id, content_id, created_at", pub, vid(p, r), p+1, prov+1, pub, at)
				ok := r == rounds-1 || rng.Intn(100) < 95
				ver++
				ins.add("handoff_contract_verifications", "id, content_id, provider_version_id, success, pending, build_url, body, created_at",
					ver, pub, vid(prov, r), ok, false, "", "{}", at.Add(time.Second))
			}
		}
	}
	latest := make([]string, pacticipants)
	for p := 0; p < pacticipants; p++ {
		r := rounds - 1
		latest[p] = fmt.Sprintf("%d.0.%d", r/100, r%100)
		ins.add("handoff_contract_deployments", "id, version_id, pacticipant_id, environment_id, instance, released, created_at",
			fmt.Sprintf("00000000-0000-4000-9000-%012d", p), vid(p, r), p+1, envID, "", false, now)
	}
	if err := ins.flush(); err != nil {
		return nil, 0, err
	}
	for _, t := range []string{"pacticipants", "versions", "contents", "publications", "verifications"} {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('handoff_contract_%s', 'id'), (SELECT MAX(id) FROM handoff_contract_%s))`, t, t)); err != nil {
			return nil, 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, 0, err
	}
	if _, err := db.ExecContext(ctx, "ANALYZE"); err != nil {
		return nil, 0, err
	}
	return latest, ver, nil
}

// bulk batches rows into multi-row INSERTs per table.
type bulk struct {
	tx   *sql.Tx
	ctx  context.Context
	rows map[string][][]any
	cols map[string]string
	err  error
}

func (b *bulk) add(table, cols string, vals ...any) {
	if b.rows == nil {
		b.rows, b.cols = map[string][][]any{}, map[string]string{}
	}
	b.cols[table] = cols
	b.rows[table] = append(b.rows[table], vals)
	if len(b.rows[table]) >= 500 {
		b.flushTable(table)
	}
}

func (b *bulk) flushTable(table string) {
	rows := b.rows[table]
	if len(rows) == 0 || b.err != nil {
		return
	}
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + table + " (" + b.cols[table] + ") VALUES ")
	var args []any
	for i, r := range rows {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(")
		for j, v := range r {
			if j > 0 {
				sb.WriteString(", ")
			}
			args = append(args, v)
			sb.WriteString("$" + strconv.Itoa(len(args)))
		}
		sb.WriteString(")")
	}
	if _, err := b.tx.ExecContext(b.ctx, sb.String(), args...); err != nil {
		b.err = fmt.Errorf("insert into %s: %w", table, err)
	}
	b.rows[table] = b.rows[table][:0]
}

// flush writes what is left, parents first.
func (b *bulk) flush() error {
	for _, t := range []string{"handoff_contract_environments", "handoff_contract_pacticipants", "handoff_contract_versions", "handoff_contract_branches",
		"handoff_contract_contents", "handoff_contract_publications", "handoff_contract_verifications", "handoff_contract_deployments"} {
		b.flushTable(t)
	}
	return b.err
}
