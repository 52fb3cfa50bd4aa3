package relay_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/adapter/mysql"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/relay"
)

type db struct {
	name  string
	db    *sql.DB
	out   outbox.Store
	relay func() relay.Store
	dlq   dlq.Store // in the same database, as the relay's held keys need
}

// each runs f on every database the outbox supports.
func each(t *testing.T, f func(t *testing.T, d db)) {
	ctx := context.Background()
	t.Run("sqlite", func(t *testing.T) {
		sdb, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "o.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sdb.Close() })
		if err := sqlite.Migrate(ctx, sdb); err != nil {
			t.Fatal(err)
		}
		f(t, db{"sqlite", sdb, sqlite.OutboxStore(sdb), func() relay.Store { return sqlite.RelayStore(sdb) }, sqlite.DLQStore(sdb)})
	})
	t.Run("postgres", func(t *testing.T) {
		pdb, err := postgres.Open(ctx, testenv.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pdb.Close() })
		if err := postgres.Migrate(ctx, pdb); err != nil {
			t.Fatal(err)
		}
		f(t, db{"postgres", pdb, postgres.OutboxStore(pdb), func() relay.Store { return postgres.RelayStore(pdb) }, postgres.DLQStore(pdb)})
	})
	t.Run("mariadb", func(t *testing.T) {
		mdb, err := mysql.Open(ctx, testenv.MySQLDSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mdb.Close() })
		if err := mysql.Migrate(ctx, mdb); err != nil {
			t.Fatal(err)
		}
		f(t, db{"mariadb", mdb, mysql.OutboxStore(mdb), func() relay.Store { return mysql.RelayStore(mdb) }, mysql.DLQStore(mdb)})
	})
}

func msg(key string, n int) *handoff.Message {
	m := handoff.NewMessage("/test", "test.event", []byte(fmt.Sprintf(`{"n":%d}`, n)))
	m.PartitionKey = key
	m.Subject = fmt.Sprint(n)
	return m
}

func write(t testing.TB, d db, w *outbox.Writer, topic string, msgs ...*handoff.Message) {
	t.Helper()
	tx, err := d.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(context.Background(), tx, topic, msgs...); err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func pending(t testing.TB, d db) int {
	t.Helper()
	var n int
	if err := d.db.QueryRow("SELECT COUNT(*) FROM handoff_outbox").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// recorder collects what reaches the broker, per key, via a memory broker subscription.
type recorder struct {
	mu     sync.Mutex
	byKey  map[string][]string
	seen   map[string]int
	total  int
	change chan struct{}
}

func record(t testing.TB, b *memory.Broker, topic string) *recorder {
	r := &recorder{byKey: map[string][]string{}, seen: map[string]int{}, change: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Subscribe(ctx, handoff.Subscription{Topic: topic, Group: "rec"}, func(d *handoff.Delivery) {
			r.mu.Lock()
			r.seen[d.Message.ID]++
			if r.seen[d.Message.ID] == 1 {
				r.byKey[d.Message.PartitionKey] = append(r.byKey[d.Message.PartitionKey], d.Message.Subject)
				r.total++
			}
			r.mu.Unlock()
			d.Settler.Ack(ctx)
			select {
			case r.change <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// wait blocks until n distinct messages arrived, or fails after a deadline.
func (r *recorder) wait(t testing.TB, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		got := r.total
		r.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-r.change:
		case <-deadline:
			t.Fatalf("only %d of %d messages reached the broker", got, n)
		}
	}
}

func (r *recorder) keys() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	for k, v := range r.byKey {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func runRelay(t testing.TB, s relay.Store, pub handoff.Publisher, opts ...relay.Option) (stop func()) {
	t.Helper()
	r, err := relay.New(s, pub, append([]relay.Option{relay.WithPollInterval(time.Millisecond, 20*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("relay Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newBroker(t testing.TB, opts ...memory.Option) *memory.Broker {
	b, err := memory.NewBroker(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestWriter_InvalidMessageWritesNothing(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		w, _ := outbox.New(d.out)
		bad := msg("k", 2)
		bad.Type = ""
		tx, _ := d.db.Begin()
		err := w.Add(context.Background(), tx, "orders", msg("k", 1), bad)
		var ve *handoff.ValidationError
		if !errors.As(err, &ve) || ve.Attribute != "type" {
			t.Fatalf("Add = %v, want a validation error naming type", err)
		}
		tx.Commit()
		if n := pending(t, d); n != 0 {
			t.Fatalf("%d rows written despite an invalid message", n)
		}
		tx, _ = d.db.Begin()
		big := msg("k", 3)
		big.Data = []byte(`"` + strings.Repeat("x", 2<<20) + `"`)
		if err := w.Add(context.Background(), tx, "orders", big); !errors.Is(err, handoff.ErrInvalid) {
			t.Fatalf("oversize Add = %v, want ErrInvalid", err)
		}
		tx.Rollback()
	})
}

func TestWriter_RollbackWritesNothing(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		w, _ := outbox.New(d.out)
		tx, _ := d.db.Begin()
		if err := w.Add(context.Background(), tx, "orders", msg("k", 1)); err != nil {
			t.Fatal(err)
		}
		tx.Rollback()
		if n := pending(t, d); n != 0 {
			t.Fatalf("%d rows after rollback", n)
		}
	})
}

// The trap of id order vs commit order: a transaction holding a lower id
// that commits after one holding a higher id is neither skipped nor, for
// one key, published out of commit order.
func TestRelay_OverlappingTransactionsNeitherSkippedNorReordered(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		if d.name == "sqlite" {
			t.Skip("SQLite has one writer: transactions cannot overlap")
		}
		ctx := context.Background()
		w, _ := outbox.New(d.out)
		b := newBroker(t)
		rec := record(t, b, "orders")
		runRelay(t, d.relay(), b)

		// Different keys: T1 takes the lower id and commits last.
		t1, _ := d.db.BeginTx(ctx, nil)
		if err := w.Add(ctx, t1, "orders", msg("a", 1)); err != nil {
			t.Fatal(err)
		}
		write(t, d, w, "orders", msg("b", 1))
		rec.wait(t, 1)
		if err := t1.Commit(); err != nil {
			t.Fatal(err)
		}
		rec.wait(t, 2)

		// One key: T2 starts writing while T1 holds the key; it waits for
		// T1's commit, so its row follows T1's in commit order.
		t1, _ = d.db.BeginTx(ctx, nil)
		if err := w.Add(ctx, t1, "orders", msg("c", 1)); err != nil {
			t.Fatal(err)
		}
		t2done := make(chan error, 1)
		started := make(chan struct{})
		go func() {
			t2, err := d.db.BeginTx(ctx, nil)
			if err != nil {
				t2done <- err
				return
			}
			close(started)
			if err := w.Add(ctx, t2, "orders", msg("c", 2)); err != nil {
				t2.Rollback()
				t2done <- err
				return
			}
			t2done <- t2.Commit()
		}()
		<-started
		select {
		case err := <-t2done:
			t.Fatalf("second writer of key c finished (%v) while the first held the key", err)
		case <-time.After(200 * time.Millisecond):
		}
		if err := t1.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := <-t2done; err != nil {
			t.Fatal(err)
		}
		rec.wait(t, 4)
		got := rec.keys()
		if fmt.Sprint(got["c"]) != "[1 2]" || fmt.Sprint(got["a"]) != "[1]" || fmt.Sprint(got["b"]) != "[1]" {
			t.Fatalf("published %v", got)
		}
	})
}

// Several relays share the partitions; every event arrives, in order per key,
// and the outbox is emptied.
func TestRelay_SeveralRelaysKeepOrderPerKey(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		w, _ := outbox.New(d.out, outbox.WithPartitions(8))
		b := newBroker(t)
		rec := record(t, b, "orders")
		for i := 0; i < 3; i++ {
			runRelay(t, d.relay(), b, relay.WithPartitions(8), relay.WithBatchSize(7), relay.WithLeaseTTL(time.Second))
		}
		const keys, per = 10, 30
		for i := 0; i < per; i++ {
			var batch []*handoff.Message
			for k := 0; k < keys; k++ {
				batch = append(batch, msg(fmt.Sprintf("k%d", k), i))
			}
			write(t, d, w, "orders", batch...)
		}
		rec.wait(t, keys*per)
		for k, ns := range rec.keys() {
			for i, n := range ns {
				if n != fmt.Sprint(i) {
					t.Fatalf("key %s out of order: %v", k, ns)
				}
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for pending(t, d) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d rows left in the outbox after publishing", pending(t, d))
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// A relay that stops renewing (crashed) loses its partitions to another
// once the leases expire; nothing is lost.
func TestRelay_TakesOverExpiredLeases(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		ctx := context.Background()
		w, _ := outbox.New(d.out, outbox.WithPartitions(4))
		s := d.relay()
		// A crashed relay holds every partition.
		held, _, err := s.Claim(ctx, "crashed", 4, 4, 300*time.Millisecond)
		if err != nil || len(held) != 4 {
			t.Fatalf("claim = %v, %v", held, err)
		}
		for i := 0; i < 20; i++ {
			write(t, d, w, "orders", msg(fmt.Sprintf("k%d", i%5), i))
		}
		b := newBroker(t)
		rec := record(t, b, "orders")
		runRelay(t, d.relay(), b, relay.WithPartitions(4), relay.WithLeaseTTL(300*time.Millisecond))
		rec.wait(t, 20)
	})
}

// failing fails every Publish while down is set.
type failing struct {
	next  handoff.Publisher
	down  atomic.Bool
	calls atomic.Int32
}

func (f *failing) Publish(ctx context.Context, topic string, msgs ...*handoff.Message) error {
	f.calls.Add(1)
	if f.down.Load() {
		return errors.New("broker unreachable")
	}
	return f.next.Publish(ctx, topic, msgs...)
}

// Broker outage: rows accumulate and drain when the broker is back.
func TestRelay_BrokerOutageLosesNothing(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		w, _ := outbox.New(d.out)
		b := newBroker(t)
		rec := record(t, b, "orders")
		pub := &failing{next: b}
		pub.down.Store(true)
		runRelay(t, d.relay(), pub)
		for i := 0; i < 50; i++ {
			write(t, d, w, "orders", msg(fmt.Sprintf("k%d", i%4), i))
		}
		for pub.calls.Load() < 3 { // the relay tried and backed off
			time.Sleep(5 * time.Millisecond)
		}
		if n := pending(t, d); n != 50 {
			t.Fatalf("%d rows pending during the outage, want 50", n)
		}
		pub.down.Store(false)
		rec.wait(t, 50)
		for k, ns := range rec.keys() {
			for i := 1; i < len(ns); i++ {
				var a, b int
				fmt.Sscan(ns[i-1], &a)
				fmt.Sscan(ns[i], &b)
				if a >= b {
					t.Fatalf("key %s out of order after the outage: %v", k, ns)
				}
			}
		}
	})
}

// flaky fails every store call while down is set.
type flaky struct {
	relay.Store
	down atomic.Bool
}

var errDown = errors.New("database unreachable")

func (f *flaky) Claim(ctx context.Context, o string, w, t int, ttl time.Duration) ([]int, int, error) {
	if f.down.Load() {
		return nil, 0, errDown
	}
	return f.Store.Claim(ctx, o, w, t, ttl)
}

func (f *flaky) Fetch(ctx context.Context, p []int, n int) ([]outbox.Row, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.Store.Fetch(ctx, p, n)
}

// Database outage: the relay retries; rows written before and after arrive.
func TestRelay_DatabaseOutageRecovers(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		w, _ := outbox.New(d.out)
		b := newBroker(t)
		rec := record(t, b, "orders")
		s := &flaky{Store: d.relay()}
		s.down.Store(true)
		runRelay(t, s, b)
		write(t, d, w, "orders", msg("k", 1))
		s.down.Store(false)
		write(t, d, w, "orders", msg("k", 2))
		rec.wait(t, 2)
	})
}

// A message the broker refuses for good is dead-lettered; later rows of its
// key wait, other keys flow. The key is held while the letter is open: the
// relay reads its state from the same database, so replaying the (edited)
// letter publishes it and then the later rows, in order, and purging or
// deleting it releases them; the refused row leaves the outbox.
func TestRelay_RefusedRowHoldsItsKeyUntilItsLetterIsReplayedPurgedOrDeleted(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		for _, how := range []string{"replay", "purge", "delete"} {
			t.Run(how, func(t *testing.T) {
				ctx := context.Background()
				w, _ := outbox.New(d.out, outbox.WithMaxMessageSize(0))
				b := newBroker(t, memory.WithMaxMessageSize(4096))
				topic := "orders-" + how
				rec := record(t, b, topic)
				letters, _ := dlq.New(d.dlq)
				runRelay(t, d.relay(), b, relay.WithDeadLetters(letters))

				big := msg("a", 1)
				big.Data = []byte(`"` + strings.Repeat("x", 8000) + `"`)
				write(t, d, w, topic, big, msg("a", 2), msg("b", 1))
				rec.wait(t, 1)
				var ls []*dlq.Letter
				for deadline := time.Now().Add(10 * time.Second); len(ls) == 0; {
					ls, _ = letters.List(ctx, dlq.Filter{Topic: topic})
					if time.Now().After(deadline) {
						t.Fatal("refused message not dead-lettered")
					}
					time.Sleep(5 * time.Millisecond)
				}
				l := ls[0]
				if l.Class != dlq.ClassPublish || l.Consumer != dlq.RelayConsumer || l.Message.ID != big.ID {
					t.Fatalf("letter %s of %s for %s, want class publish of the relay for %s", l.Class, l.Consumer, l.Message.ID, big.ID)
				}
				// The relay keeps polling; key a stays held meanwhile.
				write(t, d, w, topic, msg("c", 1))
				rec.wait(t, 2)
				if got := rec.keys(); len(got["a"]) != 0 || fmt.Sprint(got["b"]) != "[1]" {
					t.Fatalf("published %v: key a must wait behind its refused row, b must flow", got)
				}
				want := "[2]"
				switch how {
				case "replay":
					if err := letters.Edit(ctx, l.ID, []byte(`"small now"`), ""); err != nil {
						t.Fatal(err)
					}
					if err := letters.Replay(ctx, b, l.ID); err != nil {
						t.Fatal(err)
					}
					want = "[1 2]"
				case "purge":
					if n, err := letters.Purge(ctx, dlq.Filter{Consumer: dlq.RelayConsumer, Topic: topic}); err != nil || n != 1 {
						t.Fatalf("Purge = %d, %v", n, err)
					}
				case "delete":
					if err := letters.Delete(ctx, l.ID); err != nil {
						t.Fatal(err)
					}
				}
				rec.wait(t, 3+strings.Count(want, " "))
				if got := rec.keys(); fmt.Sprint(got["a"]) != want {
					t.Fatalf("after the %s, key a published %v, want %s", how, got["a"], want)
				}
				for deadline := time.Now().Add(10 * time.Second); pending(t, d) != 0; {
					if time.Now().After(deadline) {
						t.Fatalf("%d rows left in the outbox; the refused row must go once its letter is resolved", pending(t, d))
					}
					time.Sleep(5 * time.Millisecond)
				}
			})
		}
	})
}

// leases returns who holds each partition lease, and which relays are
// registered.
func leases(t testing.TB, d db) (owners map[string]int, relays []string) {
	t.Helper()
	owners = map[string]int{}
	rows, err := d.db.Query("SELECT owner FROM handoff_outbox_leases")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var o string
		rows.Scan(&o)
		owners[o]++
	}
	rows.Close()
	rows, err = d.db.Query("SELECT owner FROM handoff_relays")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var o string
		rows.Scan(&o)
		relays = append(relays, o)
	}
	rows.Close()
	return owners, relays
}

// firstClaim observes the first event that reports held partitions.
type firstClaim struct {
	once sync.Once
	got  chan []int
}

func (f *firstClaim) ObserveRelay(e relay.Event) {
	if e.Partitions != nil {
		f.once.Do(func() { f.got <- append([]int(nil), e.Partitions...) })
	}
}

// A relay that stops cleanly gives up its leases and its registration, so
// the next one, started at once, claims every partition on its first claim
// (not half of them, waiting for the first one's registration to expire).
func TestRelay_StoppedCleanlyANewRelayClaimsEveryPartitionAtOnce(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		b := newBroker(t)
		first := &firstClaim{got: make(chan []int, 1)}
		stop := runRelay(t, d.relay(), b, relay.WithOwner("first"), relay.WithObserver(first))
		if got := <-first.got; len(got) != outbox.DefaultPartitions {
			t.Fatalf("first relay claimed %d partitions, want %d", len(got), outbox.DefaultPartitions)
		}
		stop()
		if owners, relays := leases(t, d); len(owners) != 0 || len(relays) != 0 {
			t.Fatalf("after a clean stop: leases %v, relays %v; want none", owners, relays)
		}
		second := &firstClaim{got: make(chan []int, 1)}
		runRelay(t, d.relay(), b, relay.WithOwner("second"), relay.WithObserver(second))
		if got := <-second.got; len(got) != outbox.DefaultPartitions {
			t.Fatalf("the relay started after a clean stop claimed %d partitions on its first claim, want all %d", len(got), outbox.DefaultPartitions)
		}
		if owners, _ := leases(t, d); owners["second"] != outbox.DefaultPartitions || len(owners) != 1 {
			t.Fatalf("lease rows: %v, want all %d held by second", owners, outbox.DefaultPartitions)
		}
	})
}

// signalling tells, once, that the relay reached its store.
type signalling struct {
	relay.Store
	once    sync.Once
	reached chan struct{}
}

func (s *signalling) Claim(ctx context.Context, o string, w, t int, ttl time.Duration) ([]int, int, error) {
	s.once.Do(func() { close(s.reached) })
	return s.Store.Claim(ctx, o, w, t, ttl)
}

func TestRelay_SecondConcurrentRunRefused(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		if d.name != "sqlite" {
			t.Skip("store-independent")
		}
		s := &signalling{Store: d.relay(), reached: make(chan struct{})}
		r, err := relay.New(s, newBroker(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		<-s.reached
		if err := r.Run(context.Background()); !errors.Is(err, relay.ErrRunning) {
			t.Fatalf("a second Run while the first runs = %v, want ErrRunning", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// Once the first has returned, the relay can run again.
		ctx2, cancel2 := context.WithCancel(context.Background())
		cancel2()
		if err := r.Run(ctx2); err != nil {
			t.Fatalf("Run after the first returned = %v, want nil", err)
		}
	})
}

// syncLog is a log buffer safe for concurrent writes and reads.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// checkedFailing is a failing publisher that is also a relay.Checker.
type checkedFailing struct {
	failing
	checks atomic.Int32
}

var errRefused = errors.New("nats: not connected to nats://127.0.0.1:4299 (RECONNECTING): dial tcp 127.0.0.1:4299: connect: connection refused")

func (f *checkedFailing) Publish(ctx context.Context, topic string, msgs ...*handoff.Message) error {
	if f.down.Load() {
		f.calls.Add(1)
		return errRefused
	}
	return f.failing.Publish(ctx, topic, msgs...)
}

func (f *checkedFailing) Check(ctx context.Context) error {
	f.checks.Add(1)
	if f.down.Load() {
		return errRefused
	}
	return nil
}

// An unreachable broker is logged at once with its cause (naming the
// address), not again on every retry while it lasts, and when it is back;
// Health names it meanwhile.
func TestRelay_UnreachableBrokerLoggedOnceWithItsCauseThenItsRecovery(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		if d.name != "sqlite" {
			t.Skip("store-independent")
		}
		w, _ := outbox.New(d.out)
		b := newBroker(t)
		rec := record(t, b, "orders")
		pub := &checkedFailing{failing: failing{next: b}}
		pub.down.Store(true)
		var logs syncLog
		log := slog.New(slog.NewTextHandler(&logs, nil))
		r, err := relay.New(d.relay(), pub, relay.WithLogger(log), relay.WithPollInterval(time.Millisecond, 10*time.Millisecond),
			relay.WithOutageLogInterval(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		defer func() { cancel(); <-done }()
		write(t, d, w, "orders", msg("k", 1))
		for deadline := time.Now().Add(30 * time.Second); pub.calls.Load() < 4 || pub.checks.Load() < 1; {
			if time.Now().After(deadline) {
				t.Fatalf("the relay tried %d publishes and %d checks", pub.calls.Load(), pub.checks.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
		if got := strings.Count(logs.String(), "broker unreachable"); got != 1 {
			t.Fatalf("%d lines saying the broker is unreachable after %d failures, want 1:\n%s", got, pub.calls.Load(), logs.String())
		}
		if !strings.Contains(logs.String(), "127.0.0.1:4299") || !strings.Contains(logs.String(), "connection refused") {
			t.Fatalf("the outage line does not name the address and the cause:\n%s", logs.String())
		}
		if err := r.Health(); err == nil || !strings.Contains(err.Error(), "broker unreachable") {
			t.Fatalf("Health = %v, want it to name the broker", err)
		}
		pub.down.Store(false)
		rec.wait(t, 1)
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(logs.String(), "broker reachable again"); {
			if time.Now().After(deadline) {
				t.Fatalf("no recovery logged:\n%s", logs.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := r.Health(); err != nil {
			t.Fatalf("Health after recovery = %v", err)
		}
	})
}

// slowRenewal makes every Claim after the first (the renewals) wait until
// release is closed or its context ends, and closes blocked when one waits.
type slowRenewal struct {
	relay.Store
	calls   atomic.Int32
	once    sync.Once
	blocked chan struct{}
	release chan struct{}
}

func (s *slowRenewal) Claim(ctx context.Context, o string, w, t int, ttl time.Duration) ([]int, int, error) {
	if s.calls.Add(1) > 1 {
		s.once.Do(func() { close(s.blocked) })
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	return s.Store.Claim(ctx, o, w, t, ttl)
}

// The lease renewal runs beside the passes: rows committed while a renewal
// is slow (each of its statements waits for a commit) are published
// meanwhile, not after it, as long as the relay's leases last.
func TestRelay_PublishesWhileALeaseRenewalIsSlow(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		if d.name != "sqlite" {
			t.Skip("store-independent")
		}
		w, _ := outbox.New(d.out)
		b := newBroker(t)
		rec := record(t, b, "orders")
		s := &slowRenewal{Store: d.relay(), blocked: make(chan struct{}), release: make(chan struct{})}
		defer close(s.release)
		// Renewals every 4s; the relay's leases last 8s from a renewal's start.
		runRelay(t, s, b, relay.WithLeaseTTL(12*time.Second))
		write(t, d, w, "orders", msg("k", 1))
		rec.wait(t, 1)
		<-s.blocked
		write(t, d, w, "orders", msg("k", 2), msg("j", 1))
		rec.wait(t, 3) // fails (after 30s) if the pass waits for the renewal
		if got := rec.keys()["k"]; len(got) != 2 || got[0] != "1" || got[1] != "2" {
			t.Fatalf("key k arrived as %v, want [1 2]", got)
		}
	})
}

// slowStats makes Stats wait until release is closed or its context ends,
// and closes blocked when it waits.
type slowStats struct {
	relay.Store
	once    sync.Once
	blocked chan struct{}
	release chan struct{}
}

func (s *slowStats) Stats(ctx context.Context) (relay.Stats, error) {
	s.once.Do(func() { close(s.blocked) })
	select {
	case <-s.release:
	case <-ctx.Done():
		return relay.Stats{}, ctx.Err()
	}
	return s.Store.Stats(ctx)
}

type nopObserver struct{}

func (nopObserver) ObserveRelay(relay.Event) {}

// The stats query (for an observer or the progress log) runs beside the
// passes: counting a large backlog does not stop publishing.
func TestRelay_PublishesWhileTheStatsQueryIsSlow(t *testing.T) {
	each(t, func(t *testing.T, d db) {
		if d.name != "sqlite" {
			t.Skip("store-independent")
		}
		w, _ := outbox.New(d.out)
		b := newBroker(t)
		rec := record(t, b, "orders")
		s := &slowStats{Store: d.relay(), blocked: make(chan struct{}), release: make(chan struct{})}
		defer close(s.release)
		runRelay(t, s, b, relay.WithObserver(nopObserver{}))
		<-s.blocked
		write(t, d, w, "orders", msg("k", 1), msg("k", 2))
		rec.wait(t, 2) // fails (after 30s) if the pass waits for the stats
	})
}
