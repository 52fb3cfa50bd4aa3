package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	natsadapter "github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/natsserver"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/outbox"
)

func embeddedNATS(t *testing.T) (url string, client *natsadapter.Client) {
	t.Helper()
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
	c, err := natsadapter.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return ns.URL(), c
}

// receive subscribes to topic as group "test" and returns the first message it gets.
func receive(t *testing.T, c *natsadapter.Client, topic string) *handoff.Message {
	t.Helper()
	return receiveAs(t, c, topic, "test")
}

// receiveAs subscribes to topic as group and returns the first message it gets.
func receiveAs(t *testing.T, c *natsadapter.Client, topic, group string) *handoff.Message {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan *handoff.Message, 1)
	go c.Subscribe(ctx, handoff.Subscription{Topic: topic, Group: group}, func(d *handoff.Delivery) {
		d.Settler.Ack(ctx)
		select {
		case got <- d.Message:
		default:
		}
	})
	select {
	case m := <-got:
		return m
	case <-time.After(30 * time.Second):
		t.Fatalf("nothing arrived on %s", topic)
		return nil
	}
}

// handoff relay publishes what an outbox writer committed, and stops cleanly.
func TestRelayCmd_PublishesCommittedEvents(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "svc.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlite.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	w, _ := outbox.New(sqlite.OutboxStore(db))
	tx, _ := db.Begin()
	m := handoff.NewMessage("/orders", "order.placed", []byte(`{"order":"o-1"}`))
	if err := w.Add(ctx, tx, "orders", m); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	url, client := embeddedNATS(t)

	rctx, stop := context.WithCancel(ctx)
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(rctx, []string{"relay", "--db", path, "--broker", url, "--poll-max", "50ms"}, nil, &out, &errb)
	}()
	if got := receive(t, client, "orders"); got.ID != m.ID {
		t.Fatalf("received %s, want %s", got.ID, m.ID)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("relay returned %v on cancel; stderr %s", err, errb.String())
	}
	if !strings.Contains(out.String(), "relay relay-") {
		t.Fatalf("relay did not announce itself: %q", out.String())
	}
}

// handoff relay --mode wal publishes what a WAL-mode writer committed, from
// the replication slot it names.
func TestRelayCmd_WALModePublishesFromTheSlot(t *testing.T) {
	ctx := context.Background()
	dsn, _ := testenv.LogicalPostgresURL(t)
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	slot := testenv.Unique("cli_")
	if err := postgres.SetupWAL(ctx, db, slot); err != nil {
		t.Fatal(err)
	}
	defer db.Exec("SELECT pg_drop_replication_slot($1)", slot)
	w, _ := outbox.New(postgres.OutboxStore(db, postgres.WithWAL(postgres.WALMessages)))
	tx, _ := db.Begin()
	m := handoff.NewMessage("/orders", "order.placed", []byte(`{"order":"o-1"}`))
	if err := w.Add(ctx, tx, "orders", m); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	url, client := embeddedNATS(t)
	rctx, stop := context.WithCancel(ctx)
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(rctx, []string{"relay", "--db", dsn, "--broker", url, "--mode", "wal", "--slot", slot}, nil, &out, &errb)
	}()
	if got := receive(t, client, "orders"); got.ID != m.ID {
		t.Fatalf("received %s, want %s", got.ID, m.ID)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("relay returned %v on cancel; stderr %s", err, errb.String())
	}
	if !strings.Contains(out.String(), "relay (wal, slot "+slot+")") {
		t.Fatalf("relay did not announce its mode and slot: %q", out.String())
	}
}

func TestRelayCmd_WALModeRefusesOtherDatabasesAndModes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"relay", "--db", "svc.db", "--broker", "nats://127.0.0.1:1", "--mode", "wal"}, "--mode wal needs a PostgreSQL --db"},
		{[]string{"relay", "--db", "svc.db", "--broker", "nats://127.0.0.1:1", "--mode", "cdc"}, `--mode "cdc": must be table or wal`},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), tc.args, nil, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to contain %q", tc.args, err, tc.want)
		}
	}
}

func TestRelayCmd_RefusesMissingFlags(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"relay", "--broker", "nats://127.0.0.1:1"}, nil, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "--db is required") {
		t.Fatalf("err = %v, want it to name --db", err)
	}
}

// handoff dlq lists, shows, replays once and purges dead letters.
func TestDLQCmd_ListShowReplayPurge(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "svc.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlite.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	q, _ := dlq.New(sqlite.DLQStore(db))
	m := handoff.NewMessage("/orders", "order.placed", []byte(`{"order":"o-9"}`))
	now := time.Now()
	if err := q.Add(ctx, &dlq.Letter{Consumer: "billing", Topic: "orders", Message: m, Class: dlq.ClassPermanent,
		Errors: []string{"card declined"}, Attempts: 1, FirstFailure: now, LastFailure: now}); err != nil {
		t.Fatal(err)
	}
	dlqRun := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, append([]string{"dlq"}, append(args, "--db", path)...), nil, &out, &errb)
		return out.String(), err
	}
	out, err := dlqRun("list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var ls []*dlq.Letter
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 || ls[0].Message.ID != m.ID {
		t.Fatalf("list --json = %s (%v)", out, err)
	}
	id := ls[0].ID

	var o bytes.Buffer
	if err := run(ctx, []string{"dlq", "show", "--db", path, id}, nil, &o, &o); err != nil || !strings.Contains(o.String(), "card declined") {
		t.Fatalf("show: %v\n%s", err, o.String())
	}

	url, client := embeddedNATS(t)
	o.Reset()
	if err := run(ctx, []string{"dlq", "replay", "--db", path, "--broker", url, id}, nil, &o, &o); err != nil {
		t.Fatalf("replay: %v\n%s", err, o.String())
	}
	if got := receiveAs(t, client, "orders", "billing"); got.ID != m.ID || got.Extensions["replayof"] != id {
		t.Fatalf("replayed %s with extensions %v, want %s with replayof=%s", got.ID, got.Extensions, m.ID, id)
	}
	o.Reset()
	if err := run(ctx, []string{"dlq", "replay", "--db", path, "--broker", url, id}, nil, &o, &o); err == nil {
		t.Fatal("replaying the same letter twice succeeded")
	}

	if _, err := dlqRun("purge"); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("purge without --yes: %v", err)
	}
	if out, err := dlqRun("purge", "--yes"); err != nil || !strings.Contains(out, "purged 1") {
		t.Fatalf("purge --yes: %q, %v", out, err)
	}
}
