package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/mysql"
	natsadapter "github.com/handoffhq/handoff/adapter/nats"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/outbox"
)

// TestMain runs main itself when asked, so tests can check exit codes.
func TestMain(m *testing.M) {
	if os.Getenv("HANDOFF_TEST_RUN_MAIN") == "1" {
		os.Args = append([]string{"handoff"}, strings.Fields(os.Getenv("HANDOFF_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// exitCode runs the binary's main with args and returns its exit code.
func exitCode(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HANDOFF_TEST_RUN_MAIN=1", "HANDOFF_TEST_ARGS="+strings.Join(args, " "))
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// --help works for every command and subcommand: usage on stdout, exit 0.
// A mistake still exits 1.
func TestCLI_HelpExitsZeroEverywhere(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"},
		{"dev", "--help"}, {"relay", "--help"}, {"relay", "-h"},
		{"dlq", "--help"}, {"dlq", "-h"}, {"dlq", "help"},
		{"dlq", "list", "--help"}, {"dlq", "show", "--help"}, {"dlq", "edit", "--help"},
		{"dlq", "replay", "--help"}, {"dlq", "purge", "-help"}, {"dlq", "edit", "ID", "--data", "x", "--help"},
		{"registry", "--help"}, {"registry", "serve", "--help"},
		{"saga", "--help"}, {"saga", "list", "--help"}, {"saga", "show", "-h"}, {"saga", "retry", "ID", "--help"},
	} {
		var out, errb bytes.Buffer
		if err := run(context.Background(), args, nil, &out, &errb); err != nil {
			t.Errorf("%v: %v", args, err)
		}
		if out.Len()+errb.Len() == 0 {
			t.Errorf("%v printed no usage", args)
		}
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"dlq", "--help"}, 0},
		{[]string{"dlq", "list", "--help"}, 0},
		{[]string{"relay", "--help"}, 0},
		{[]string{"dev", "--help"}, 0},
		{[]string{"dlq", "frobnicate"}, 1},
		{[]string{"dlq", "list", "--no-such-flag"}, 1},
	} {
		if code, out := exitCode(t, c.args...); code != c.code {
			t.Errorf("handoff %v exited %d, want %d:\n%s", c.args, code, c.code, out)
		}
	}
}

// letterIn adds a dead letter to the SQLite file at path and returns it.
func letterIn(t *testing.T, path, consumer string) *dlq.Letter {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlite.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	q, _ := dlq.New(sqlite.DLQStore(db))
	m := handoff.NewMessage("/orders", "order.placed", []byte(`{"order":"o-1","total":-1}`))
	l := &dlq.Letter{Consumer: consumer, Topic: "orders", Message: m, Class: dlq.ClassSchema, Errors: []string{"total: must be >= 0"}, Attempts: 1}
	if err := q.Add(ctx, l); err != nil {
		t.Fatal(err)
	}
	return l
}

// Flags after the letter id act on the database they name, not on the
// default one.
func TestDLQCmd_FlagsAfterTheIDActOnThatDatabase(t *testing.T) {
	dir := t.TempDir()
	decoy, target := filepath.Join(dir, "decoy.db"), filepath.Join(dir, "target.db")
	letterIn(t, decoy, "billing")
	l := letterIn(t, target, "billing")
	t.Setenv("HANDOFF_DB", decoy) // the default --db
	fixed := filepath.Join(dir, "fixed.json")
	os.WriteFile(fixed, []byte(`{"order":"o-1","total":1}`), 0o644)
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"dlq", "edit", l.ID, "--data", fixed, "--db", target}, nil, &out, &errb); err != nil {
		t.Fatalf("dlq edit ID --data F --db X: %v\n%s", err, errb.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"dlq", "show", l.ID, "--json", "--db", target}, nil, &out, &errb); err != nil {
		t.Fatal(err)
	}
	var got dlq.Letter
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || string(got.Message.Data) != `{"order":"o-1","total":1}` {
		t.Fatalf("after the edit the target holds %s (%v)", out.String(), err)
	}
	// Interspersed the other way round, and "--" ends the flags.
	out.Reset()
	if err := run(context.Background(), []string{"dlq", "--db", target, "show", l.ID}, nil, &out, &errb); err == nil {
		t.Fatal("a flag before the command was taken for the command")
	}
	out.Reset()
	if err := run(context.Background(), []string{"dlq", "show", "--db", target, "--", l.ID}, nil, &out, &errb); err != nil || !strings.Contains(out.String(), l.ID) {
		t.Fatalf("show --db X -- ID: %v %s", err, out.String())
	}
	if err := run(context.Background(), []string{"dlq", "show", l.ID, "extra", "--db", target}, nil, &out, &errb); err == nil || !strings.Contains(err.Error(), "exactly one letter id") {
		t.Fatalf("show with two ids: %v, want a clear refusal", err)
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func versions(t *testing.T, db *sql.DB) []int {
	t.Helper()
	rows, err := db.Query("SELECT version FROM handoff_schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		rows.Scan(&v)
		vs = append(vs, v)
	}
	return vs
}

// dlq list and show only read: against a database one migration behind (as
// a service's database is after an upgrade of the CLI) they list, and leave
// it as it was: no migration, not a byte changed in a SQLite file that may
// not be written.
func TestDLQCmd_ListAndShowNeverMigrate(t *testing.T) {
	ctx := context.Background()
	check := func(t *testing.T, spec string, db *sql.DB, add func(*dlq.Letter) error) {
		l := &dlq.Letter{Consumer: "billing", Topic: "orders", Class: dlq.ClassPermanent, Attempts: 1,
			Message: handoff.NewMessage("/orders", "order.placed", []byte(`{}`)), Errors: []string{"declined"}}
		if err := add(l); err != nil {
			t.Fatal(err)
		}
		before := versions(t, db)
		if _, err := db.Exec("DELETE FROM handoff_schema_migrations WHERE version = ?", before[len(before)-1]); err != nil {
			if _, err := db.Exec("DELETE FROM handoff_schema_migrations WHERE version = $1", before[len(before)-1]); err != nil {
				t.Fatal(err)
			}
		}
		behind := versions(t, db)
		for _, args := range [][]string{{"dlq", "list", "--db", spec}, {"dlq", "list", "--json", "--db", spec}, {"dlq", "show", l.ID, "--db", spec}} {
			var out, errb bytes.Buffer
			if err := run(ctx, args, nil, &out, &errb); err != nil || !strings.Contains(out.String(), l.ID) {
				t.Fatalf("%v: %v\n%s%s", args, err, out.String(), errb.String())
			}
		}
		if got := versions(t, db); fmt.Sprint(got) != fmt.Sprint(behind) {
			t.Fatalf("migrations after list/show: %v, want still %v (read-only commands never migrate)", got, behind)
		}
	}
	t.Run("sqlite read-only file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "svc.db")
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if err := sqlite.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		q, _ := dlq.New(sqlite.DLQStore(db))
		l := &dlq.Letter{Consumer: "billing", Topic: "orders", Class: dlq.ClassPermanent, Attempts: 1,
			Message: handoff.NewMessage("/orders", "order.placed", []byte(`{}`)), Errors: []string{"declined"}}
		if err := q.Add(ctx, l); err != nil {
			t.Fatal(err)
		}
		vs := versions(t, db)
		db.Exec("DELETE FROM handoff_schema_migrations WHERE version = ?", vs[len(vs)-1])
		db.Close() // checkpoints the WAL into the file
		if err := os.Chmod(path, 0o444); err != nil {
			t.Fatal(err)
		}
		sum := fileHash(t, path)
		for _, args := range [][]string{{"dlq", "list", "--db", path}, {"dlq", "show", l.ID, "--json", "--db", path}} {
			var out, errb bytes.Buffer
			if err := run(ctx, args, nil, &out, &errb); err != nil || !strings.Contains(out.String(), l.ID) {
				t.Fatalf("%v on a read-only file: %v\n%s%s", args, err, out.String(), errb.String())
			}
		}
		if fileHash(t, path) != sum {
			t.Fatal("dlq list/show changed the database file")
		}
	})
	t.Run("postgres", func(t *testing.T) {
		spec := testenv.PostgresURL(t)
		db, err := postgres.Open(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		postgres.Migrate(ctx, db)
		q, _ := dlq.New(postgres.DLQStore(db))
		check(t, spec, db, func(l *dlq.Letter) error { return q.Add(ctx, l) })
	})
	t.Run("mariadb", func(t *testing.T) {
		dsn := testenv.MySQLDSN(t)
		db, err := mysql.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		mysql.Migrate(ctx, db)
		q, _ := dlq.New(mysql.DLQStore(db))
		check(t, "mysql://"+dsn, db, func(l *dlq.Letter) error { return q.Add(ctx, l) })
	})
}

// Output is for people by default; --json is the stable JSON of the dlq
// package (its golden files pin it): [] for no letters, and exactly what
// Letter.MarshalJSON writes.
func TestDLQCmd_HumanByDefaultStableJSONOnRequest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	letterIn(t, empty, "x")
	dlqRun := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(ctx, append([]string{"dlq"}, args...), nil, &out, &errb); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errb.String())
		}
		return out.String()
	}
	if got := dlqRun("list", "--json", "--consumer", "nobody", "--db", empty); got != "[]\n" {
		t.Fatalf("list --json of no letters = %q, want []", got)
	}
	path := filepath.Join(dir, "svc.db")
	l := letterIn(t, path, "billing")
	show := dlqRun("show", l.ID, "--db", path)
	if strings.HasPrefix(strings.TrimSpace(show), "{") || !strings.Contains(show, "schema") || !strings.Contains(show, "total: must be >= 0") ||
		!strings.Contains(show, "handoff dlq replay "+l.ID) {
		t.Fatalf("show is not for people:\n%s", show)
	}
	list := dlqRun("list", "--db", path)
	if !strings.Contains(list, "CLASS") || !strings.Contains(list, l.ID) {
		t.Fatalf("list is not a table:\n%s", list)
	}
	db, _ := sqlite.Open(ctx, path)
	defer db.Close()
	stored, err := sqlite.DLQStore(db).Get(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := dlq.MarshalDiagnosed(stored, nil)
	if got := dlqRun("show", l.ID, "--json", "--db", path); got != string(want)+"\n" {
		t.Fatalf("show --json:\n%s\nwant dlq.MarshalDiagnosed:\n%s", got, want)
	}
	wantList, _ := dlq.MarshalListDiagnosed([]*dlq.Letter{stored}, nil)
	if got := dlqRun("list", "--json", "--db", path); got != string(wantList)+"\n" {
		t.Fatalf("list --json:\n%s\nwant dlq.MarshalListDiagnosed:\n%s", got, wantList)
	}
	for _, key := range []string{`"first_failure"`, `"errors":[`, `"state":"open"`} {
		if !strings.Contains(string(want), key) {
			t.Errorf("JSON lacks %s: %s", key, want)
		}
	}
	if strings.Contains(string(want), "replayed_at") || strings.Contains(string(want), "0001-01-01") {
		t.Errorf("JSON of an open letter carries an unset time: %s", want)
	}
}

// handoff relay against a broker that is not there says so, naming the
// address and the cause, at once.
func TestRelayCmd_UnreachableBrokerLogNamesTheAddress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "svc.db")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"relay", "--db", path, "--broker", "nats://" + addr}, nil, &out, &errb)
	}()
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(errb.String(), "broker unreachable"); {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no outage line within 30s; stderr:\n%s", errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("relay: %v", err)
	}
	line := ""
	for _, l := range strings.Split(errb.String(), "\n") {
		if strings.Contains(l, "broker unreachable") {
			line = l
		}
	}
	if !strings.Contains(line, addr) || !strings.Contains(line, "connection refused") {
		t.Fatalf("outage line %q does not name %s and the cause", line, addr)
	}
}

// sqlStore is one SQL database for the CLI: its --db spec and a pool on it.
type sqlStore struct {
	name string
	spec string
	db   *sql.DB
	out  outbox.Store
}

func eachSQL(t *testing.T, f func(t *testing.T, s sqlStore)) {
	ctx := context.Background()
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "svc.db")
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := sqlite.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		f(t, sqlStore{"sqlite", path, db, sqlite.OutboxStore(db)})
	})
	t.Run("postgres", func(t *testing.T) {
		spec := testenv.PostgresURL(t)
		db, err := postgres.Open(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := postgres.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		f(t, sqlStore{"postgres", spec, db, postgres.OutboxStore(db)})
	})
	t.Run("mariadb", func(t *testing.T) {
		dsn := testenv.MySQLDSN(t)
		db, err := mysql.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := mysql.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		f(t, sqlStore{"mariadb", "mysql://" + dsn, db, mysql.OutboxStore(db)})
	})
}

// collector records the subjects of what a group receives, in order.
type collector struct {
	mu   sync.Mutex
	got  []string
	wake chan struct{}
}

func collect(t *testing.T, c *natsadapter.Client, topic, group string) *collector {
	t.Helper()
	col := &collector{wake: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Subscribe(ctx, handoff.Subscription{Topic: topic, Group: group}, func(d *handoff.Delivery) {
			col.mu.Lock()
			col.got = append(col.got, d.Message.Subject)
			col.mu.Unlock()
			d.Settler.Ack(ctx)
			select {
			case col.wake <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return col
}

func (c *collector) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		c.mu.Lock()
		got := append([]string(nil), c.got...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-c.wake:
		case <-deadline:
			t.Fatalf("received %v, want %d messages", got, n)
		}
	}
}

// The held-key round trip through the CLI, on every SQL store: the broker
// refuses a row for good (over NATS's max_payload); handoff relay
// dead-letters it and holds its key; handoff dlq edit + replay (or,
// separately, purge) releases it: the later rows of the key are published,
// in order, after the replayed one.
func TestCLI_RefusedRowEditReplayOrPurgeReleasesItsKey(t *testing.T) {
	eachSQL(t, func(t *testing.T, s sqlStore) {
		for _, how := range []string{"edit+replay", "purge"} {
			t.Run(how, func(t *testing.T) {
				ctx := context.Background()
				url, client := embeddedNATS(t)
				topic := testenv.Unique("held.")
				col := collect(t, client, topic, "shipping")
				w, err := outbox.New(s.out, outbox.WithMaxMessageSize(0)) // a writer that lets it through, as before
				if err != nil {
					t.Fatal(err)
				}
				key := testenv.Unique("customer-")
				var msgs []*handoff.Message
				for i := 1; i <= 3; i++ {
					m := handoff.NewMessage("/orders", "order.placed", []byte(fmt.Sprintf(`{"n":%d}`, i)))
					m.PartitionKey, m.Subject = key, fmt.Sprint(i)
					msgs = append(msgs, m)
				}
				msgs[0].Data = []byte(`"` + strings.Repeat("x", 2<<20) + `"`)
				tx, _ := s.db.BeginTx(ctx, nil)
				if err := w.Add(ctx, tx, topic, msgs...); err != nil {
					t.Fatal(err)
				}
				tx.Commit()

				rctx, stop := context.WithCancel(ctx)
				var rout, rerr syncBuffer
				done := make(chan error, 1)
				go func() {
					done <- run(rctx, []string{"relay", "--db", s.spec, "--broker", url, "--poll-max", "50ms"}, nil, &rout, &rerr)
				}()
				defer func() {
					stop()
					if err := <-done; err != nil {
						t.Errorf("relay: %v\n%s", err, rerr.String())
					}
				}()
				cli := func(args ...string) string {
					t.Helper()
					var out, errb bytes.Buffer
					if err := run(ctx, append([]string{"dlq"}, args...), nil, &out, &errb); err != nil {
						t.Fatalf("dlq %v: %v\n%s", args, err, errb.String())
					}
					return out.String()
				}
				var letters []*dlq.Letter
				for deadline := time.Now().Add(30 * time.Second); len(letters) == 0; {
					json.Unmarshal([]byte(cli("list", "--json", "--consumer", dlq.RelayConsumer, "--topic", topic, "--db", s.spec)), &letters)
					if time.Now().After(deadline) {
						t.Fatalf("no letter for the refused row; relay said:\n%s", rerr.String())
					}
					time.Sleep(20 * time.Millisecond)
				}
				id := letters[0].ID
				col.mu.Lock()
				early := len(col.got)
				col.mu.Unlock()
				if early != 0 {
					t.Fatalf("received %v while the key was held", col.got)
				}
				want := "[2 3]"
				if how == "purge" {
					cli("purge", "--consumer", dlq.RelayConsumer, "--topic", topic, "--yes", "--db", s.spec)
				} else {
					fixed := filepath.Join(t.TempDir(), "fixed.json")
					os.WriteFile(fixed, []byte(`{"n":1}`), 0o644)
					cli("edit", id, "--data", fixed, "--db", s.spec)
					cli("replay", id, "--db", s.spec, "--broker", url)
					want = "[1 2 3]"
				}
				if got := col.wait(t, strings.Count(want, " ")+1); fmt.Sprint(got) != want {
					t.Fatalf("received %v, want %s in order", got, want)
				}
			})
		}
	})
}
