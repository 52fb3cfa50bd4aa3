package saga_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/saga"
)

// A command whose reply never comes is sent again after its Timeout with
// the same key, then given up: the step may have had its effect, so it is
// compensated with the one before it. The reply that comes late is
// recorded and changes nothing.
func TestSaga_CommandWithoutReplyTimesOutAndIsCompensated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := sqliteMem(t)
		defer b.db.Close()
		w, _ := outbox.New(sqlite.OutboxStore(b.db))
		var undone []string
		undo := func(name string) saga.Action[order] {
			return saga.Local(func(ctx context.Context, tx *sql.Tx, r *saga.Run[order]) error {
				undone = append(undone, name)
				return nil
			})
		}
		def, _ := saga.Define("timeouts", []saga.Step[order]{
			{Name: "create", Action: saga.Local(noop), Compensate: undo("create")},
			{Name: "charge", Action: saga.Command("payments", func(r *saga.Run[order]) (*handoff.Message, error) {
				return handoff.NewMessage("/orders", "payment.charge", []byte(`{}`)), nil
			}, nil), Compensate: undo("charge"), Timeout: 10 * time.Second, Retry: saga.Retry{MaxAttempts: 2}},
		})
		c, _ := saga.New(b.store, saga.WithOutbox(w))
		s, _ := saga.Register(c, def)
		t0 := time.Now()
		id := start(t, b.db, s, order{ID: "o"})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- c.Run(ctx) }()
		var in *saga.Instance
		for range 120 {
			time.Sleep(time.Second)
			if in, _ = c.Get(context.Background(), id); in.Status.Ended() {
				break
			}
		}
		if in.Status != saga.Compensated || strings.Join(undone, ",") != "charge,create" || time.Since(t0) < 20*time.Second {
			t.Fatalf("saga %s after %v, undone %v; want compensated after ≥20s, charge then create", in.Status, time.Since(t0), undone)
		}
		var sent []string
		rows, _ := b.db.Query(`SELECT envelope FROM handoff_outbox ORDER BY id`)
		var first *handoff.Message
		for rows.Next() {
			var env []byte
			rows.Scan(&env)
			m := &handoff.Message{}
			m.UnmarshalJSON(env)
			sent = append(sent, saga.Key(m))
			if first == nil {
				first = m
			}
		}
		rows.Close()
		if len(sent) != 2 || sent[0] != sent[1] || sent[0] != id+"/charge/1" {
			t.Fatalf("commands sent with keys %v; want the same key twice", sent)
		}
		tx, _ := b.db.Begin()
		if err := c.HandleReply(context.Background(), tx, saga.Reply(first, "/payments", "charged", nil, nil)); err != nil {
			t.Fatal(err)
		}
		tx.Commit()
		h, _ := c.History(context.Background(), id)
		if last := h[len(h)-1]; last.Kind != saga.EvReplyLate {
			t.Fatalf("last event %s, want %s", last.Kind, saga.EvReplyLate)
		}
		if after, _ := c.Get(context.Background(), id); after.Status != saga.Compensated {
			t.Fatalf("after the late reply: %s", after.Status)
		}
		cancel()
		<-done
	})
}
