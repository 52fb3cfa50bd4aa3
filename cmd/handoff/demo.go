package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/handoffhq/handoff"
	natsadapter "github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/outbox"
)

const (
	demoGroup = "demo-shipping"
	// demoBlocked is a customer the demo's shipping handler refuses for
	// good: its order is dead-lettered (class "permanent") until an
	// operator fixes the order and replays it.
	demoBlocked = "c-blocked"
)

// demoFailures sends, once per data directory (when the demo consumer has
// no dead letters yet), three events the consumer cannot handle, so that
// right after start `handoff dlq list` shows letters with their classes:
//
//   - invalid: a message that is not a valid CloudEvent (no source), sent
//     straight to NATS as a producer outside handoff might;
//   - schema: an order whose total breaks the registered schema, published
//     without the outbox (whose validator would have refused it);
//   - permanent: an order of a blocked customer, through the outbox, which
//     the handler refuses for good.
//
// The README walks through fixing and replaying the last one.
func demoFailures(ctx context.Context, nc *natsgo.Conn, broker *natsadapter.Client, db *sql.DB, w *outbox.Writer, dead *dlq.Queue, log *slog.Logger) error {
	had, err := dead.List(ctx, dlq.Filter{Consumer: demoGroup, Limit: 1})
	if err != nil || len(had) > 0 {
		return err
	}
	if err := broker.Provision(ctx, handoff.Subscription{Topic: demoTopic, Group: demoGroup}); err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	id := handoff.NewID()
	raw := &natsgo.Msg{Subject: demoTopic, Data: []byte(`{"order":"o-invalid"}`), Header: natsgo.Header{
		"ce-id": {id}, "ce-specversion": {"1.0"}, "ce-type": {"demo.order.placed"},
		"content-type": {"application/json"}, jetstream.MsgIDHeader: {id},
	}}
	if _, err := js.PublishMsg(ctx, raw); err != nil {
		return fmt.Errorf("publish an invalid event: %w", err)
	}
	stamp := time.Now().Unix()
	bad, _ := json.Marshal(demoOrder{Order: fmt.Sprintf("o-%d-schema", stamp), Customer: "c-1", Total: -5})
	m := handoff.NewMessage("/demo/orders", "demo.order.placed", bad)
	m.PartitionKey = "c-1"
	if err := broker.Publish(ctx, demoTopic, m); err != nil {
		return fmt.Errorf("publish an event that breaks the schema: %w", err)
	}
	blocked, _ := json.Marshal(demoOrder{Order: fmt.Sprintf("o-%d-blocked", stamp), Customer: demoBlocked, Total: 12})
	m = handoff.NewMessage("/demo/orders", "demo.order.placed", blocked)
	m.PartitionKey = demoBlocked
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := w.Add(ctx, tx, demoTopic, m); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	log.Info("demo: sent three events the consumer cannot handle; see them with: go run ./cmd/handoff dlq list")
	return nil
}
