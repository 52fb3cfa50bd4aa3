package saga_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/handoffhq/handoff"
	natsadapter "github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/relay"
	"github.com/handoffhq/handoff/saga"
)

// A choreography of three services over NATS JetStream, each with its
// outbox, relay, consumer and inbox on one database: orders places an
// order; payments charges it; inventory reserves the stock (starting a
// local saga in its handler) and reports low stock, which nobody
// consumes; orders confirms, and its mailer dead-letters the confirmation.
// No handler sets a correlation or causation id: they flow through the
// handler's context. saga.Trace then tells the story in order, with who
// acted and what is pending.
func TestTrace_ChoreographyOverNATS(t *testing.T) {
	for _, kind := range []string{"postgres", "sqlite"} {
		t.Run(kind, func(t *testing.T) { traceChoreography(t, kind) })
	}
}

func traceChoreography(t *testing.T, kind string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var db *sql.DB
	var err error
	var store saga.Store
	var obStore outbox.Store
	var rlStore relay.Store
	var inStore inbox.Store[*sql.Tx]
	var dlStore dlq.Store
	if kind == "postgres" {
		db, err = postgres.Open(ctx, testenv.PostgresURL(t))
		if err == nil {
			err = postgres.Migrate(ctx, db)
		}
		store, obStore, rlStore, inStore, dlStore = postgres.SagaStore(db), postgres.OutboxStore(db), postgres.RelayStore(db),
			postgres.InboxStore(db), postgres.DLQStore(db)
	} else {
		db, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "trace.db"))
		if err == nil {
			err = sqlite.Migrate(ctx, db)
		}
		store, obStore, rlStore, inStore, dlStore = sqlite.SagaStore(db), sqlite.OutboxStore(db), sqlite.RelayStore(db),
			sqlite.InboxStore(db), sqlite.DLQStore(db)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	nc, err := natsadapter.Connect(testenv.NATSURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	broker, err := natsadapter.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	w, err := outbox.New(obStore)
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(rlStore, broker, relay.WithWakeups(w.Wakeups()))
	if err != nil {
		t.Fatal(err)
	}
	letters, err := dlq.New(dlStore)
	if err != nil {
		t.Fatal(err)
	}
	coord, err := saga.New(store)
	if err != nil {
		t.Fatal(err)
	}
	reserve, err := saga.Define("reserve", []saga.Step[string]{{Name: "hold", Action: saga.Local(
		func(ctx context.Context, tx *sql.Tx, r *saga.Run[string]) error { return nil })}})
	if err != nil {
		t.Fatal(err)
	}
	reserveSaga, err := saga.Register(coord, reserve)
	if err != nil {
		t.Fatal(err)
	}

	p := testenv.Unique("trace.")
	topic := func(s string) string { return p + "." + s }
	var mu sync.Mutex
	seen := map[string]*handoff.Message{} // type → the message as a handler got it
	done := make(chan struct{}, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	// service runs a consumer of group on topic whose inbox handler sends
	// what next returns (as source group) in the handler's transaction.
	service := func(group, on string, h func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error) {
		in, err := inbox.New(inStore, group)
		if err != nil {
			t.Fatal(err)
		}
		txh := in.Handler(func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
			mu.Lock()
			seen[m.Type] = m.Clone()
			mu.Unlock()
			return h(ctx, tx, m)
		})
		c, err := consumer.New(broker, on, group, txh, letters, consumer.WithMaxAttempts(2),
			consumer.WithObserver(observer(func(o consumer.Outcome) {
				if o.Result == consumer.DeadLettered {
					done <- struct{}{}
				}
			})))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); c.Run(ctx) }()
	}
	send := func(ctx context.Context, tx *sql.Tx, source, typ, to string) error {
		return w.Add(ctx, tx, topic(to), handoff.NewMessage(source, typ, []byte(`{"order":"o-1"}`)))
	}
	service("payments", topic("placed"), func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
		return send(ctx, tx, "payments", "payment.charged", "charged")
	})
	service("inventory", topic("charged"), func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
		if _, err := reserveSaga.Start(ctx, tx, "o-1"); err != nil {
			return err
		}
		if err := send(ctx, tx, "inventory", "stock.reserved", "reserved"); err != nil {
			return err
		}
		return send(ctx, tx, "inventory", "stock.low", "low")
	})
	service("orders", topic("reserved"), func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
		return send(ctx, tx, "orders", "order.confirmed", "confirmed")
	})
	service("orders", topic("confirmed"), func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
		return handoff.Permanent(errors.New("mailer down"))
	})
	wg.Add(1)
	go func() { defer wg.Done(); r.Run(ctx) }()

	// The orders service takes the order: the conversation starts here.
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	corr := testenv.Unique("order-")
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	placed := handoff.NewMessage("orders", "order.placed", []byte(`{"order":"o-1"}`))
	placed.TraceParent = "00-" + traceID + "-00f067aa0ba902b7-01"
	if err := w.Add(handoff.ContextWithCorrelation(ctx, corr), tx, topic("placed"), placed); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
	}

	mu.Lock()
	for typ, cause := range map[string]string{"order.placed": "", "payment.charged": "order.placed",
		"stock.reserved": "payment.charged", "order.confirmed": "stock.reserved"} {
		m := seen[typ]
		if m == nil {
			t.Fatalf("%s was not handled", typ)
		}
		if m.CorrelationID != corr {
			t.Errorf("%s: correlation id %q, want %q", typ, m.CorrelationID, corr)
		}
		if want := ""; cause != "" {
			want = seen[cause].ID
			if m.CausationID != want {
				t.Errorf("%s: causation id %q, want the id of %s (%s)", typ, m.CausationID, cause, want)
			}
		}
		if !strings.Contains(m.TraceParent, traceID) {
			t.Errorf("%s: traceparent %q is not in trace %s", typ, m.TraceParent, traceID)
		}
	}
	mu.Unlock()

	story, err := saga.Trace(ctx, corr, store)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range story.Steps {
		what := s.Type
		if s.SagaID != "" {
			what = s.Step
		}
		got = append(got, strings.TrimSpace(fmt.Sprintf("%s %s %s", s.Kind, s.Service, what)))
	}
	want := []string{
		"sent orders order.placed",
		"handled payments order.placed",
		"sent payments payment.charged",
		"handled inventory payment.charged",
		"saga.started reserve",
		"saga.step.done reserve hold",
		"saga.completed reserve",
		"sent inventory stock.reserved",
		"sent inventory stock.low",
		"handled orders stock.reserved",
		"sent orders order.confirmed",
		"deadlettered orders order.confirmed",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("story:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := strings.Join(story.Services, " "); s != "orders payments inventory reserve" {
		t.Errorf("services %q", s)
	}
	var pending []string
	for _, p := range story.Pending {
		pending = append(pending, p.Kind+" "+p.Type)
	}
	// stock.low is published and not handled, or still in the outbox if
	// the relay has not deleted its row yet.
	if s := strings.Join(pending, ", "); s != "unhandled stock.low, deadlettered order.confirmed" &&
		s != "unpublished stock.low, deadlettered order.confirmed" {
		t.Errorf("pending: %s", s)
	}
	for _, s := range story.Steps {
		if s.Kind == saga.TraceDeadLettered && !strings.Contains(s.Error, "mailer down") {
			t.Errorf("dead letter without its error: %+v", s)
		}
		if s.Kind == saga.TraceHandled && s.Topic == "" {
			t.Errorf("handled step without its topic: %+v", s)
		}
	}
	if _, err := saga.Trace(ctx, "no-such-"+corr, store); !errors.Is(err, saga.ErrNoTrace) {
		t.Errorf("unknown correlation id: %v", err)
	}

	// With the relay stopped, a message sent now stays in the outbox.
	cancel()
	wg.Wait()
	ctx = context.Background()
	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := send(handoff.ContextWithCorrelation(ctx, corr), tx, "orders", "order.cancelled", "cancelled"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	story, err = saga.Trace(ctx, corr, store)
	if err != nil {
		t.Fatal(err)
	}
	if p := story.Pending[len(story.Pending)-1]; p.Kind != saga.PendingUnpublished || p.Type != "order.cancelled" {
		t.Errorf("last pending %+v, want the unpublished order.cancelled", p)
	}
}

type observer func(o consumer.Outcome)

func (f observer) Observe(o consumer.Outcome) { f(o) }
