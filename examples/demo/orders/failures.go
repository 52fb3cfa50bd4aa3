package orders

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/outbox"
)

// failures sends, once per database (when the consumer has no dead letters
// yet), three events the consumer cannot handle, so that right after start
// `handoff dlq list` shows letters with their classes:
//
//   - invalid: a message that is not a valid CloudEvent (no source), sent
//     straight to NATS as a producer outside handoff might;
//   - schema: an order whose total breaks the registered schema, published
//     without the outbox (whose validator would have refused it);
//   - permanent: an order of a blocked customer, through the outbox, which
//     the handler refuses for good.
//
// The README walks through fixing and replaying the last one.
func (f *Flow) failures(ctx context.Context, w *outbox.Writer) error {
	broker, log := f.cfg.Broker, f.cfg.Logger
	had, err := f.cfg.DeadLetters.List(ctx, dlq.Filter{Consumer: Group, Limit: 1})
	if err != nil {
		return err
	}
	if len(had) > 0 {
		close(f.settled)
		return nil
	}
	if err := broker.Provision(ctx, handoff.Subscription{Topic: Topic, Group: Group}); err != nil {
		return err
	}
	js, err := jetstream.New(f.cfg.NATS)
	if err != nil {
		return err
	}
	id := handoff.NewID()
	raw := &natsgo.Msg{Subject: Topic, Data: []byte(`{"order":"o-invalid"}`), Header: natsgo.Header{
		"ce-id": {id}, "ce-specversion": {"1.0"}, "ce-type": {"demo.order.placed"},
		"content-type": {"application/json"}, jetstream.MsgIDHeader: {id},
	}}
	if _, err := js.PublishMsg(ctx, raw); err != nil {
		return fmt.Errorf("publish an invalid event: %w", err)
	}
	stamp := time.Now().Unix()
	bad, _ := json.Marshal(Order{Order: fmt.Sprintf("o-%d-schema", stamp), Customer: "c-1", Total: -5})
	m := handoff.NewMessage("/demo/orders", "demo.order.placed", bad)
	m.PartitionKey = "c-1"
	if err := broker.Publish(ctx, Topic, m); err != nil {
		return fmt.Errorf("publish an event that breaks the schema: %w", err)
	}
	blocked, _ := json.Marshal(Order{Order: fmt.Sprintf("o-%d-blocked", stamp), Customer: Blocked, Total: 12})
	m = handoff.NewMessage("/demo/orders", "demo.order.placed", blocked)
	m.PartitionKey = Blocked
	// The only write of the running flow whose error would stop it: it
	// waits for a busy database (write).
	if err := f.write(ctx, func(tx *sql.Tx) error { return w.Add(ctx, tx, Topic, m) }); err != nil || ctx.Err() != nil {
		return err
	}
	log.Info("demo: sent three events the consumer cannot handle; see them with: go run ./cmd/handoff dlq list")
	// A bounded run stops once the consumer has dead-lettered all three
	// (a run that stopped after its orders alone could leave one of them
	// in flight).
	for {
		letters, err := f.cfg.DeadLetters.List(ctx, dlq.Filter{Consumer: Group, Limit: 3})
		if err != nil && ctx.Err() == nil {
			return err
		}
		if len(letters) >= 3 {
			close(f.settled)
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}
