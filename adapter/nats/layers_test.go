package nats

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/relay"
)

func sqliteDB(t testing.TB) *sql.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "svc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := sqlite.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	return db
}

// The two dedup layers together. The stream's duplicate window absorbs a
// relay's re-publish of a message; a replay of that message passes it (its
// Nats-Msg-Id differs), reaches the group, and the group's inbox, which
// handled the message already, recognises it by its id: the handler's
// effect happens once. The same replay sent again is a duplicate, an error.
func TestDedupLayers_RepublishAbsorbedReplayDeliveredInboxRecognisesIt(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *testServer) {
		ctx := context.Background()
		c, _ := connect(t, srv)
		topic, group := testenv.Unique("layers."), "shipping"
		db := sqliteDB(t)
		in, err := inbox.New(sqlite.InboxStore(db), group)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		effects := map[string]int{}
		h := in.Handler(func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
			mu.Lock()
			effects[m.ID]++
			mu.Unlock()
			return nil
		})
		acked := make(chan *handoff.Message, 16)
		cons, err := consumer.New(c, topic, group, h, noLetters{t}, consumer.WithObserver(observerFunc(func(o consumer.Outcome) {
			if o.Result == consumer.Acked {
				acked <- o.Message
			}
		})))
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- cons.Run(cctx) }()
		defer func() { cancel(); <-done }()

		m := msg(1)
		pub(t, c, topic, m)
		pub(t, c, topic, m.Clone()) // a relay re-publishing after a crash
		if n := streamMsgs(t, c, topic); n != 1 {
			t.Fatalf("stream holds %d messages after a re-publish, want 1 (absorbed by the duplicate window)", n)
		}
		if got := waitAcked(t, acked); got.ID != m.ID {
			t.Fatalf("acked %s, want %s", got.ID, m.ID)
		}

		// A letter of this group for m (the handler failed once, say, and
		// a later copy went through): replaying it at once must reach the
		// group, not be swallowed by the window.
		letters, _ := dlq.New(memory.NewDLQStore())
		l := &dlq.Letter{Consumer: group, Topic: topic, Message: m.Clone(), Class: dlq.ClassHandler, Errors: []string{"boom"}}
		if err := letters.Add(ctx, l); err != nil {
			t.Fatal(err)
		}
		if err := letters.Replay(ctx, c, l.ID); err != nil {
			t.Fatalf("Replay: %v", err)
		}
		got := waitAcked(t, acked)
		if got.ID != m.ID || got.Extensions[dlq.ExtReplayOf] != l.ID {
			t.Fatalf("acked %s (replayof %q), want the replay of %s", got.ID, got.Extensions[dlq.ExtReplayOf], m.ID)
		}
		mu.Lock()
		n := effects[m.ID]
		mu.Unlock()
		if n != 1 {
			t.Fatalf("the handler's effect happened %d times, want once: the inbox must recognise the replay", n)
		}

		// The very same replay again is a duplicate: an error, not a
		// silent success, whether published or redelivered.
		replayed := m.Clone()
		replayed.Extensions = map[string]string{dlq.ExtReplayOf: l.ID, dlq.ExtReplayCount: "1"}
		if err := c.Redeliver(ctx, topic, group, replayed); !errors.Is(err, handoff.ErrDuplicate) {
			t.Fatalf("Redeliver of a replay the stream holds = %v, want ErrDuplicate", err)
		}
		if err := c.Publish(ctx, topic, replayed); err != nil {
			t.Fatalf("first Publish of the replay to the topic: %v", err)
		}
		if err := c.Publish(ctx, topic, replayed); !errors.Is(err, handoff.ErrDuplicate) {
			t.Fatalf("second Publish of a replay = %v, want ErrDuplicate", err)
		}
	})
}

type noLetters struct{ t testing.TB }

func (n noLetters) Add(ctx context.Context, l *dlq.Letter) error {
	n.t.Errorf("unexpected dead letter %s: %v", l.Class, l.Errors)
	return nil
}

type observerFunc func(consumer.Outcome)

func (f observerFunc) Observe(o consumer.Outcome) { f(o) }

func waitAcked(t testing.TB, ch <-chan *handoff.Message) *handoff.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(waitFor):
		t.Fatal("nothing acked in time")
		return nil
	}
}

// oldSize is how handoff.Message.Size counted before it was an upper bound
// of the encoded size: data and attribute values only.
func oldSize(m *handoff.Message) int {
	n := len(m.Data) + len(m.ID) + len(m.Source) + len(m.Type) + len(m.SpecVersion) + len(m.Subject) +
		len(m.DataContentType) + len(m.PartitionKey) + len(m.TraceParent)
	if !m.Time.IsZero() {
		n += 30
	}
	return n
}

// The writer and the broker agree on the size limit: with
// outbox.WithBrokerLimit(client), a message a few bytes under the writer's
// old 1 MiB limit, over max_payload with its headers, is refused at Add
// naming the server's limit; one that fits max_payload, though over the
// writer's default, is accepted and the relay publishes it.
func TestSizeLimit_WriterRefusesWhatTheServerWouldAndAcceptsWhatItTakes(t *testing.T) {
	eachServer(t, func(t *testing.T, srv *testServer) {
		ctx := context.Background()
		c, _ := connect(t, srv)
		limit := int(c.nc.MaxPayload())
		if limit != 1<<20 {
			t.Skipf("the server's max_payload is %d, not NATS's default 1 MiB", limit)
		}
		topic := testenv.Unique("size.")
		db := sqliteDB(t)
		w, err := outbox.New(sqlite.OutboxStore(db), outbox.WithBrokerLimit(c))
		if err != nil {
			t.Fatal(err)
		}
		add := func(m *handoff.Message) error {
			tx, _ := db.Begin()
			defer tx.Rollback()
			if err := w.Add(ctx, tx, topic, m); err != nil {
				return err
			}
			return tx.Commit()
		}
		tooBig := handoff.NewMessage("/orders", "order.placed", nil)
		tooBig.DataContentType = "application/octet-stream"
		tooBig.Data = []byte(strings.Repeat("x", limit-oldSize(tooBig)-8))
		err = add(tooBig)
		if err == nil || !strings.Contains(err.Error(), "max_payload of "+strconv.Itoa(limit)) || !strings.Contains(err.Error(), "claim-check") {
			t.Fatalf("Add %d bytes (old count) = %v, want a refusal naming max_payload %d and the claim check", oldSize(tooBig), err, limit)
		}

		fits := handoff.NewMessage("/orders", "order.placed", nil)
		fits.DataContentType = "application/octet-stream"
		fits.Data = []byte(strings.Repeat("y", limit-1024))
		if fits.Size() <= handoff.DefaultMaxMessageSize {
			t.Fatalf("test message of Size %d is not over the default limit", fits.Size())
		}
		if err := add(fits); err != nil {
			t.Fatalf("Add of a message the server takes: %v", err)
		}
		ch := sub(t, c, handoff.Subscription{Topic: topic, Group: "g"})
		r, err := relay.New(sqlite.RelayStore(db), c, relay.WithDeadLetters(noLetters{t}))
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(rctx) }()
		defer func() { cancel(); <-done }()
		if d := next(t, ch); d.Message.ID != fits.ID || len(d.Message.Data) != len(fits.Data) {
			t.Fatalf("got %s (%d bytes), want %s", d.Message.ID, len(d.Message.Data), fits.ID)
		} else {
			settle(t, d, 0)
		}
	})
}

// While the server cannot be reached, Publish, Redeliver and Check fail at
// once with an error naming the address and the cause, not a timeout.
func TestNotConnected_ErrorsNameTheAddressAndTheCause(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	nc, err := Connect("nats://"+addr, natsgo.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for name, err := range map[string]error{
		"Publish":   c.Publish(ctx, "orders", msg(1)),
		"Redeliver": c.Redeliver(ctx, "orders", "billing", msg(2)),
		"Check":     c.Check(ctx),
	} {
		if !errors.Is(err, ErrNotConnected) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("%s = %v, want ErrNotConnected naming %s and the refused connection", name, err, addr)
		}
	}
	if ctx.Err() != nil {
		t.Error("the calls waited for the context instead of failing at once")
	}
}
