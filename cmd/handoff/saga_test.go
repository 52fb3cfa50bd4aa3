package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/saga"
)

// sagaRun runs handoff with args and returns its stdout, stderr and error.
func sagaRun(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, nil, &out, &errb)
	return out.String(), errb.String(), err
}

// operatedStuckSagas is a service's coordinator with a checkout saga
// whose compensation of "charge" keeps failing until fixed: three sagas
// started on store are stuck when it returns.
func operatedStuckSagas(t *testing.T, db *sql.DB, store saga.Store) (svc *saga.Coordinator, fixed *atomic.Bool, ids []string) {
	t.Helper()
	fixed = new(atomic.Bool)
	def, err := saga.Define("checkout", []saga.Step[map[string]string]{
		{Name: "charge", Action: saga.Local(func(context.Context, *sql.Tx, *saga.Run[map[string]string]) error { return nil }),
			Compensate: saga.Local(func(context.Context, *sql.Tx, *saga.Run[map[string]string]) error {
				if !fixed.Load() {
					return errors.New("refund service down")
				}
				return nil
			}),
			CompensateRetry: saga.Retry{MaxAttempts: 2, Backoff: saga.Backoff{Initial: time.Millisecond, Max: time.Millisecond}}},
		{Name: "reserve", Action: saga.Local(func(context.Context, *sql.Tx, *saga.Run[map[string]string]) error {
			return handoff.Permanent(errors.New("out of stock"))
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	svc, err = saga.New(store, saga.WithPollInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	s, err := saga.Register(svc, def)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"order-a", "order-b", "order-c"} {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Start(context.Background(), tx, map[string]string{"order": id}, saga.WithID(id)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// The second attempt of each compensation runs in the coordinator
	// after a delay: run it until all three are stuck.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	waitSagas(t, store, ids, saga.Stuck)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return svc, fixed, ids
}

// waitSagas polls until every saga of ids is in status want.
func waitSagas(t *testing.T, store saga.Store, ids []string, want saga.Status) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ok := true
		for _, id := range ids {
			in, err := store.Get(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			ok = ok && in.Status == want
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			for _, id := range ids {
				in, _ := store.Get(context.Background(), id)
				t.Logf("%s: %s %s", id, in.Status, in.Error)
			}
			t.Fatalf("sagas %v did not all become %s", ids, want)
		}
	}
}

// operateStuckSagas lists the three stuck sagas, shows one with its
// timeline, retries, skips and aborts them through the CLI with target
// (--server or --db), and lets the service's coordinator finish them.
func operateStuckSagas(t *testing.T, store saga.Store, svc *saga.Coordinator, fixed *atomic.Bool, ids []string, target ...string) {
	cli := func(args ...string) (string, string, error) {
		t.Helper()
		return sagaRun(t, append(append([]string{"saga"}, args...), target...)...)
	}
	out, errOut, err := cli("list")
	if err != nil {
		t.Fatalf("list: %v\n%s", err, errOut)
	}
	for _, id := range ids {
		if !strings.Contains(out, id) {
			t.Errorf("list lacks %s:\n%s", id, out)
		}
	}
	if !strings.Contains(out, "compensation of charge failed 2 times: refund service down") || !strings.Contains(errOut, "in all: 3 stuck") {
		t.Errorf("list:\n%s\n%s", out, errOut)
	}

	out, _, err = cli("list", "--status", "stuck", "--limit", "2", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var page sagaPage
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	if len(page.Sagas) != 2 || page.Sagas[0].ID != "order-c" || page.Next == "" || page.Counts[saga.Stuck] != 3 {
		t.Fatalf("list --json: %s", out)
	}
	out, _, err = cli("list", "--status", "stuck", "--limit", "2", "--cursor", page.Next, "--json")
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Sagas) != 1 || page.Sagas[0].ID != "order-a" {
		t.Fatalf("page 2: %v %s", err, out)
	}
	if _, _, err := cli("list", "--status", "lost"); err == nil || !strings.Contains(err.Error(), `--status: "lost" must be one of running`) {
		t.Errorf("list --status lost: %v", err)
	}

	out, errOut, err = cli("show", "order-a")
	if err != nil {
		t.Fatalf("show: %v", err)
	}
	for _, want := range []string{"status          stuck", "step            charge",
		"compensation.failed  charge   1", "compensation.failed  charge   2", "refund service down",
		"step.gaveup          reserve", "out of stock", "stuck                charge"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "handoff saga retry order-a") {
		t.Errorf("show of a stuck saga does not say what to do:\n%s", errOut)
	}
	out, _, err = cli("show", "order-a", "--json")
	var d saga.Detail
	if err != nil || json.Unmarshal([]byte(out), &d) != nil || d.Status != saga.Stuck || len(d.Timeline) < 6 || d.Timeline[0].Kind != saga.EvStarted {
		t.Fatalf("show --json: %v\n%s", err, out)
	}

	fixed.Store(true)
	if out, _, err = cli("retry", "order-a"); err != nil || !strings.Contains(out, "retried order-a: compensating at charge") {
		t.Fatalf("retry: %v %s", err, out)
	}
	if out, _, err = cli("skip", "order-b"); err != nil || !strings.Contains(out, "skipped order-b: compensating") {
		t.Fatalf("skip: %v %s", err, out)
	}
	out, _, err = cli("abort", "order-c", "--json")
	var ds []saga.Detail
	if err != nil || json.Unmarshal([]byte(out), &ds) != nil || len(ds) != 1 || ds[0].Status != saga.Aborted {
		t.Fatalf("abort --json: %v %s", err, out)
	}
	_, _, err = cli("retry", "order-c")
	if err == nil || !strings.Contains(err.Error(), "saga order-c is aborted, not stuck: only stuck sagas can be retried") ||
		!strings.Contains(err.Error(), "handoff saga show order-c") {
		t.Errorf("retry of an aborted saga: %v", err)
	}
	if _, _, err = cli("show", "order-z"); err == nil || !strings.Contains(err.Error(), "no saga order-z here") || !strings.Contains(err.Error(), "handoff saga list") {
		t.Errorf("show of no saga: %v", err)
	}

	// The service's coordinator takes the retried and the skipped saga on.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	waitSagas(t, store, ids[:2], saga.Compensated)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	out, _, err = cli("show", "order-a")
	if err != nil || !strings.Contains(out, "operator.retry") || !strings.Contains(out, "compensation.done    charge") ||
		!strings.Contains(out, "compensated") {
		t.Errorf("show after the retry: %v\n%s", err, out)
	}
	out, _, err = cli("show", "order-b")
	if err != nil || !strings.Contains(out, "operator.skip") || strings.Contains(out, "compensation.done") {
		t.Errorf("show after the skip: %v\n%s", err, out)
	}
	out, errOut, err = cli("list")
	if err != nil || !strings.Contains(errOut, "in all: 2 compensated, 1 aborted") {
		t.Errorf("list at the end: %v\n%s%s", err, out, errOut)
	}
}

// A real stuck saga on PostgreSQL (a compensation that keeps failing) is
// listed through handoff serve, shown with its timeline, retried, skipped
// and aborted with the CLI over --server, and the service's running
// coordinator then finishes the retried and the skipped one.
func TestSagaCmd_OperatesStuckSagasThroughServe(t *testing.T) {
	ctx := context.Background()
	pg := testenv.PostgresURL(t)
	db, err := postgres.Open(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := postgres.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	store := postgres.SagaStore(db)
	svc, fixed, ids := operatedStuckSagas(t, db, store)
	const tok = "ops-token"
	server, _ := startServe(t, "--db", pg, "--token", tok)
	operateStuckSagas(t, store, svc, fixed, ids, "--server", server, "--token", tok)
	if _, _, err := sagaRun(t, "saga", "list", "--server", server); err == nil || !strings.Contains(err.Error(), "--token or HANDOFF_TOKEN") {
		t.Errorf("list without the token: %v", err)
	}
}

// The same on a SQLite file, with --db.
func TestSagaCmd_OperatesStuckSagasInTheDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "handoff.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlite.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	store := sqlite.SagaStore(db)
	svc, fixed, ids := operatedStuckSagas(t, db, store)
	operateStuckSagas(t, store, svc, fixed, ids, "--db", path)
}

// Mistakes are refused before anything is opened, saying what to do.
func TestSagaCmd_RefusesMistakes(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"saga"}, "a command is required"},
		{[]string{"saga", "resume"}, `unknown command "resume" (want list, show, retry, skip or abort)`},
		{[]string{"saga", "show"}, "exactly one saga id is required"},
		{[]string{"saga", "retry"}, "find the stuck ones with: handoff saga list --status stuck"},
		{[]string{"saga", "list", "x"}, "takes no arguments"},
		{[]string{"saga", "list", "--limit", "5000"}, `--limit: "5000" must be a whole number from 0`},
		{[]string{"saga", "list", "--created-after", "soon"}, `--created-after: "soon" must be an RFC 3339 time or a duration`},
		{[]string{"saga", "list", "--server", "127.0.0.1:1"}, "must be the server's http or https URL"},
		{[]string{"saga", "list", "--db", filepath.Join(t.TempDir(), "none.db")}, "no such file"},
	} {
		_, _, err := sagaRun(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	if out, _, err := sagaRun(t, "saga", "--help"); err != nil || !strings.Contains(out, "retry  ID...") {
		t.Errorf("saga --help: %v %s", err, out)
	}
}
