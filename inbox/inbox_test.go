package inbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
)

func openSQLite(t testing.TB) *sql.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "inbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := sqlite.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestNew_RejectsBadArguments(t *testing.T) {
	db := openSQLite(t)
	s := sqlite.InboxStore(db)
	for _, c := range []struct {
		name     string
		store    inbox.Store[*sql.Tx]
		consumer string
		opt      inbox.Option
		want     string
	}{
		{"nil store", nil, "c", nil, "store"},
		{"no consumer", s, "", nil, "consumer"},
		{"short retention", s, "c", inbox.WithRetention(time.Second), "WithRetention"},
		{"zero interval", s, "c", inbox.WithCleanupInterval(0), "WithCleanupInterval"},
		{"zero batch", s, "c", inbox.WithCleanupBatch(0), "WithCleanupBatch"},
		{"negative retries", s, "c", inbox.WithConflictRetries(-1), "WithConflictRetries"},
		{"read-only tx", s, "c", inbox.WithTxOptions(&sql.TxOptions{ReadOnly: true}), "WithTxOptions"},
		{"nil logger", s, "c", inbox.WithLogger(nil), "WithLogger"},
	} {
		_, err := inbox.New(c.store, c.consumer, c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one naming %s", c.name, err, c.want)
		}
	}
}

func TestHandler_MessageWithoutIDIsPermanent(t *testing.T) {
	db := openSQLite(t)
	in, err := inbox.New(sqlite.InboxStore(db), "c")
	if err != nil {
		t.Fatal(err)
	}
	called := false
	err = in.Handler(func(context.Context, *sql.Tx, *handoff.Message) error { called = true; return nil }).
		Handle(context.Background(), &handoff.Message{})
	if !errors.Is(err, inbox.ErrNoID) || !handoff.IsPermanent(err) || called {
		t.Errorf("err = %v (called %v), want permanent ErrNoID without calling the handler", err, called)
	}
}

var errConflict = errors.New("serialization failure")

// conflictStore fails Mark with errConflict a number of times, then
// delegates; it reports errConflict as a conflict.
type conflictStore struct {
	inbox.Store[*sql.Tx]
	mu        sync.Mutex
	conflicts int
	other     error
	marks     int
}

func (s *conflictStore) Mark(ctx context.Context, tx *sql.Tx, consumer string, ids ...string) ([]bool, error) {
	s.mu.Lock()
	s.marks++
	if s.other != nil {
		s.mu.Unlock()
		return nil, s.other
	}
	if s.conflicts > 0 {
		s.conflicts--
		s.mu.Unlock()
		return nil, errConflict
	}
	s.mu.Unlock()
	return s.Store.Mark(ctx, tx, consumer, ids...)
}

func (s *conflictStore) IsConflict(err error) bool { return errors.Is(err, errConflict) }

func TestHandler_RunsTheTransactionAgainOnConflict(t *testing.T) {
	db := openSQLite(t)
	for _, c := range []struct {
		name              string
		conflicts, budget int
		other             error
		wantErr           error
		wantCalls, marks  int
	}{
		{"two conflicts within budget", 2, 3, nil, nil, 1, 3},
		{"more conflicts than budget", 5, 2, nil, errConflict, 0, 3},
		{"no retries", 1, 0, nil, errConflict, 0, 1},
		{"other errors are not retried", 0, 3, errors.New("disk full"), nil, 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &conflictStore{Store: sqlite.InboxStore(db), conflicts: c.conflicts, other: c.other}
			in, err := inbox.New[*sql.Tx](s, "c", inbox.WithConflictRetries(c.budget))
			if err != nil {
				t.Fatal(err)
			}
			calls := 0
			err = in.Handler(func(context.Context, *sql.Tx, *handoff.Message) error { calls++; return nil }).
				Handle(context.Background(), handoff.NewMessage("/s", "t", nil))
			switch {
			case c.other != nil:
				if !errors.Is(err, c.other) {
					t.Errorf("err = %v, want %v", err, c.other)
				}
			case !errors.Is(err, c.wantErr) && !(err == nil && c.wantErr == nil):
				t.Errorf("err = %v, want %v", err, c.wantErr)
			}
			if calls != c.wantCalls || s.marks != c.marks {
				t.Errorf("handler ran %d times after %d marks, want %d after %d", calls, s.marks, c.wantCalls, c.marks)
			}
		})
	}
}

func TestHandler_HandlerErrorIsReturnedAsIs(t *testing.T) {
	db := openSQLite(t)
	in, err := inbox.New(sqlite.InboxStore(db), "c")
	if err != nil {
		t.Fatal(err)
	}
	boom := handoff.Permanent(errors.New("bad order"))
	calls := 0
	h := in.Handler(func(context.Context, *sql.Tx, *handoff.Message) error { calls++; return boom })
	msg := handoff.NewMessage("/s", "t", nil)
	if err := h.Handle(context.Background(), msg); err != boom {
		t.Errorf("err = %v, want the handler's own error value", err)
	}
	if err := h.Handle(context.Background(), msg); err != boom || calls != 2 {
		t.Errorf("after a failure the message ran %d times (err %v), want 2: the mark must roll back", calls, err)
	}
}

// purgeStore records purges and deletes full batches a given number of times.
type purgeStore struct {
	inbox.Store[*sql.Tx] // nil: Run uses only Purge
	mu                   sync.Mutex
	befores              []time.Time
	full                 int // how many calls return a full batch
	fail                 bool
}

func (s *purgeStore) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.befores = append(s.befores, before)
	if s.fail {
		return 0, errors.New("db down")
	}
	if s.full > 0 {
		s.full--
		return limit, nil
	}
	return limit / 2, nil
}

func (s *purgeStore) calls() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.befores...)
}

func TestRun_PurgesExpiredMarksInBatchesEachInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &purgeStore{full: 2}
		in, err := inbox.New[*sql.Tx](s, "c", inbox.WithRetention(time.Hour),
			inbox.WithCleanupInterval(10*time.Minute), inbox.WithCleanupBatch(100))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- in.Run(ctx) }()

		synctest.Wait()
		got := s.calls()
		if len(got) != 3 {
			t.Fatalf("first cleanup made %d purge calls, want 3 (two full batches, then a short one)", len(got))
		}
		for _, b := range got {
			if !b.Equal(start.Add(-time.Hour)) {
				t.Errorf("purged before %v, want now minus the retention, %v", b, start.Add(-time.Hour))
			}
		}
		time.Sleep(10*time.Minute - time.Nanosecond)
		synctest.Wait()
		if n := len(s.calls()); n != 3 {
			t.Errorf("cleanup ran before the interval: %d calls", n)
		}
		s.mu.Lock()
		s.fail = true
		s.mu.Unlock()
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if n := len(s.calls()); n != 4 {
			t.Errorf("after one interval: %d calls, want 4", n)
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if n := len(s.calls()); n != 5 {
			t.Errorf("a failed cleanup stopped Run: %d calls, want 5", n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	})
}

func TestHandler_ConflictInTheHandlerRunsTheTransactionAgain(t *testing.T) {
	db := openSQLite(t)
	in, err := inbox.New[*sql.Tx](&conflictStore{Store: sqlite.InboxStore(db)}, "c")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE effects (id TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	calls := 0
	h := in.Handler(func(ctx context.Context, tx *sql.Tx, msg *handoff.Message) error {
		calls++
		if _, err := tx.ExecContext(ctx, `INSERT INTO effects (id) VALUES (?)`, msg.ID); err != nil {
			return err
		}
		if calls == 1 {
			return errConflict // as if the handler's statement had deadlocked
		}
		return nil
	})
	if err := h.Handle(context.Background(), handoff.NewMessage("/s", "t", nil)); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM effects`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if calls != 2 || n != 1 {
		t.Errorf("handler ran %d times leaving %d effects, want 2 runs and 1 effect", calls, n)
	}
	// A permanent error is never run again, conflict or not.
	calls = 0
	perm := in.Handler(func(context.Context, *sql.Tx, *handoff.Message) error {
		calls++
		return handoff.Permanent(errConflict)
	})
	if err := perm.Handle(context.Background(), handoff.NewMessage("/s", "t", nil)); !handoff.IsPermanent(err) || calls != 1 {
		t.Errorf("permanent conflict: err %v after %d runs, want permanent after 1", err, calls)
	}
}

func TestHandler_PanicRollsBackAndFreesTheConnection(t *testing.T) {
	db := openSQLite(t)
	in, err := inbox.New(sqlite.InboxStore(db), "c")
	if err != nil {
		t.Fatal(err)
	}
	msg := handoff.NewMessage("/s", "t", nil)
	h := in.Handler(func(context.Context, *sql.Tx, *handoff.Message) error { panic("handler bug") })
	for range 10 { // more panics than the pool has connections
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("the panic did not reach the caller")
				}
			}()
			_ = h.Handle(context.Background(), msg)
		}()
	}
	ran := false
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = in.Handler(func(context.Context, *sql.Tx, *handoff.Message) error { ran = true; return nil }).Handle(ctx, msg)
	if err != nil || !ran {
		t.Errorf("after panics: err %v, ran %v; want the message handled (mark rolled back, connections free)", err, ran)
	}
}

// One entry point works with the consumer's batching, under a Mux too:
// messages of one batch share one transaction, and each effect happens once.
func TestHandler_BatchesUnderAMuxInOneTransaction(t *testing.T) {
	db := openSQLite(t)
	if _, err := db.Exec(`CREATE TABLE effects (id TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	in, err := inbox.New(sqlite.InboxStore(db), "c")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	txs := map[*sql.Tx]int{}
	var mux consumer.Mux
	mux.On("t", in.Handler(func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
		mu.Lock()
		txs[tx]++
		mu.Unlock()
		_, err := tx.ExecContext(ctx, `INSERT INTO effects (id) VALUES (?)`, m.ID)
		return err
	}))
	broker, err := memory.NewBroker()
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	const n = 32
	ctx := context.Background()
	for i := range n {
		m := handoff.NewMessage("/s", "t", nil)
		m.PartitionKey = fmt.Sprint(i)
		if err := broker.Publish(ctx, "orders", m, m); err != nil { // every message twice
			t.Fatal(err)
		}
	}
	dead, _ := dlq.New(memory.NewDLQStore())
	c, err := consumer.New(broker, "orders", "c", &mux, dead, consumer.WithWorkers(1), consumer.WithBatchSize(16))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx) }()
	deadline := time.Now().Add(20 * time.Second)
	count := func() (k int) { _ = db.QueryRow(`SELECT COUNT(*) FROM effects`).Scan(&k); return k }
	for count() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if k := count(); k != n {
		t.Fatalf("%d effects, want %d", k, n)
	}
	mu.Lock()
	defer mu.Unlock()
	shared := 0
	for _, k := range txs {
		if k > 1 {
			shared++
		}
	}
	if shared == 0 {
		t.Errorf("no two messages shared a transaction (%d transactions): the Mux did not batch", len(txs))
	}
}
