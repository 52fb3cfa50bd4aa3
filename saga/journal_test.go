package saga_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/mysql"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/inbox"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/saga"
)

// The trace journal on each database, without a broker: a message written
// under a correlation id, handled by one group through the inbox (which
// sends the next, its causation set from the context) and dead-lettered by
// another; the one still in the outbox is pending as unpublished, the
// dead-lettered one is pending until its group handles it. Retried handler
// transactions that rolled back leave no record. The purge of ended sagas
// purges old journal rows too.
func TestTrace_JournalOnEachDatabase(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres", "mysql"} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			var db *sql.DB
			var err error
			var store saga.Store
			var ob outbox.Store
			var is inbox.Store[*sql.Tx]
			var ds dlq.Store
			switch kind {
			case "postgres":
				db, err = postgres.Open(ctx, testenv.PostgresURL(t))
				if err == nil {
					err = postgres.Migrate(ctx, db)
				}
				if err == nil {
					store, ob, is, ds = postgres.SagaStore(db), postgres.OutboxStore(db), postgres.InboxStore(db), postgres.DLQStore(db)
				}
			case "mysql":
				db, err = mysql.Open(ctx, testenv.MySQLDSN(t))
				if err == nil {
					err = mysql.Migrate(ctx, db)
				}
				if err == nil {
					store, ob, is, ds = mysql.SagaStore(db), mysql.OutboxStore(db), mysql.InboxStore(db), mysql.DLQStore(db)
				}
			default:
				db, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "journal.db"))
				if err == nil {
					err = sqlite.Migrate(ctx, db)
				}
				if err == nil {
					store, ob, is, ds = sqlite.SagaStore(db), sqlite.OutboxStore(db), sqlite.InboxStore(db), sqlite.DLQStore(db)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			w, _ := outbox.New(ob)
			inTx := func(fn func(tx *sql.Tx) error) {
				t.Helper()
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := fn(tx); err != nil {
					tx.Rollback()
					t.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			placed := handoff.NewMessage("orders", "order.placed", []byte(`{}`))
			inTx(func(tx *sql.Tx) error {
				return w.Add(handoff.ContextWithCorrelation(ctx, "conv-1"), tx, "placed", placed)
			})
			uncorrelated := handoff.NewMessage("orders", "order.other", []byte(`{}`))
			inTx(func(tx *sql.Tx) error { return w.Add(ctx, tx, "placed", uncorrelated) })
			// The relay published placed (its row is gone); payments handles it,
			// failing once first.
			mustExec(t, db, `DELETE FROM handoff_outbox WHERE message_id = '`+placed.ID+`'`)
			in, _ := inbox.New(is, "payments")
			var charged *handoff.Message
			fail := true
			h := in.Handler(func(ctx context.Context, tx *sql.Tx, m *handoff.Message) error {
				if fail {
					fail = false
					return errors.New("try again")
				}
				charged = handoff.NewMessage("payments", "payment.charged", []byte(`{}`))
				return w.Add(ctx, tx, "charged", charged)
			})
			if err := h.Handle(ctx, placed); err == nil {
				t.Fatal("the first attempt should fail")
			}
			if err := h.Handle(ctx, placed); err != nil {
				t.Fatal(err)
			}
			if charged.CorrelationID != "conv-1" || charged.CausationID != placed.ID {
				t.Fatalf("sent in the handler: correlation %q causation %q", charged.CorrelationID, charged.CausationID)
			}
			q, _ := dlq.New(ds)
			if err := q.Add(ctx, &dlq.Letter{Consumer: "mailer", Topic: "placed", Message: placed, Class: dlq.ClassPermanent,
				Errors: []string{"mailer down"}, Attempts: 1, FirstFailure: time.Now(), LastFailure: time.Now()}); err != nil {
				t.Fatal(err)
			}
			story, err := saga.Trace(ctx, "conv-1", store)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range story.Steps {
				got = append(got, s.Kind+" "+s.Service+" "+s.Type+" "+s.Topic)
			}
			want := "sent orders order.placed placed, handled payments order.placed placed, sent payments payment.charged charged, deadlettered mailer order.placed placed"
			if strings.Join(got, ", ") != want {
				t.Fatalf("story:\n%s\nwant:\n%s", strings.Join(got, ", "), want)
			}
			var pending []string
			for _, p := range story.Pending {
				pending = append(pending, p.Kind+" "+p.Type)
			}
			if s := strings.Join(pending, ", "); s != "deadlettered order.placed, unpublished payment.charged" {
				t.Fatalf("pending: %s", s)
			}
			// The dead letter replayed, and handled by its group this time.
			mailer, _ := inbox.New(is, "mailer")
			if err := mailer.Handler(func(context.Context, *sql.Tx, *handoff.Message) error { return nil }).Handle(ctx, placed); err != nil {
				t.Fatal(err)
			}
			if story, err = saga.Trace(ctx, "conv-1", store); err != nil {
				t.Fatal(err)
			}
			if p := story.Pending; len(p) != 1 || p[0].Kind != saga.PendingUnpublished {
				t.Fatalf("pending after the replay: %+v", p)
			}
			if _, err := saga.Trace(ctx, uncorrelated.ID, store); !errors.Is(err, saga.ErrNoTrace) {
				t.Fatalf("an uncorrelated message is journaled: %v", err)
			}
			// Retention: the coordinator's purge takes journal rows older than it.
			mustExec(t, db, `UPDATE handoff_trace SET at = 1`)
			c, _ := saga.New(store, saga.WithRetention(time.Hour))
			if _, err := c.Purge(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := saga.Trace(ctx, "conv-1", store); !errors.Is(err, saga.ErrNoTrace) {
				t.Fatalf("after the purge: %v", err)
			}
		})
	}
}
