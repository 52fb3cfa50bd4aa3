package saga_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/memory"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/relay"
	"github.com/handoffhq/handoff/saga"
)

// pgq rewrites ? placeholders as $n for PostgreSQL.
func pgq(b backend, q string) string {
	if b.name != "postgres" {
		return q
	}
	var out strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			out.WriteString("$" + string(rune('0'+n)))
			continue
		}
		out.WriteRune(r)
	}
	return out.String()
}

// The order saga (the package example) on each database, through outbox,
// relay, broker, consumer and inbox; then a reply delivered again, and a
// reply to a step the saga has left, change nothing.
func TestOrderSaga_CompletesOrRefundsAndCancels(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			mustExec(t, b.db, `CREATE TABLE orders (id TEXT PRIMARY KEY, status TEXT NOT NULL)`)
			mustExec(t, b.db, `CREATE TABLE payments (key TEXT PRIMARY KEY, order_id TEXT NOT NULL, amount INTEGER NOT NULL)`)
			var ostore outbox.Store
			var rstore relay.Store
			var istore inbox.Store[*sql.Tx]
			if b.name == "postgres" {
				ostore, rstore, istore = postgres.OutboxStore(b.db), postgres.RelayStore(b.db), postgres.InboxStore(b.db)
			} else {
				ostore, rstore, istore = sqlite.OutboxStore(b.db), sqlite.RelayStore(b.db), sqlite.InboxStore(b.db)
			}
			broker, _ := memory.NewBroker()
			w, _ := outbox.New(ostore)
			r, _ := relay.New(rstore, broker, relay.WithPollInterval(5*time.Millisecond, 50*time.Millisecond))
			go r.Run(ctx)
			dead, _ := dlq.New(memory.NewDLQStore())
			serve := func(topic string, h inbox.TxHandler[*sql.Tx]) {
				in, _ := inbox.New(istore, topic)
				c, err := consumer.New(broker, topic, topic, in.Handler(h), dead)
				if err != nil {
					t.Fatal(err)
				}
				go c.Run(ctx)
			}
			var mu sync.Mutex
			charges := 0
			serve("payments", func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
				var o Order
				json.Unmarshal(m.Data, &o)
				amount := o.Amount
				if m.Type == "payment.refund" {
					amount = -amount
				} else {
					mu.Lock()
					charges++
					mu.Unlock()
				}
				if m.CorrelationID != "corr-"+o.ID || !strings.HasPrefix(saga.Key(m), "order-"+o.ID+"/charge/") {
					t.Errorf("command %s: correlation %q key %q", m.Type, m.CorrelationID, saga.Key(m))
				}
				if _, err := tx.ExecContext(ctx, pgq(b, `INSERT INTO payments (key, order_id, amount) VALUES (?, ?, ?)`), saga.Key(m), o.ID, amount); err != nil {
					return err
				}
				return w.Add(ctx, tx, "saga-replies", saga.Reply(m, "/payments", m.Type+".done", []byte(`"ch-`+o.ID+`"`), nil))
			})
			serve("inventory", func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
				var o Order
				json.Unmarshal(m.Data, &o)
				var failure error
				if o.SKU == "rare" {
					failure = errors.New("out of stock")
				}
				return w.Add(ctx, tx, "saga-replies", saga.Reply(m, "/inventory", "stock.reserved", nil, failure))
			})
			coord, _ := saga.New(b.store, saga.WithOutbox(w), saga.WithPollInterval(20*time.Millisecond))
			def, err := orderSagaFor(b)
			if err != nil {
				t.Fatal(err)
			}
			orders, err := saga.Register(coord, def)
			if err != nil {
				t.Fatal(err)
			}
			var replies []*handoff.Message
			serve("saga-replies", func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
				mu.Lock()
				replies = append(replies, m)
				mu.Unlock()
				return coord.HandleReply(ctx, tx, m)
			})
			go coord.Run(ctx)
			for _, o := range []Order{{ID: "o-1", SKU: "book", Amount: 30}, {ID: "o-2", SKU: "rare", Amount: 99}} {
				start(t, b.db, orders, o, saga.WithID("order-"+o.ID), saga.WithCorrelation("corr-"+o.ID))
			}
			want := map[string][3]string{"o-1": {"completed", "confirmed", "30"}, "o-2": {"compensated", "cancelled", "0"}}
			for id, w := range want {
				in := waitEnded(ctx, coord, "order-"+id)
				var status, paid string
				b.db.QueryRow(pgq(b, `SELECT status FROM orders WHERE id = ?`), id).Scan(&status)
				b.db.QueryRow(pgq(b, `SELECT CAST(COALESCE(SUM(amount), 0) AS TEXT) FROM payments WHERE order_id = ?`), id).Scan(&paid)
				if string(in.Status) != w[0] || status != w[1] || paid != w[2] {
					t.Errorf("%s: saga %s, order %s, paid %s; want %v", id, in.Status, status, paid, w)
				}
				var d Order
				json.Unmarshal(in.Data, &d)
				if d.Charge != "ch-"+id {
					t.Errorf("%s: data %s: the charge reply's change is missing", id, in.Data)
				}
			}
			// The orchestration's story: the saga's transitions, its commands,
			// the services that handled them and the replies, in order.
			story, err := coord.Trace(ctx, "corr-o-1")
			if err != nil {
				t.Fatal(err)
			}
			var steps []string
			for _, st := range story.Steps {
				steps = append(steps, st.Kind+":"+st.Service+":"+st.Type+st.Step)
			}
			wantStory := []string{"saga.started:order:", "saga.step.done:order:create", "saga.command.sent:order:charge",
				"sent:/orders:payment.charge", "handled:payments:payment.charge", "sent:/payments:payment.charge.done",
				"handled:saga-replies:payment.charge.done", "saga.step.done:order:charge", "saga.command.sent:order:reserve",
				"sent:/orders:stock.reserve", "handled:inventory:stock.reserve", "sent:/inventory:stock.reserved",
				"handled:saga-replies:stock.reserved", "saga.step.done:order:reserve", "saga.step.done:order:confirm",
				"saga.completed:order:"}
			if got := strings.Join(steps, " "); got != strings.Join(wantStory, " ") {
				t.Errorf("story of corr-o-1:\n%s\nwant:\n%s", strings.Join(steps, "\n"), strings.Join(wantStory, "\n"))
			}
			if len(story.Pending) != 0 {
				t.Errorf("pending after the saga completed: %+v", story.Pending)
			}
			mu.Lock()
			if charges != 2 {
				t.Errorf("charges = %d, want 2", charges)
			}
			mu.Unlock()
			h, _ := b.store.History(ctx, "order-o-2")
			got := strings.Join(kinds(h), " ")
			for _, k := range []string{"command.sent:charge", "step.gaveup:reserve", "compensation.sent:charge", "compensation.done:charge", "compensation.done:create", "compensated:"} {
				if !strings.Contains(got, k) {
					t.Errorf("history of order-o-2 lacks %s: %s", k, got)
				}
			}
			// A reply applied again (the inbox would drop a duplicate; here
			// it goes to the coordinator straight) is recognised as late.
			before, _ := coord.Get(ctx, "order-o-1")
			tx, _ := b.db.Begin()
			var first *handoff.Message
			mu.Lock()
			for _, m := range replies {
				if m.Extensions[saga.ExtSagaID] == "order-o-1" && first == nil {
					first = m
				}
			}
			mu.Unlock()
			if err := coord.HandleReply(ctx, tx, first); err != nil {
				t.Fatal(err)
			}
			tx.Commit()
			after, _ := coord.Get(ctx, "order-o-1")
			h, _ = b.store.History(ctx, "order-o-1")
			if after.Status != before.Status || string(after.Data) != string(before.Data) || h[len(h)-1].Kind != saga.EvReplyLate {
				t.Errorf("late reply changed the saga: %s %s, last event %s", after.Status, after.Data, h[len(h)-1].Kind)
			}
			if err := coord.HandleReply(ctx, nil, handoff.NewMessage("/x", "y", nil)); !handoff.IsPermanent(err) || !errors.Is(err, saga.ErrNotReply) {
				t.Errorf("a message that is no reply: %v", err)
			}
		})
	}
}

// orderSagaFor is OrderSaga with the placeholders of b's database.
func orderSagaFor(b backend) (*saga.Definition[Order], error) {
	return orderSaga(func(q string) string { return pgq(b, q) })
}
