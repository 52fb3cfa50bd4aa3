package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/mysql"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/alert"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/outbox"
	"github.com/handoffhq/handoff/saga"
)

// What the server's saga gauge and database alert checks read works on
// each database it runs on: unfinished sagas counted by name and status
// (ended ones left out), and outbox partitions with pending rows listed
// while no live lease covers them (never leased, or the lease expired or
// released), from the row's creation.
func TestDBChecks_SagaCountsAndUnleasedPartitionsOnEveryDatabase(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "h.db") }},
		{"postgres", func(t *testing.T) string { return testenv.PostgresURL(t) }},
		{"mysql", func(t *testing.T) string { return "mysql://" + testenv.MySQLDSN(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			d, err := openDB(ctx, "db", tc.spec(t), dbOpen{migrate: true})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()

			now := time.Now()
			for _, in := range []*saga.Instance{
				{ID: "s1", Name: "order", Status: saga.Running},
				{ID: "s2", Name: "order", Status: saga.Stuck},
				{ID: "s3", Name: "order", Status: saga.Stuck},
				{ID: "s4", Name: "refund", Status: saga.Compensating},
				{ID: "s5", Name: "order", Status: saga.Completed, EndedAt: now},
			} {
				in.Version, in.CorrelationID, in.Data, in.CreatedAt, in.UpdatedAt = "1", "c-"+in.ID, json.RawMessage(`{}`), now, now
				tx, err := d.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := d.sagaStore().Create(ctx, tx, in); err != nil {
					t.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			counts, err := sagaCounter(d).CountsByName(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := []saga.Count{{Name: "order", Status: saga.Running, Sagas: 1}, {Name: "order", Status: saga.Stuck, Sagas: 2},
				{Name: "refund", Status: saga.Compensating, Sagas: 1}}
			if !reflect.DeepEqual(counts, want) {
				t.Errorf("CountsByName = %v, want %v", counts, want)
			}

			leases := d.relayStore().(alert.LeaseSource)
			unleased := func() map[int]time.Time {
				t.Helper()
				un, err := leases.Unleased(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return un
			}
			if un := unleased(); len(un) != 0 {
				t.Fatalf("empty outbox: Unleased = %v", un)
			}
			w, err := outbox.New(testOutboxStore(d), outbox.WithPartitions(1))
			if err != nil {
				t.Fatal(err)
			}
			before := time.Now().Add(-time.Second) // the database's clock may differ a little
			tx, err := d.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Add(ctx, tx, "orders", handoff.NewMessage("/orders", "order.placed", []byte(`{}`))); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			after := time.Now().Add(time.Second)
			if un := unleased(); len(un) != 1 || un[0].Before(before) || un[0].After(after) {
				t.Fatalf("a row on a partition never leased: Unleased = %v, want partition 0 since about now", un)
			}
			rs := d.relayStore()
			if held, _, err := rs.Claim(ctx, "relay-a", 1, 1, time.Hour); err != nil || len(held) != 1 {
				t.Fatalf("Claim = %v, %v", held, err)
			}
			if un := unleased(); len(un) != 0 {
				t.Fatalf("a live lease: Unleased = %v, want none", un)
			}
			if err := rs.Release(ctx, "relay-a", []int{0}); err != nil {
				t.Fatal(err)
			}
			if un := unleased(); len(un) != 1 {
				t.Fatalf("lease released: Unleased = %v, want partition 0", un)
			}
			if held, _, err := rs.Claim(ctx, "relay-b", 1, 1, -time.Hour); err != nil || len(held) != 1 {
				t.Fatalf("Claim = %v, %v", held, err)
			}
			if un := unleased(); len(un) != 1 || un[0].Before(before) {
				t.Fatalf("lease expired an hour ago: Unleased = %v, want partition 0 since the row's creation", un)
			}
		})
	}
}

func testOutboxStore(d *database) outbox.Store {
	switch d.kind {
	case postgresDB:
		return postgres.OutboxStore(d.DB)
	case mysqlDB:
		return mysql.OutboxStore(d.DB)
	}
	return sqlite.OutboxStore(d.DB)
}

// A negative --alert-no-lease is refused, naming the flag and the rule.
func TestServe_RefusesNegativeNoLeaseGrace(t *testing.T) {
	var out, errb syncBuffer
	err := run(context.Background(), []string{"serve", "--db", filepath.Join(t.TempDir(), "h.db"), "--insecure",
		"--addr", "127.0.0.1:0", "--alert-no-lease", "-1s"}, nil, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "--alert-no-lease -1s: must be >= 0") {
		t.Fatalf("err = %v, want the flag and its rule", err)
	}
}
