package relay_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	natsgo "github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/handoffhq/handoff"
	natsadapter "github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/natsserver"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/rabbitmq"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/relay"
)

var longCrash = flag.Bool("crash.long", os.Getenv("HANDOFF_CRASH_LONG") == "1",
	"run the relay crash test's long form (200 SIGKILLs instead of 20)")

// TestMain doubles as the relay process of the crash test.
func TestMain(m *testing.M) {
	if os.Getenv("HANDOFF_RELAY_CHILD") == "1" {
		if err := relayChild(); err != nil {
			fmt.Fprintln(os.Stderr, "relay child:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type side struct {
	open    func(ctx context.Context, dsn string) (*sql.DB, error)
	migrate func(ctx context.Context, db *sql.DB) error
	relay   func(db *sql.DB) relay.Store
	outbox  func(db *sql.DB) outbox.Store
	inbox   func(db *sql.DB) inbox.Store[*sql.Tx]
	ph      func(int) string
}

var sides = map[string]side{
	"postgres": {postgres.Open, postgres.Migrate[*sql.DB], postgres.RelayStore[*sql.DB], func(db *sql.DB) outbox.Store { return postgres.OutboxStore(db) }, postgres.InboxStore, func(n int) string { return "$" + strconv.Itoa(n) }},
	"sqlite":   {sqlite.Open, sqlite.Migrate, sqlite.RelayStore, sqlite.OutboxStore, sqlite.InboxStore, func(int) string { return "?" }},
	// WAL mode: the writer emits logical decoding messages (or plain rows),
	// the relay children read the slot (postgres.WALRelay).
	"postgres-wal": {postgres.Open, postgres.Migrate[*sql.DB], nil, func(db *sql.DB) outbox.Store {
		return postgres.OutboxStore(db, postgres.WithWAL(postgres.WALMessages))
	}, postgres.InboxStore, func(n int) string { return "$" + strconv.Itoa(n) }},
	"postgres-walrows": {postgres.Open, postgres.Migrate[*sql.DB], nil, func(db *sql.DB) outbox.Store {
		return postgres.OutboxStore(db, postgres.WithWAL(postgres.WALRows))
	}, postgres.InboxStore, func(n int) string { return "$" + strconv.Itoa(n) }},
}

func relayChild() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if strings.HasPrefix(os.Getenv("HANDOFF_RELAY_DB"), "postgres-wal") {
		pub, closePub, err := openBroker(os.Getenv("HANDOFF_RELAY_BROKER"))
		if err != nil {
			return err
		}
		defer closePub()
		r, err := postgres.NewWALRelay(os.Getenv("HANDOFF_RELAY_DSN"), pub, postgres.WithSlot(os.Getenv("HANDOFF_RELAY_SLOT")),
			postgres.WithWALBatch(200, time.Millisecond), postgres.WithWALRetry(5*time.Millisecond, 50*time.Millisecond))
		if err != nil {
			return err
		}
		return r.Run(ctx)
	}
	s := sides[os.Getenv("HANDOFF_RELAY_DB")]
	db, err := s.open(ctx, os.Getenv("HANDOFF_RELAY_DSN"))
	if err != nil {
		return err
	}
	defer db.Close()
	pub, closePub, err := openBroker(os.Getenv("HANDOFF_RELAY_BROKER"))
	if err != nil {
		return err
	}
	defer closePub()
	opts := []relay.Option{relay.WithPartitions(8), relay.WithBatchSize(200), relay.WithLeaseTTL(500 * time.Millisecond),
		relay.WithPollInterval(time.Millisecond, 20*time.Millisecond)}
	if os.Getenv("HANDOFF_RELAY_DB") == "postgres" {
		opts = append(opts, relay.WithWakeups(postgres.Wakeups(ctx, os.Getenv("HANDOFF_RELAY_DSN"), nil)))
	}
	r, err := relay.New(s.relay(db), pub, opts...)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

func openBroker(url string) (handoff.Publisher, func(), error) {
	if strings.HasPrefix(url, "amqp://") {
		b, err := rabbitmq.New(url, rabbitmq.WithReconnectMaxDelay(200*time.Millisecond))
		if err != nil {
			return nil, nil, err
		}
		return b, func() { b.Close() }, nil
	}
	// A relay starting while the broker is down waits for it.
	nc, err := natsadapter.Connect(url, natsgo.RetryOnFailedConnect(true))
	if err != nil {
		return nil, nil, err
	}
	c, err := natsadapter.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return c, func() { c.Close(); nc.Close() }, nil
}

// relays runs relay child processes and kills them at random.
type relays struct {
	t     *testing.T
	env   []string
	mu    sync.Mutex
	procs []*exec.Cmd
	kills int
}

func (r *relays) start() {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), r.env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.procs = append(r.procs, cmd)
}

// killOne SIGKILLs a random relay and starts a new one in its place.
func (r *relays) killOne() {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := rand.IntN(len(r.procs))
	p := r.procs[i]
	p.Process.Signal(syscall.SIGKILL)
	err := p.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() {
		r.t.Fatalf("relay child ended by itself before the kill: %v", err)
	}
	r.kills++
	r.procs = append(r.procs[:i], r.procs[i+1:]...)
	r.start()
}

func (r *relays) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.procs {
		p.Process.Signal(syscall.SIGTERM)
		if err := p.Wait(); err != nil {
			r.t.Errorf("relay child on SIGTERM: %v", err)
		}
	}
	r.procs = nil
}

// crash commits business rows with their events across many keys while
// relay processes are SIGKILLed at random and the broker restarts once,
// then checks that every committed event was delivered, none out of order per
// key, and that the consumer's effects happened exactly once.
func crash(t *testing.T, kind, brokerKind, dsn, effectsDSN string) {
	kills := 20
	if *longCrash {
		kills = 200
	}
	const keys, writers = 40, 4
	s := sides[kind]
	ctx := context.Background()
	db, err := s.open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := s.migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE crash_orders (k VARCHAR(32) NOT NULL, n INT NOT NULL, PRIMARY KEY (k, n))`); err != nil {
		t.Fatal(err)
	}
	var childEnv []string
	if strings.HasPrefix(kind, "postgres-wal") {
		// The slot exists before the first write; the children read it,
		// one at a time.
		slot := testenv.Unique("crash_")
		if err := postgres.SetupWAL(ctx, db, slot); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			c, err := s.open(ctx, dsn)
			if err == nil {
				c.Exec("SELECT pg_drop_replication_slot($1) WHERE EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND NOT active)", slot)
				c.Exec("DROP PUBLICATION IF EXISTS " + slot)
				c.Close()
			}
		})
		childEnv = append(childEnv, "HANDOFF_RELAY_SLOT="+slot)
	}
	edb, err := s.open(ctx, effectsDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer edb.Close()
	if err := s.migrate(ctx, edb); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE crash_effects (k VARCHAR(32) NOT NULL, n INT NOT NULL, msg_id VARCHAR(64) NOT NULL)`,
		`CREATE TABLE crash_progress (k VARCHAR(32) PRIMARY KEY, last_n INT NOT NULL)`,
		`CREATE TABLE crash_violations (k VARCHAR(32) NOT NULL, got INT NOT NULL, want INT NOT NULL)`,
	} {
		if _, err := edb.Exec(q); err != nil {
			t.Fatal(err)
		}
	}

	topic := testenv.Unique("crash.")
	br := brokers[brokerKind](t)
	in, err := inbox.New(s.inbox(edb), "crash-consumer")
	if err != nil {
		t.Fatal(err)
	}
	ph := s.ph
	h := in.Handler(func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
		var ev struct {
			K string
			N int
		}
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			return handoff.Permanent(err)
		}
		var last int
		err := tx.QueryRowContext(ctx, "SELECT last_n FROM crash_progress WHERE k = "+ph(1), ev.K).Scan(&last)
		if errors.Is(err, sql.ErrNoRows) {
			last = 0
			if _, err := tx.ExecContext(ctx, "INSERT INTO crash_progress (k, last_n) VALUES ("+ph(1)+", 0)", ev.K); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		if ev.N != last+1 {
			if _, err := tx.ExecContext(ctx, "INSERT INTO crash_violations (k, got, want) VALUES ("+ph(1)+", "+ph(2)+", "+ph(3)+")", ev.K, ev.N, last+1); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, "UPDATE crash_progress SET last_n = "+ph(1)+" WHERE k = "+ph(2), ev.N, ev.K); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO crash_effects (k, n, msg_id) VALUES ("+ph(1)+", "+ph(2)+", "+ph(3)+")", ev.K, ev.N, m.ID)
		return err
	})
	if err := br.sub.(interface {
		Provision(context.Context, handoff.Subscription) error
	}).Provision(ctx, handoff.Subscription{Topic: topic, Group: "crash-consumer"}); err != nil {
		t.Fatal(err)
	}
	// The runtime's warnings (a hold released, a failed nak) are kept for
	// the report if order breaks.
	var logs lockedBuffer
	c, err := consumer.New(br.sub, topic, "crash-consumer", h, failLetters{t}, consumer.WithWorkers(8),
		consumer.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		consumer.WithBackoff(5*time.Millisecond, 100*time.Millisecond), consumer.WithMaxAttempts(1000))
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancelConsumer := context.WithCancel(ctx)
	cdone := make(chan error, 1)
	go func() { cdone <- c.Run(cctx) }()
	defer func() {
		cancelConsumer()
		if err := <-cdone; err != nil {
			t.Errorf("consumer: %v", err)
		}
	}()

	rs := &relays{t: t, env: append(append([]string{"HANDOFF_RELAY_CHILD=1", "HANDOFF_RELAY_DB=" + kind, "HANDOFF_RELAY_DSN=" + dsn}, br.childEnv...), childEnv...)}
	rs.start()
	rs.start()
	defer rs.stopAll()

	// The load: each writer owns keys%writers, committing order rows with
	// their events, until the kills are done.
	w, err := outbox.New(s.outbox(db), outbox.WithPartitions(8))
	if err != nil {
		t.Fatal(err)
	}
	var committed atomic.Int64
	stopLoad := make(chan struct{})
	var load sync.WaitGroup
	for g := 0; g < writers; g++ {
		load.Add(1)
		go func(g int) {
			defer load.Done()
			next := map[string]int{}
			for i := 0; ; i++ {
				select {
				case <-stopLoad:
					return
				default:
				}
				k := fmt.Sprintf("key-%d", g+writers*(i%(keys/writers)))
				n := next[k] + 1
				data, _ := json.Marshal(map[string]any{"k": k, "n": n})
				m := handoff.NewMessage("/crash", "order.placed", data)
				m.PartitionKey = k
				err := func() error {
					tx, err := db.BeginTx(ctx, nil)
					if err != nil {
						return err
					}
					defer tx.Rollback()
					if _, err := tx.ExecContext(ctx, "INSERT INTO crash_orders (k, n) VALUES ("+ph(1)+", "+ph(2)+")", k, n); err != nil {
						return err
					}
					if err := w.Add(ctx, tx, topic, m); err != nil {
						return err
					}
					return tx.Commit()
				}()
				if err != nil {
					t.Errorf("writer %d: %v", g, err)
					return
				}
				next[k] = n
				committed.Add(1)
				time.Sleep(2 * time.Millisecond) // pace the load; not a synchronisation
			}
		}(g)
	}

	var stopOnce sync.Once
	stopWriters := func() { stopOnce.Do(func() { close(stopLoad) }); load.Wait() }
	defer stopWriters() // before the databases close, even when the test fails

	for i := 0; i < kills; i++ {
		time.Sleep(time.Duration(50+rand.IntN(150)) * time.Millisecond) // random moments
		rs.killOne()
		if i == kills/2 {
			br.restart(t)
		}
	}
	stopWriters()
	total := int(committed.Load())

	var effects, distinct, violations, pendingRows int
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err := edb.QueryRow("SELECT COUNT(*), COUNT(DISTINCT msg_id) FROM crash_effects").Scan(&effects, &distinct); err != nil {
			t.Fatal(err)
		}
		if effects >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	edb.QueryRow("SELECT COUNT(*) FROM crash_violations").Scan(&violations)
	for {
		if err := db.QueryRow("SELECT COUNT(*) FROM handoff_outbox").Scan(&pendingRows); err != nil {
			t.Fatal(err)
		}
		if pendingRows == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var orders int
	db.QueryRow("SELECT COUNT(*) FROM crash_orders").Scan(&orders)
	summary := fmt.Sprintf("%s + %s: %d events committed (%d order rows) across %d keys; relay SIGKILLed %d times, %s once; "+
		"delivered %d effects (%d distinct), %d out of order, %d rows left in the outbox",
		kind, brokerKind, total, orders, keys, rs.kills, br.outage, effects, distinct, violations, pendingRows)
	t.Log(summary)
	fmt.Println("crash test:", summary)
	if violations != 0 {
		// Which key went out of order, and how: enough to tell a reordered
		// batch from a lost and republished event.
		rows, err := edb.Query("SELECT k, got, want FROM crash_violations ORDER BY k LIMIT 20")
		if err == nil {
			for rows.Next() {
				var k string
				var got, want int
				rows.Scan(&k, &got, &want)
				t.Logf("out of order: key %s got n=%d, want n=%d", k, got, want)
			}
			rows.Close()
		}
		t.Logf("consumer warnings:\n%s", logs.String())
	}
	if orders != total || effects != total || distinct != total || violations != 0 || pendingRows != 0 || rs.kills < kills {
		t.Fatalf("guarantee broken: %s", summary)
	}
}

type failLetters struct{ t *testing.T }

// lockedBuffer is a log sink for several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 64<<10 {
		return len(p), nil // enough to tell what happened
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (f failLetters) Add(ctx context.Context, l *dlq.Letter) error {
	f.t.Errorf("unexpected dead letter %s: %v", l.Class, l.Errors)
	return nil
}

func TestCrash_PostgresEmbeddedNATS(t *testing.T) {
	crash(t, "postgres", "nats", testenv.PostgresURL(t), testenv.PostgresURL(t))
}

// WAL mode: two relay processes on one slot (one reads, one stands by),
// SIGKILLed at random; the events are logical decoding messages.
func TestCrash_PostgresWALEmbeddedNATS(t *testing.T) {
	dsn, _ := testenv.LogicalPostgresURL(t)
	crash(t, "postgres-wal", "nats", dsn, testenv.PostgresURL(t))
}

// WAL mode with the events as plain outbox rows, deleted by the relay.
func TestCrash_PostgresWALRowsEmbeddedNATS(t *testing.T) {
	dsn, _ := testenv.LogicalPostgresURL(t)
	crash(t, "postgres-walrows", "nats", dsn, testenv.PostgresURL(t))
}

func TestCrash_SQLiteEmbeddedNATS(t *testing.T) {
	dir := t.TempDir()
	crash(t, "sqlite", "nats", filepath.Join(dir, "service.db"), filepath.Join(dir, "effects.db"))
}

func TestCrash_PostgresRabbitMQ(t *testing.T) {
	crash(t, "postgres", "rabbitmq", testenv.PostgresURL(t), testenv.PostgresURL(t))
}

// crashBroker is the broker of a crash test: the consumer's subscriber, the
// relay children's environment, and an outage to inflict once.
type crashBroker struct {
	sub      handoff.Subscriber
	childEnv []string
	outage   string
	restart  func(t *testing.T)
}

var brokers = map[string]func(t *testing.T) crashBroker{
	// An embedded JetStream server, restarted on its data directory.
	"nats": func(t *testing.T) crashBroker {
		ns, err := natsserver.Start(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ns.Shutdown)
		nc, err := natsadapter.Connect(ns.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		sub, err := natsadapter.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return crashBroker{sub: sub, childEnv: []string{"HANDOFF_RELAY_BROKER=" + ns.URL()}, outage: "broker restarted",
			restart: func(t *testing.T) {
				if err := ns.Restart(); err != nil {
					t.Fatalf("broker restart: %v", err)
				}
			}}
	},
	// The shared RabbitMQ server, in a vhost of the test's own. It is not
	// ours to restart: the relays reach it through a proxy that goes down
	// for a second, cutting every relay connection.
	"rabbitmq": func(t *testing.T) crashBroker {
		base, err := url.Parse(testenv.RabbitMQURL(t))
		if err != nil {
			t.Fatal(err)
		}
		vhost := testenv.Unique("crash")
		for _, args := range [][]string{{"add_vhost", vhost}, {"set_permissions", "-p", vhost, base.User.Username(), ".*", ".*", ".*"}} {
			if out, err := exec.Command("rabbitmqctl", args...).CombinedOutput(); err != nil {
				t.Fatalf("rabbitmqctl %v: %v\n%s", args, err, out)
			}
		}
		t.Cleanup(func() { exec.Command("rabbitmqctl", "delete_vhost", vhost).Run() })
		direct := *base
		direct.Path = "/" + vhost
		proxy := toxiproxy.NewProxy(toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop()),
			"rabbitmq", "127.0.0.1:0", base.Host)
		if err := proxy.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(proxy.Stop)
		viaProxy := direct
		viaProxy.Host = proxy.Listen
		sub, err := rabbitmq.New(direct.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sub.Close() })
		return crashBroker{sub: sub, childEnv: []string{"HANDOFF_RELAY_BROKER=" + viaProxy.String()}, outage: "broker unreachable for 1s",
			restart: func(t *testing.T) {
				proxy.Stop()
				time.Sleep(time.Second) // the outage itself, not a synchronisation
				if err := proxy.Start(); err != nil {
					t.Fatalf("proxy restart: %v", err)
				}
			}}
	},
}
