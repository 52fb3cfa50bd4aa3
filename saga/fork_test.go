package saga_test

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/saga"
)

// forkSaga: create, then in parallel charge (a command to payments),
// reserve (a command to inventory) and pack (local), then confirm. Each
// local effect and each compensation is a row in effects.
func forkSaga(t testing.TB) *saga.Definition[order] {
	t.Helper()
	record := func(what string) saga.Action[order] {
		return saga.Local(func(ctx context.Context, tx *sql.Tx, r *saga.Run[order]) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO effects (saga, what) VALUES ('`+r.SagaID+`', '`+what+`')`)
			return err
		})
	}
	command := func(topic string) saga.Action[order] {
		return saga.Command(topic, func(r *saga.Run[order]) (*handoff.Message, error) {
			return handoff.NewMessage("/orders", topic+".do", []byte(`{}`)), nil
		}, nil)
	}
	def, err := saga.Define("fulfil", []saga.Step[order]{
		{Name: "create", Action: record("create"), Compensate: record("undo create")},
		saga.Parallel("fork",
			saga.Step[order]{Name: "charge", Action: command("payments"), Compensate: record("undo charge")},
			saga.Step[order]{Name: "reserve", Action: command("inventory"), Compensate: record("undo reserve")},
			saga.Step[order]{Name: "pack", Action: record("pack"), Compensate: record("undo pack")},
		),
		{Name: "confirm", Action: record("confirm")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return def
}

// commands returns the saga commands in the outbox, by topic.
func commands(t testing.TB, db *sql.DB) map[string]*handoff.Message {
	t.Helper()
	rows, err := db.Query(`SELECT topic, envelope FROM handoff_outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]*handoff.Message{}
	for rows.Next() {
		var topic string
		var env []byte
		rows.Scan(&topic, &env)
		m := &handoff.Message{}
		if err := m.UnmarshalJSON(env); err != nil {
			t.Fatal(err)
		}
		out[topic] = m
	}
	return out
}

func reply(t testing.TB, db *sql.DB, c *saga.Coordinator, cmd *handoff.Message, failure error) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.HandleReply(context.Background(), tx, saga.Reply(cmd, "/x", "done", nil, failure)); err != nil {
		tx.Rollback()
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// The branches of a fork start together (both commands are sent in the
// starter's transaction, the local branch runs there), and the saga goes
// on past the fork only when every branch is done. When one branch fails,
// the branches that may have had an effect (the local one done, the
// command still waiting for its reply) are compensated, then the steps
// before the fork; the branch that failed is not.
func TestSaga_ParallelStepJoinsOrCompensatesItsBranches(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			effectsTable(t, b)
			var ostore outbox.Store = sqlite.OutboxStore(b.db)
			if b.name == "postgres" {
				ostore = postgres.OutboxStore(b.db)
			}
			w, _ := outbox.New(ostore)
			c, err := saga.New(b.store, saga.WithOutbox(w), saga.WithPollInterval(10*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			s, err := saga.Register(c, forkSaga(t))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var wg sync.WaitGroup
			defer wg.Wait()
			defer cancel()
			wg.Add(1)
			go func() { defer wg.Done(); c.Run(ctx) }()

			// Joined: both replies, in either order.
			id := start(t, b.db, s, order{ID: "o-1"}, saga.WithID("ok"))
			cmds := commands(t, b.db)
			if len(cmds) != 2 || cmds["payments"] == nil || cmds["inventory"] == nil {
				t.Fatalf("commands sent at the start: %v; want payments and inventory together", cmds)
			}
			if got := strings.Join(effects(t, b.db, id), ","); got != "create,pack" {
				t.Fatalf("effects at the start %s; want create,pack", got)
			}
			reply(t, b.db, c, cmds["inventory"], nil)
			in, _ := c.Get(ctx, id)
			if in.Status != saga.Running || in.Steps[1].State != saga.StepWaiting || in.Steps[2].State != saga.StepDone {
				t.Fatalf("after one reply: %s %+v", in.Status, in.Steps)
			}
			reply(t, b.db, c, cmds["payments"], nil)
			in = waitEnded(ctx, c, id)
			if got := strings.Join(effects(t, b.db, id), ","); in.Status != saga.Completed || got != "create,pack,confirm" {
				t.Fatalf("saga %s with effects %s; want completed with create,pack,confirm", in.Status, got)
			}

			// One branch fails while another waits: compensated.
			mustExec(t, b.db, `DELETE FROM handoff_outbox`)
			id = start(t, b.db, s, order{ID: "o-2"}, saga.WithID("fails"))
			cmds = commands(t, b.db)
			reply(t, b.db, c, cmds["inventory"], errOutOfStock)
			in = waitEnded(ctx, c, id)
			if got := strings.Join(effects(t, b.db, id), ","); in.Status != saga.Compensated || got != "create,pack,undo pack,undo charge,undo create" {
				t.Fatalf("saga %s with effects %s; want compensated: create,pack,undo pack,undo charge,undo create", in.Status, got)
			}
			// The reply to the branch given up comes late: recorded, ignored.
			reply(t, b.db, c, cmds["payments"], nil)
			h, _ := c.History(ctx, id)
			if last := h[len(h)-1]; last.Kind != saga.EvReplyLate || last.Step != "charge" {
				t.Fatalf("last event %s %s; want a late reply to charge", last.Kind, last.Step)
			}
		})
	}
}

var errOutOfStock = handoff.Permanent(errString("out of stock"))

type errString string

func (e errString) Error() string { return string(e) }

// A fork of two remote calls survives its coordinator stopping between
// the branches: one branch's outcome is recorded, the other's call is cut
// off; a second coordinator takes the saga over after the lease and runs
// only the unfinished branch again, with the same idempotency key, and
// the saga completes. Nothing is compensated and no effect happens twice.
func TestSaga_ParallelStepSurvivesACoordinatorStoppedBetweenBranches(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			effectsTable(t, b)
			var mu sync.Mutex
			calls := map[string][]string{} // branch → keys of its calls
			blockB := make(chan struct{})  // closed: branch b's calls return
			bStarted := make(chan struct{}, 1)
			aDone := make(chan struct{}, 1)
			call := func(name string) saga.Action[order] {
				return saga.Call(func(ctx context.Context, r *saga.Run[order]) error {
					mu.Lock()
					calls[name] = append(calls[name], r.Key)
					first := len(calls[name]) == 1
					mu.Unlock()
					if name == "b" && first {
						bStarted <- struct{}{}
						select { // the first coordinator stops here
						case <-blockB:
						case <-ctx.Done():
							return ctx.Err()
						}
					}
					if name == "a" {
						aDone <- struct{}{}
					}
					return nil
				})
			}
			undo := saga.Local(func(ctx context.Context, tx *sql.Tx, r *saga.Run[order]) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO effects (saga, what) VALUES ('`+r.SagaID+`', 'undo `+r.Step+`')`)
				return err
			})
			def, err := saga.Define("calls", []saga.Step[order]{
				saga.Parallel("both",
					saga.Step[order]{Name: "a", Action: call("a"), Compensate: undo, Timeout: time.Minute},
					saga.Step[order]{Name: "b", Action: call("b"), Compensate: undo, Timeout: time.Minute}),
				{Name: "after", Action: saga.Local(func(ctx context.Context, tx *sql.Tx, r *saga.Run[order]) error {
					_, err := tx.ExecContext(ctx, `INSERT INTO effects (saga, what) VALUES ('`+r.SagaID+`', 'after')`)
					return err
				})},
			})
			if err != nil {
				t.Fatal(err)
			}
			var s *saga.Saga[order]
			coordinator := func(owner string) *saga.Coordinator {
				c, err := saga.New(b.store, saga.WithOwner(owner), saga.WithLease(time.Second), saga.WithPollInterval(10*time.Millisecond))
				if err != nil {
					t.Fatal(err)
				}
				if s, err = saga.Register(c, def); err != nil {
					t.Fatal(err)
				}
				return c
			}
			coordinator("starter")
			c1 := coordinator("c1")
			id := start(t, b.db, s, order{ID: "o"}, saga.WithID("fork-crash"))
			ctx1, stop1 := context.WithCancel(context.Background())
			done1 := make(chan struct{})
			go func() { c1.Run(ctx1); close(done1) }()
			<-aDone
			<-bStarted
			// a's outcome commits on its own; wait until it has, then stop c1
			// while b's call is in flight.
			for {
				in, _ := c1.Get(context.Background(), id)
				if in.Steps[0].State == saga.StepDone {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			stop1()
			<-done1
			close(blockB)
			in, _ := c1.Get(context.Background(), id)
			if in.Status != saga.Running || in.Steps[0].State != saga.StepDone || in.Steps[1].State != saga.StepRunning {
				t.Fatalf("after the stop: %s %+v", in.Status, in.Steps)
			}

			c2 := coordinator("c2")
			ctx2, stop2 := context.WithTimeout(context.Background(), time.Minute)
			defer stop2()
			done2 := make(chan struct{})
			go func() { c2.Run(ctx2); close(done2) }()
			in = waitEnded(ctx2, c2, id)
			stop2()
			<-done2
			mu.Lock()
			defer mu.Unlock()
			if got := strings.Join(effects(t, b.db, id), ","); in.Status != saga.Completed || got != "after" {
				t.Fatalf("saga %s, effects %s; want completed with only after", in.Status, got)
			}
			if len(calls["a"]) != 1 || len(calls["b"]) != 2 || calls["b"][0] != calls["b"][1] {
				t.Fatalf("calls %v: want a once, b twice with one key", calls)
			}
			h, _ := c2.History(context.Background(), id)
			owners := map[string]bool{}
			for _, e := range h {
				owners[e.Owner] = true
			}
			if !owners["c1"] || !owners["c2"] {
				t.Fatalf("history by %v; want both coordinators", owners)
			}
		})
	}
}

// A Parallel step needs two branches or more, none parallel itself, with
// names unique across the saga.
func TestDefine_ParallelRules(t *testing.T) {
	step := func(n string) saga.Step[order] { return saga.Step[order]{Name: n, Action: saga.Local(noop)} }
	for _, tc := range []struct {
		steps []saga.Step[order]
		want  string
	}{
		{[]saga.Step[order]{saga.Parallel("p", step("a"))}, "step p: Parallel needs at least two branches"},
		{[]saga.Step[order]{saga.Parallel("p", step("a"), saga.Parallel("q", step("b"), step("c")))}, "parallel steps do not nest"},
		{[]saga.Step[order]{step("a"), saga.Parallel("p", step("a"), step("b"))}, `Name "a" is used twice`},
		{[]saga.Step[order]{saga.Parallel("p", step("a"), step("b")), step("p")}, `Name "p" is used twice`},
	} {
		if _, err := saga.Define("x", tc.steps); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Define: %v; want an error with %q", err, tc.want)
		}
	}
	lin, _ := saga.Define("x", []saga.Step[order]{step("a"), step("b"), step("c")})
	par, _ := saga.Define("x", []saga.Step[order]{step("a"), saga.Parallel("p", step("b"), step("c"))})
	if lin.Version() == par.Version() {
		t.Errorf("a fork of b and c has the version of b then c: %s", lin.Version())
	}
	if got := strings.Join(par.Steps(), ","); got != "a,b,c" {
		t.Errorf("Steps() = %s", got)
	}
}
