package handofftest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/inbox"
)

// InboxDB is one database for the inbox suite: its inbox store, whose
// transactions are typed Tx, and a way to run the suite's own statements.
type InboxDB[Tx any] struct {
	Store inbox.Store[Tx]
	// Exec runs a statement outside any transaction.
	Exec func(ctx context.Context, query string) error
	// ExecTx runs a statement in tx.
	ExecTx func(ctx context.Context, tx Tx, query string) error
	// Ints runs a query of one integer column and returns its values in order.
	Ints func(ctx context.Context, query string) ([]int, error)
}

// SQLInbox is the InboxDB of a database/sql store.
func SQLInbox(db *sql.DB, s inbox.Store[*sql.Tx]) InboxDB[*sql.Tx] {
	return InboxDB[*sql.Tx]{
		Store: s,
		Exec: func(ctx context.Context, query string) error {
			_, err := db.ExecContext(ctx, query)
			return err
		},
		ExecTx: func(ctx context.Context, tx *sql.Tx, query string) error {
			_, err := tx.ExecContext(ctx, query)
			return err
		},
		Ints: func(ctx context.Context, query string) ([]int, error) {
			rows, err := db.QueryContext(ctx, query)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var out []int
			for rows.Next() {
				var n int
				if err := rows.Scan(&n); err != nil {
					return nil, err
				}
				out = append(out, n)
			}
			return out, rows.Err()
		},
	}
}

// RunInboxStore runs the inbox conformance suite: the store's marks and
// transactions, and the exactly-once guarantee of inbox.Inbox on top of it.
// newDB returns a migrated database on an isolated namespace; it registers
// its own cleanup. The suite creates its own counter tables with portable
// SQL (CREATE TABLE, INSERT and UPDATE with literal values).
func RunInboxStore[Tx any](t *testing.T, newDB func(t testing.TB) InboxDB[Tx]) {
	t.Run("MarkCommittedIsKept", func(t *testing.T) { testMarkCommit(t, newDB) })
	t.Run("MarkRolledBackIsGone", func(t *testing.T) { testMarkRollback(t, newDB) })
	t.Run("MarkTwiceInOneTransaction", func(t *testing.T) { testMarkTwice(t, newDB) })
	t.Run("MarkManyReportsEachAndADuplicateOnce", func(t *testing.T) { testMarkMany(t, newDB) })
	t.Run("ConsumersHaveSeparateMarks", func(t *testing.T) { testMarkConsumers(t, newDB) })
	t.Run("PurgeDeletesOldMarksInBatches", func(t *testing.T) { testMarkPurge(t, newDB) })
	t.Run("SavepointUndoesOnlyItsWrites", func(t *testing.T) { testSavepoint(t, newDB) })
	t.Run("DuplicateDeliveriesApplyOnce", func(t *testing.T) { testInboxSequential(t, newDB) })
	t.Run("ConcurrentDuplicateDeliveriesApplyOnce", func(t *testing.T) { testInboxConcurrent(t, newDB) })
	t.Run("TwoConsumersRaceOnOneMessage", func(t *testing.T) { testInboxRace(t, newDB) })
	t.Run("HandlerErrorRollsBackEffectsAndMark", func(t *testing.T) { testInboxHandlerError(t, newDB) })
	t.Run("BatchSavepointIsolatesAFailure", func(t *testing.T) { testInboxBatch(t, newDB) })
	t.Run("BatchWithADuplicateInsideAppliesOnce", func(t *testing.T) { testInboxBatchDuplicate(t, newDB) })
}

// RunInboxIsolation runs the exactly-once tests of RunInboxStore with the
// handler's transaction at the given isolation level, for databases where
// the level changes how racing duplicates collide (PostgreSQL reports a
// serialization failure under SERIALIZABLE and REPEATABLE READ where READ
// COMMITTED waits and skips).
func RunInboxIsolation[Tx any](t *testing.T, newDB func(t testing.TB) InboxDB[Tx], level sql.IsolationLevel) {
	opt := inbox.WithTxOptions(&sql.TxOptions{Isolation: level})
	t.Run("DuplicateDeliveriesApplyOnce", func(t *testing.T) { testInboxSequential(t, newDB, opt) })
	t.Run("ConcurrentDuplicateDeliveriesApplyOnce", func(t *testing.T) { testInboxConcurrent(t, newDB, opt) })
	t.Run("TwoConsumersRaceOnOneMessage", func(t *testing.T) { testInboxRace(t, newDB, opt) })
}

var errRollback = errors.New("handofftest: roll back")

func mark[Tx any](t testing.TB, ctx context.Context, s inbox.Store[Tx], consumer, id string, commit bool) bool {
	t.Helper()
	var fresh []bool
	err := s.InTx(ctx, nil, func(tx Tx) error {
		var err error
		if fresh, err = s.Mark(ctx, tx, consumer, id); err != nil {
			return err
		}
		if !commit {
			return errRollback
		}
		return nil
	})
	if err != nil && !errors.Is(err, errRollback) {
		t.Fatalf("Mark(%s, %s): %v", consumer, id, err)
	}
	if len(fresh) != 1 {
		t.Fatalf("Mark(%s, %s) returned %d results for one id", consumer, id, len(fresh))
	}
	return fresh[0]
}

func testMarkCommit[Tx any](t *testing.T, newDB func(t testing.TB) InboxDB[Tx]) {
	db := newDB(t)
	s := db.Store
	ctx := suiteCtx(t)
	id := handoff.NewID()
	if !mark(t, ctx, s, "c", id, true) {
		t.Fatal("first Mark: fresh = false, want true")
	}
	if mark(t, ctx, s, "c", id, true) {
		t.Error("Mark after a committed mark: fresh = true, want false")
	}
}

func testMarkRollback[Tx any](t *testing.T, newDB func(t testing.TB) InboxDB[Tx]) {
	db := newDB(t)
	s := db.Store
	ctx := suiteCtx(t)
	id := handoff.NewID()
	if !mark(t, ctx, s, "c", id, false) {
		t.Fatal("first Mark: fresh = false, want true")
	}
	if !mark(t, ctx, s, "c", id, true) {
		t.Error("Mark after a rolled-back mark: fresh = false, want true")
	}
}

func testMarkTwice[Tx any](t *testing.T, newDB func(t testing.TB) InboxDB[Tx]) {
	db := newDB(t)
	s := db.Store
	ctx := suiteCtx(t)
	id := handoff.NewID()
	err := s.InTx(ctx, nil, func(tx Tx) error {
		for i, want := range []bool{true, false} {
			fresh, err := s.Mark(ctx, tx, "c", id)
			if err != nil {
				return err
			}
			if fresh[0] != want {
				t.Errorf("Mark #%d in one transaction: fresh = %v, want %v", i+1, fresh[0], want)
			}
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
}

func testMarkMany[Tx any](t *testing.T, newDB func(t testing.TB) InboxDB[Tx]) {
	db := newDB(t)
	s := db.Store
	ctx := suiteCtx(t)
	old := handoff.NewID()
	mark(t, ctx, s, "c", old, true)
	a, b := handoff.NewID(), handoff.NewID()
	var fresh []bool
	err := s.InTx(ctx, nil, func(tx Tx) error {
		var err error
		fresh, err = s.Mark(ctx, tx, "c", a, old, b, a)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(fresh) != "[true false true false]" {
		t.Errorf("Mark(new, marked before, new, the first again) = %v, want [true false true false]", fresh)
	}
	for _, id := range []string{a, b} {
		if mark(t, ctx, s, "c", id, false) {
			t.Errorf("mark %s of the committed multi-row Mark is missing", id)
		}
	}
	err = s.InTx(ctx, nil, func(tx Tx) error {
		_, err := s.Mark(ctx, tx, "c", handoff.NewID(), strings.Repeat("x", 300))
		return err
	})
	if !handoff.IsPermanent(err) {
		t.Errorf("Mark with an id of 300 bytes: %v, want a permanent error", err)
	}
}

func testMarkConsumers[Tx any](t *testing.T, newDB func(t testing.TB) InboxDB[Tx]) {
	db := newDB(t)
	s := db.Store
	ctx := suiteCtx(t)
	id := handoff.NewID()
	for _, c := range []string{"billing", "shipping", "Billing"} {
		if !mark(t, ctx, s, c, id, true) {
			t.Errorf("consumer %q: fresh = false, want true (marks are per consumer, case-sensitive)", c)
		}
	}
	if !mark(t, ctx, s, "billing", strings.ToUpper(id), true) {
		t.Error("an id differing only in case: fresh = false, want true")
	}
}

func testMarkPurge[Tx any](t *testing.T, newDB func(t testing.TB) InboxDB[Tx]) {
	db := newDB(t)
	s := db.Store
	ctx := suiteCtx(t)
	var marked []string
	for range 5 {
		id := handoff.NewID()
		marked = append(marked, id)
		mark(t, ctx, s, "c", id, true)
	}
	if n, err := s.Purge(ctx, time.Now().Add(-time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("Purge of marks older than an hour = %d, %v; want 0", n, err)
	}
	if mark(t, ctx, s, "c", marked[0], false) {
		t.Fatal("a recent mark was purged")
	}
	var got []int
	for range 4 {
		n, err := s.Purge(ctx, time.Now().Add(time.Hour), 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if fmt.Sprint(got) != "[2 2 1 0]" {
		t.Errorf("Purge batches of 2 over 5 marks = %v, want [2 2 1 0]", got)
	}
	for _, id := range marked {
		if !mark(t, ctx, s, "c", id, false) {
			t.Errorf("mark %s still there after purge", id)
		}
	}
}

// Savepoint undoes the writes of a failing function and keeps the
// transaction's other writes.
func testSavepoint[Tx any](t *testing.T, newDB func(t testing.TB) InboxDB[Tx]) {
	db := newDB(t)
	s := db.Store
	ctx := suiteCtx(t)
	c := newCounters(t, ctx, db, 3)
	boom := errors.New("boom")
	err := s.InTx(ctx, nil, func(tx Tx) error {
		for i, m := range c.msgs {
			err := s.Savepoint(ctx, tx, func() error {
				if err := c.handler(ctx, tx, m); err != nil {
					return err
				}
				if i == 1 {
					return boom
				}
				return nil
			})
			if (i == 1) != (err == boom) {
				return fmt.Errorf("savepoint %d: %v", i, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.values(t, ctx); fmt.Sprint(got) != "[1 0 1]" {
		t.Errorf("after savepoints with the second failing: %v, want [1 0 1]", got)
	}
}

// counters is a table of per-message effect counters in the test database.
type counters[Tx any] struct {
	db    InboxDB[Tx]
	table string
	index map[string]int // message id -> row
	msgs  []*handoff.Message
}

func newCounters[Tx any](t testing.TB, ctx context.Context, db InboxDB[Tx], n int) *counters[Tx] {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	c := &counters[Tx]{db: db, table: "suite_counter_" + hex.EncodeToString(b[:]), index: make(map[string]int)}
	if err := db.Exec(ctx, "CREATE TABLE "+c.table+" (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"); err != nil {
		t.Fatalf("create counter table: %v", err)
	}
	t.Cleanup(func() { _ = db.Exec(context.Background(), "DROP TABLE "+c.table) })
	var vals []string
	for i := range n {
		m := handoff.NewMessage("/suite", "com.example.count", []byte(`{}`))
		c.msgs = append(c.msgs, m)
		c.index[m.ID] = i
		vals = append(vals, fmt.Sprintf("(%d, 0)", i))
	}
	if err := db.Exec(ctx, "INSERT INTO "+c.table+" (id, n) VALUES "+strings.Join(vals, ", ")); err != nil {
		t.Fatalf("fill counter table: %v", err)
	}
	return c
}

// handler increments the message's counter in the inbox transaction.
func (c *counters[Tx]) handler(ctx context.Context, tx Tx, msg *handoff.Message) error {
	i, ok := c.index[msg.ID]
	if !ok {
		return handoff.Permanent(fmt.Errorf("unknown message %s", msg.ID))
	}
	return c.db.ExecTx(ctx, tx, fmt.Sprintf("UPDATE %s SET n = n + 1 WHERE id = %d", c.table, i))
}

// values returns every message's counter, in message order.
func (c *counters[Tx]) values(t testing.TB, ctx context.Context) []int {
	t.Helper()
	got, err := c.db.Ints(ctx, "SELECT n FROM "+c.table+" ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// check asserts that every message's counter is want.
func (c *counters[Tx]) check(t testing.TB, ctx context.Context, want int) {
	t.Helper()
	bad, total := 0, 0
	for id, n := range c.values(t, ctx) {
		total += n
		if n != want {
			bad++
			if bad <= 5 {
				t.Errorf("message %d applied %d times, want %d", id, n, want)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d messages applied a wrong number of times (total effects %d, want %d)", bad, len(c.msgs), total, want*len(c.msgs))
	}
}

func newInbox[Tx any](t testing.TB, s inbox.Store[Tx], consumer string, opts ...inbox.Option) *inbox.Inbox[Tx] {
	t.Helper()
	in, err := inbox.New(s, consumer, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// deliver hands msg to h the way an at-least-once broker does: again after
// an error, until it is acknowledged.
func deliver(t testing.TB, ctx context.Context, h handoff.Handler, msg *handoff.Message) {
	t.Helper()
	var err error
	for range 20 {
		if err = h.Handle(ctx, msg); err == nil {
			return
		}
		if ctx.Err() != nil {
			break
		}
	}
	t.Errorf("message %s never acknowledged: %v", msg.ID, err)
}

func testInboxSequential[Tx any](t *testing.T, newDB func(t testing.TB) InboxDB[Tx], opts ...inbox.Option) {
	db := newDB(t)
	s := db.Store
	ctx := suiteCtx(t)
	c := newCounters(t, ctx, db, 20)
	h := newInbox(t, s, "counter", opts...).Handler(c.handler)
	for range 2 {
		for _, m := range c.msgs {
			deliver(t, ctx, h, m)
		}
	}
	c.check(t, ctx, 1)
}

func testInboxConcurrent[Tx any](t *testing.T, newDB func(t testing.TB) InboxDB[Tx], opts ...inbox.Option) {
	db := newDB(t)
	s := db.Store
	ctx := suiteCtx(t)
	c := newCounters(t, ctx, db, 20)
	h := newInbox(t, s, "counter", opts...).Handler(c.handler)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, m := range c.msgs {
		for range 3 {
			wg.Go(func() {
				<-start
				deliver(t, ctx, h, m)
			})
		}
	}
	close(start)
	wg.Wait()
	c.check(t, ctx, 1)
}

// testInboxRace has two members of one group (two Inbox values, as in two
// processes) handle the same message at the same time, many times over.
func testInboxRace[Tx any](t *testing.T, newDB func(t testing.TB) InboxDB[Tx], opts ...inbox.Option) {
	db := newDB(t)
	s := db.Store
	ctx := suiteCtx(t)
	c := newCounters(t, ctx, db, 30)
	h1 := newInbox(t, s, "group", opts...).Handler(c.handler)
	h2 := newInbox(t, s, "group", opts...).Handler(c.handler)
	for _, m := range c.msgs {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, h := range []handoff.Handler{h1, h2} {
			wg.Go(func() {
				<-start
				deliver(t, ctx, h, m)
			})
		}
		close(start)
		wg.Wait()
	}
	c.check(t, ctx, 1)
}

func testInboxHandlerError[Tx any](t *testing.T, newDB func(t testing.TB) InboxDB[Tx]) {
	db := newDB(t)
	s := db.Store
	ctx := suiteCtx(t)
	c := newCounters(t, ctx, db, 1)
	in := newInbox(t, s, "counter")
	m := c.msgs[0]
	boom := errors.New("boom")
	failing := in.Handler(func(ctx context.Context, tx Tx, msg *handoff.Message) error {
		if err := c.handler(ctx, tx, msg); err != nil {
			return err
		}
		return boom
	})
	if err := failing.Handle(ctx, m); !errors.Is(err, boom) || handoff.IsPermanent(err) {
		t.Fatalf("failing handler: err = %v, want boom, not permanent", err)
	}
	c.check(t, ctx, 0)
	permanent := in.Handler(func(ctx context.Context, tx Tx, msg *handoff.Message) error {
		if err := c.handler(ctx, tx, msg); err != nil {
			return err
		}
		return handoff.Permanent(boom)
	})
	if err := permanent.Handle(ctx, m); !errors.Is(err, boom) || !handoff.IsPermanent(err) {
		t.Fatalf("permanent failure: err = %v, want boom, permanent", err)
	}
	c.check(t, ctx, 0)
	ok := in.Handler(c.handler)
	for range 3 {
		if err := ok.Handle(ctx, m); err != nil {
			t.Fatalf("retry: %v", err)
		}
	}
	c.check(t, ctx, 1)
}

func testInboxBatch[Tx any](t *testing.T, newDB func(t testing.TB) InboxDB[Tx]) {
	db := newDB(t)
	s := db.Store
	ctx := suiteCtx(t)
	c := newCounters(t, ctx, db, 5)
	in := newInbox(t, s, "batch")
	boom := errors.New("boom")
	failing := c.msgs[2].ID
	h := func(ctx context.Context, tx Tx, msg *handoff.Message) error {
		if err := c.handler(ctx, tx, msg); err != nil {
			return err
		}
		if msg.ID == failing {
			return boom // after its write: the savepoint must undo it
		}
		return nil
	}
	batch := append(append([]*handoff.Message(nil), c.msgs...), c.msgs[0]) // a duplicate inside the batch too
	errs := in.Handler(h).HandleBatch(ctx, batch)
	for i, err := range errs {
		if want := i == 2; (err != nil) != want || (want && !errors.Is(err, boom)) {
			t.Errorf("result %d = %v, want error %v", i, err, want)
		}
	}
	if got := c.values(t, ctx); fmt.Sprint(got) != "[1 1 0 1 1]" {
		t.Errorf("effects after a batch with one failure = %v, want [1 1 0 1 1]", got)
	}
	// The whole batch is delivered again: only the failed message runs.
	failing = ""
	for i, err := range in.Handler(h).HandleBatch(ctx, c.msgs) {
		if err != nil {
			t.Errorf("redelivery result %d = %v", i, err)
		}
	}
	c.check(t, ctx, 1)
}

// A batch where every handler succeeds (the one-transaction fast path) and
// one message appears twice: each message's effect happens once.
func testInboxBatchDuplicate[Tx any](t *testing.T, newDB func(t testing.TB) InboxDB[Tx]) {
	db := newDB(t)
	s := db.Store
	ctx := suiteCtx(t)
	c := newCounters(t, ctx, db, 4)
	in := newInbox(t, s, "batchdup")
	batch := append(append([]*handoff.Message(nil), c.msgs...), c.msgs[1], c.msgs[3])
	for i, err := range in.Handler(c.handler).HandleBatch(ctx, batch) {
		if err != nil {
			t.Errorf("result %d = %v", i, err)
		}
	}
	c.check(t, ctx, 1)
	for i, err := range in.Handler(c.handler).HandleBatch(ctx, c.msgs) {
		if err != nil {
			t.Errorf("second delivery, result %d = %v", i, err)
		}
	}
	c.check(t, ctx, 1)
}
