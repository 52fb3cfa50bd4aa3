package consumer_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/mysql"
	natsadapter "github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/natsserver"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/internal/testenv"
)

// The child process of TestExactlyOnce_*: a consumer with the inbox that
// kills itself with SIGKILL right after the handler's transaction commits
// and before the ack, for every message whose number is a multiple of
// HANDOFF_CRASH_EVERY (once per message: the redelivery is skipped by the
// inbox, so it does not crash again).
func TestMain(m *testing.M) {
	if os.Getenv("HANDOFF_CRASH_CHILD") == "1" {
		if err := crashChild(); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type dbKind struct {
	name    string
	open    func(ctx context.Context, dsn string) (*sql.DB, error)
	migrate func(ctx context.Context, db *sql.DB) error
	inbox   func(db *sql.DB) inbox.Store[*sql.Tx]
	ph      func(n int) string // placeholder
}

var kinds = map[string]dbKind{
	"postgres": {"postgres", postgres.Open, postgres.Migrate[*sql.DB], postgres.InboxStore, func(n int) string { return "$" + strconv.Itoa(n) }},
	"mysql":    {"mysql", mysql.Open, mysql.Migrate, mysql.InboxStore, func(int) string { return "?" }},
	"sqlite":   {"sqlite", sqlite.Open, sqlite.Migrate, sqlite.InboxStore, func(int) string { return "?" }},
}

func crashChild() error {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { // SIGTERM: a graceful stop
		ch := make(chan os.Signal, 1)
		signalNotify(ch)
		<-ch
		stop()
	}()
	err := runCrashChild(ctx)
	if ctx.Err() != nil {
		// Told to stop (possibly while still starting up, when opening the
		// database fails with the cancelled context): a clean stop.
		return nil
	}
	return err
}

func runCrashChild(ctx context.Context) error {
	k := kinds[os.Getenv("HANDOFF_CRASH_DB")]
	db, err := k.open(ctx, os.Getenv("HANDOFF_CRASH_DSN"))
	if err != nil {
		return err
	}
	defer db.Close()
	every, _ := strconv.Atoi(os.Getenv("HANDOFF_CRASH_EVERY"))
	nc, err := natsadapter.Connect(os.Getenv("HANDOFF_CRASH_NATS"))
	if err != nil {
		return err
	}
	defer nc.Close()
	broker, err := natsadapter.New(nc, natsadapter.WithAckWait(2*time.Second))
	if err != nil {
		return err
	}
	in, err := inbox.New(k.inbox(db), "effects")
	if err != nil {
		return err
	}
	var ran sync.Map
	txh := in.Handler(func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO effects (msg_id) VALUES ("+k.ph(1)+")", m.ID)
		if err == nil {
			ran.Store(m.ID, true)
		}
		return err
	})
	h := handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
		err := txh.Handle(ctx, m)
		n, _ := strconv.Atoi(m.Subject)
		if _, fresh := ran.Load(m.ID); err == nil && fresh && every > 0 && n%every == 0 {
			// Committed, not acked: the worst moment to die.
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return err
	})
	batch := 1
	if os.Getenv("HANDOFF_CRASH_BATCH") == "1" {
		batch = 16
	}
	handler := crashBatch{Handler: h, b: txh, ran: &ran, every: every}
	c, err := consumer.New(broker, os.Getenv("HANDOFF_CRASH_TOPIC"), "effects", handler, deadLetterFail{},
		consumer.WithWorkers(4), consumer.WithBackoff(10*time.Millisecond, 100*time.Millisecond), consumer.WithBatchSize(batch))
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// crashBatch dies after a batch's transaction committed and before any of
// its messages is acked, when the batch held a fresh crash-designated message.
type crashBatch struct {
	handoff.Handler
	b     *inbox.Handler[*sql.Tx]
	ran   *sync.Map
	every int
}

func (c crashBatch) HandleBatch(ctx context.Context, msgs []*handoff.Message) []error {
	errs := c.b.HandleBatch(ctx, msgs)
	for i, m := range msgs {
		n, _ := strconv.Atoi(m.Subject)
		if _, fresh := c.ran.Load(m.ID); errs[i] == nil && fresh && n%c.every == 0 {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	return errs
}

// deadLetterFail: in this test nothing may be dead-lettered.
type deadLetterFail struct{}

func (deadLetterFail) Add(ctx context.Context, l *dlq.Letter) error {
	fmt.Fprintf(os.Stderr, "crash child: unexpected dead letter %s: %v\n", l.Class, l.Errors)
	os.Exit(4)
	return nil
}

// exactlyOnce publishes n messages, each twice (a second copy with the same
// CloudEvents id under another broker-level id, as a producer retry from
// another path would), and runs the child consumer, which is SIGKILLed
// between commit and ack on every crashEvery-th message, restarting it
// until every effect is there. The effects counted must equal the messages sent.
func exactlyOnce(t *testing.T, kind, dsn string, batch bool) {
	const n, crashEvery = 60, 10
	k := kinds[kind]
	ctx := context.Background()
	db, err := k.open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := k.migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE effects (msg_id VARCHAR(64) NOT NULL)"); err != nil {
		t.Fatal(err)
	}

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
	pub, err := natsadapter.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	topic := testenv.Unique("eo.")
	for i := 1; i <= n; i++ {
		m := handoff.NewMessage("/test", "effect", []byte(`{}`))
		m.PartitionKey = fmt.Sprintf("k%d", i%5)
		m.Subject = strconv.Itoa(i)
		if err := pub.Publish(ctx, topic, m); err != nil {
			t.Fatal(err)
		}
		dup := natsgo.NewMsg(topic)
		for hk, hv := range handoff.NATSBinding.Headers(m) {
			dup.Header.Set(hk, hv)
		}
		dup.Header.Set(natsgo.MsgIdHdr, m.ID+"-copy")
		dup.Data = m.Data
		if _, err := pub.JetStream().PublishMsg(ctx, dup); err != nil {
			t.Fatal(err)
		}
	}

	count := func() (rows, distinct int) {
		t.Helper()
		if err := db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT msg_id) FROM effects").Scan(&rows, &distinct); err != nil {
			t.Fatal(err)
		}
		return
	}
	kills := 0
	deadline := time.Now().Add(3 * time.Minute)
	for restarts := 0; ; restarts++ {
		if restarts > 3*n/crashEvery+5 || time.Now().After(deadline) {
			rows, _ := count()
			t.Fatalf("gave up after %d restarts with %d of %d effects", restarts, rows, n)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "HANDOFF_CRASH_CHILD=1", "HANDOFF_CRASH_DB="+kind, "HANDOFF_CRASH_DSN="+dsn,
			"HANDOFF_CRASH_NATS="+ns.URL(), "HANDOFF_CRASH_TOPIC="+topic, "HANDOFF_CRASH_EVERY="+strconv.Itoa(crashEvery))
		if batch {
			cmd.Env = append(cmd.Env, "HANDOFF_CRASH_BATCH=1")
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var werr error
		done := false
	wait:
		for {
			select {
			case werr = <-exited:
				break wait
			case <-time.After(50 * time.Millisecond):
				if rows, _ := count(); rows >= n {
					// Every effect is in: stop the child gracefully and see it ack.
					cmd.Process.Signal(syscall.SIGTERM)
					werr = <-exited
					done = true
					break wait
				}
			}
		}
		var ee *exec.ExitError
		if errors.As(werr, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL {
			kills++
		} else if werr != nil && !(done && errors.As(werr, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGTERM) {
			// (A child started just before the final SIGTERM may die of it
			// before installing its handler; that is a clean enough stop.)
			t.Fatalf("child failed: %v", werr)
		}
		if done {
			break
		}
	}
	rows, distinct := count()
	t.Logf("%s (batched %v): %d messages sent twice, consumer SIGKILLed %d times between commit and ack: %d effects (%d distinct)", kind, batch, n, kills, rows, distinct)
	if kills < n/crashEvery {
		t.Fatalf("only %d kills happened, want at least %d: the test did not exercise the crash", kills, n/crashEvery)
	}
	if rows != n || distinct != n {
		t.Fatalf("effects = %d (%d distinct), want exactly %d", rows, distinct, n)
	}
}

func TestExactlyOnce_PostgresSIGKILLBetweenCommitAndAck(t *testing.T) {
	exactlyOnce(t, "postgres", testenv.PostgresURL(t), false)
}

func TestExactlyOnce_PostgresBatchedSIGKILLBetweenCommitAndAck(t *testing.T) {
	exactlyOnce(t, "postgres", testenv.PostgresURL(t), true)
}

func TestExactlyOnce_MariaDBSIGKILLBetweenCommitAndAck(t *testing.T) {
	exactlyOnce(t, "mysql", testenv.MySQLDSN(t), false)
}

func TestExactlyOnce_SQLiteSIGKILLBetweenCommitAndAck(t *testing.T) {
	exactlyOnce(t, "sqlite", filepath.Join(t.TempDir(), "eo.db"), false)
}

func TestExactlyOnce_SQLiteBatchedSIGKILLBetweenCommitAndAck(t *testing.T) {
	exactlyOnce(t, "sqlite", filepath.Join(t.TempDir(), "eo.db"), true)
}
