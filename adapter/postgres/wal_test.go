package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/outbox"
)

// recorder is a publisher that keeps what it was sent, in order, and fails
// while failing is set.
type recorder struct {
	mu      sync.Mutex
	got     []*handoff.Message
	failing error
	tries   int
	signal  chan struct{}
}

func newRecorder() *recorder { return &recorder{signal: make(chan struct{}, 1)} }

func (p *recorder) Publish(ctx context.Context, topic string, msgs ...*handoff.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tries++
	defer func() {
		select {
		case p.signal <- struct{}{}:
		default:
		}
	}()
	if p.failing != nil {
		return p.failing
	}
	p.got = append(p.got, msgs...)
	return nil
}

func (p *recorder) setFailing(err error) { p.mu.Lock(); p.failing = err; p.mu.Unlock() }

func (p *recorder) snapshot() ([]*handoff.Message, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*handoff.Message(nil), p.got...), p.tries
}

// waitFor waits until cond holds, woken by the publisher's signal or a
// short tick (the slot's state changes with no signal of ours).
func (p *recorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for !cond() {
		select {
		case <-p.signal:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

type walEnv struct {
	db   *sql.DB
	dsn  string
	slot string
}

func newWALEnv(t *testing.T, settings ...string) walEnv {
	t.Helper()
	dsn, _ := testenv.LogicalPostgresURL(t, settings...)
	ctx := context.Background()
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := postgres.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	slot := testenv.Unique("slot_")
	if err := postgres.SetupWAL(ctx, db, slot); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Exec("SELECT pg_drop_replication_slot($1) WHERE EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND NOT active)", slot)
		db.Exec("DROP PUBLICATION IF EXISTS " + slot)
	})
	if _, err := db.Exec(`CREATE TABLE orders (k TEXT NOT NULL, n INT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return walEnv{db: db, dsn: dsn, slot: slot}
}

func event(k string, n int) *handoff.Message {
	m := handoff.NewMessage("/orders", "order.placed", fmt.Appendf(nil, `{"k":%q,"n":%d}`, k, n))
	m.PartitionKey = k
	return m
}

// write commits the order row and its event in one transaction.
func (e walEnv) write(t *testing.T, w *outbox.Writer, k string, n int) *handoff.Message {
	t.Helper()
	ctx := context.Background()
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO orders (k, n) VALUES ($1, $2)`, k, n); err != nil {
		t.Fatal(err)
	}
	m := event(k, n)
	if err := w.Add(ctx, tx, "orders", m); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return m
}

func (e walEnv) relay(t *testing.T, pub handoff.Publisher, opts ...postgres.WALOption) (*postgres.WALRelay, func() error) {
	t.Helper()
	r, err := postgres.NewWALRelay(e.dsn, pub, append([]postgres.WALOption{postgres.WithSlot(e.slot),
		postgres.WithWALRetry(10*time.Millisecond, 50*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { stop() })
	return r, stop
}

// WAL mode publishes per key in commit order, even where ids would say
// otherwise: of two overlapping transactions on one key, the one that
// began (and wrote its event) first but committed second is published
// second. A rolled-back event is never published. Both writer forms.
func TestWAL_CommitOrderPerKey(t *testing.T) {
	for _, form := range []postgres.WALForm{postgres.WALMessages, postgres.WALRows} {
		t.Run(form.String(), func(t *testing.T) {
			e := newWALEnv(t)
			ctx := context.Background()
			w, err := outbox.New(postgres.OutboxStore(e.db, postgres.WithWAL(form)))
			if err != nil {
				t.Fatal(err)
			}
			// Overlapping transactions on key "a": tx1 writes first, commits last.
			tx1, err := e.db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			late := event("a", 2)
			if err := w.Add(ctx, tx1, "orders", late); err != nil {
				t.Fatal(err)
			}
			early := e.write(t, w, "a", 1)
			rolled, err := e.db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Add(ctx, rolled, "orders", event("a", 99)); err != nil {
				t.Fatal(err)
			}
			rolled.Rollback()
			if err := tx1.Commit(); err != nil {
				t.Fatal(err)
			}
			var want []string
			want = append(want, early.ID, late.ID)
			for n := 3; n <= 50; n++ {
				want = append(want, e.write(t, w, "a", n).ID, e.write(t, w, "b", n).ID)
			}
			pub := newRecorder()
			_, stop := e.relay(t, pub)
			rows := func() int {
				var n int
				if err := e.db.QueryRow(`SELECT COUNT(*) FROM handoff_outbox`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			pub.waitFor(t, "every event, and no row left", func() bool { got, _ := pub.snapshot(); return len(got) >= len(want) && rows() == 0 })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			got, _ := pub.snapshot()
			if len(got) != len(want) {
				t.Fatalf("published %d events, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].ID != want[i] {
					t.Fatalf("event %d: published %s (key %s, %s), want %s: not commit order", i, got[i].ID, got[i].PartitionKey, got[i].Data, want[i])
				}
			}
			if got[0].PartitionKey != "a" || string(got[0].Data) != `{"k":"a","n":1}` {
				t.Fatalf("first event %s %s: the envelope did not survive the WAL", got[0].PartitionKey, got[0].Data)
			}
		})
	}
}

// The slot's position moves only after the broker's ack: while the broker
// refuses, the event stays unconfirmed, and a new relay (after a crash,
// simulated by stopping this one) publishes it.
func TestWAL_ConfirmsOnlyAfterAck(t *testing.T) {
	e := newWALEnv(t)
	w, err := outbox.New(postgres.OutboxStore(e.db, postgres.WithWAL(postgres.WALMessages)))
	if err != nil {
		t.Fatal(err)
	}
	down := newRecorder()
	down.setFailing(errors.New("broker down"))
	r1, stop1 := e.relay(t, down)
	m := e.write(t, w, "k", 1)
	var commitLSN string
	if err := e.db.QueryRow(`SELECT pg_current_wal_lsn()::text`).Scan(&commitLSN); err != nil {
		t.Fatal(err)
	}
	down.waitFor(t, "publish attempts", func() bool { _, tries := down.snapshot(); return tries >= 3 })
	if err := r1.Health(); err == nil || !strings.Contains(err.Error(), "broker down") {
		t.Fatalf("Health while the broker refuses: %v, want the broker's error", err)
	}
	stop1()
	var ahead bool
	if err := e.db.QueryRow(`SELECT confirmed_flush_lsn >= $1::pg_lsn FROM pg_replication_slots WHERE slot_name = $2`, commitLSN, e.slot).Scan(&ahead); err != nil {
		t.Fatal(err)
	}
	if ahead {
		t.Fatal("the slot was confirmed past an event the broker never acknowledged")
	}
	up := newRecorder()
	_, stop2 := e.relay(t, up)
	up.waitFor(t, "the event after restart", func() bool { got, _ := up.snapshot(); return len(got) >= 1 })
	stop2()
	got, _ := up.snapshot()
	if len(got) != 1 || got[0].ID != m.ID {
		t.Fatalf("after restart published %v, want exactly %s", got, m.ID)
	}
}

// One reader per slot: a second relay stands by while the first streams,
// and takes over when it stops, from the confirmed position.
func TestWAL_StandbyTakesOver(t *testing.T) {
	e := newWALEnv(t)
	w, err := outbox.New(postgres.OutboxStore(e.db, postgres.WithWAL(postgres.WALMessages)))
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := newRecorder(), newRecorder()
	_, stop1 := e.relay(t, p1)
	first := e.write(t, w, "k", 1)
	p1.waitFor(t, "the first relay's publish", func() bool { got, _ := p1.snapshot(); return len(got) == 1 })
	r2, stop2 := e.relay(t, p2)
	p2.waitFor(t, "the second relay to stand by", r2.Standby)
	second := e.write(t, w, "k", 2)
	p1.waitFor(t, "the first relay's second publish", func() bool { got, _ := p1.snapshot(); return len(got) == 2 })
	if got, _ := p2.snapshot(); len(got) != 0 {
		t.Fatalf("the standby published %d events while the first relay read the slot", len(got))
	}
	if err := r2.Health(); err != nil {
		t.Fatalf("a standby is healthy; Health: %v", err)
	}
	stop1()
	third := e.write(t, w, "k", 3)
	p2.waitFor(t, "the standby to take over", func() bool { got, _ := p2.snapshot(); return len(got) >= 1 && !r2.Standby() })
	stop2()
	got, _ := p2.snapshot()
	// What the first relay published and confirmed is not published again;
	// what it published but had not confirmed yet may be (same id).
	var ids []string
	for _, m := range got {
		ids = append(ids, m.ID)
	}
	if ids[len(ids)-1] != third.ID {
		t.Fatalf("standby published %v, want it to end with %s", ids, third.ID)
	}
	for _, id := range ids {
		if id == first.ID {
			t.Fatalf("standby republished %s, confirmed long before the takeover", first.ID)
		}
	}
	_ = second
}

// A stopped relay makes the slot hold WAL: Slot reports the lag and the
// retained WAL, and Health fails past the alert limit.
func TestWAL_LagAndRetainedWALExposed(t *testing.T) {
	e := newWALEnv(t)
	w, err := outbox.New(postgres.OutboxStore(e.db, postgres.WithWAL(postgres.WALMessages)))
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 50; n++ {
		e.write(t, w, "k", n)
	}
	pub := newRecorder()
	pub.setFailing(errors.New("broker down"))
	r, stop := e.relay(t, pub, postgres.WithWALAlert(1000, 20*time.Millisecond))
	pub.waitFor(t, "a publish attempt", func() bool { _, tries := pub.snapshot(); return tries >= 1 })
	st, err := r.Slot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.LagBytes < 50*100 || st.Retained < st.LagBytes || st.WALStatus == "" || !st.Active {
		t.Fatalf("slot stats %+v: want ≥ 5000 bytes of lag, retained ≥ lag, a WAL status, active", st)
	}
	pub.waitFor(t, "Health to report the retained WAL", func() bool {
		err := r.Health()
		return err != nil && strings.Contains(err.Error(), "holds back")
	})
	pub.setFailing(nil)
	pub.waitFor(t, "the events", func() bool { got, _ := pub.snapshot(); return len(got) == 50 })
	stop()
}

// When the slot passes max_slot_wal_keep_size, PostgreSQL invalidates it:
// Run ends with ErrSlotLost (it does not create a new slot and go on as if
// nothing was lost), and Slot reports wal_status "lost".
func TestWAL_SlotLost(t *testing.T) {
	e := newWALEnv(t, "max_slot_wal_keep_size=2MB")
	w, err := outbox.New(postgres.OutboxStore(e.db, postgres.WithWAL(postgres.WALMessages)))
	if err != nil {
		t.Fatal(err)
	}
	e.write(t, w, "k", 1)
	// No relay reads: write and switch WAL segments (1 MB each in the
	// test cluster) and checkpoint until the server gives the slot up.
	var status string
	for i := 0; i < 40; i++ {
		if _, err := e.db.Exec(`SELECT pg_logical_emit_message(false, 'filler', repeat('x', 600000))`); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Exec(`SELECT pg_switch_wal()`); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Exec(`CHECKPOINT`); err != nil {
			t.Fatal(err)
		}
		if err := e.db.QueryRow(`SELECT COALESCE(wal_status, '') FROM pg_replication_slots WHERE slot_name = $1`, e.slot).Scan(&status); err != nil {
			t.Fatal(err)
		}
		if status == "lost" {
			break
		}
	}
	if status != "lost" {
		t.Skipf("the server did not invalidate the slot (wal_status %q); max_slot_wal_keep_size not in effect", status)
	}
	r, err := postgres.NewWALRelay(e.dsn, newRecorder(), postgres.WithSlot(e.slot))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Run(ctx); !errors.Is(err, postgres.ErrSlotLost) {
		t.Fatalf("Run on a lost slot: %v, want ErrSlotLost", err)
	}
	st, err := r.Slot(context.Background())
	if err != nil || st.WALStatus != "lost" {
		t.Fatalf("Slot: %+v, %v; want wal_status lost", st, err)
	}
	if err := r.Health(); err == nil || !strings.Contains(err.Error(), "lost") {
		t.Fatalf("Health after the slot was lost: %v", err)
	}
}

func TestWAL_BadOptions(t *testing.T) {
	pub := newRecorder()
	for _, tc := range []struct {
		opt  postgres.WALOption
		want string
	}{
		{postgres.WithSlot("Bad-Name"), "a-z, 0-9 and _"},
		{postgres.WithWALBatch(0, 0), "n ≥ 1"},
		{postgres.WithWALAlert(0, time.Second), "> 0"},
		{postgres.WithWALRetry(0, time.Second), "0 < min"},
	} {
		if _, err := postgres.NewWALRelay("postgres://x@127.0.0.1/db", pub, tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error containing %q", err, tc.want)
		}
	}
	if _, err := postgres.NewWALRelay("postgres://x@127.0.0.1/db", nil); err == nil {
		t.Error("nil publisher accepted")
	}
}
