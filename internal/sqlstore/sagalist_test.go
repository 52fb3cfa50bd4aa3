package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/adapter/mysql"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/internal/sqlstore"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/saga"
)

// listFilters are the listings an operator runs: everything, by status,
// by saga name, by correlation id, by time, and a later page of each.
func listFilters() map[string]saga.ListFilter {
	cur := saga.Cursor{CreatedAt: time.Now(), ID: "s-1"}.String()
	return map[string]saga.ListFilter{
		"all":          {Limit: 50},
		"all, page 2":  {Limit: 50, Cursor: cur},
		"stuck":        {Status: saga.Stuck, Limit: 50},
		"stuck page 2": {Status: saga.Stuck, Limit: 50, Cursor: cur},
		"name":         {Name: "order", Limit: 50, Cursor: cur},
		"correlation":  {CorrelationID: "c-1", Limit: 50},
		"created":      {CreatedAfter: time.Now().Add(-time.Hour), Limit: 50},
		"updated":      {UpdatedBefore: time.Now(), Limit: 50},
	}
}

// On SQLite each listing reads an index in its order: no temporary
// B-tree sorts the table.
func TestSagaList_SQLiteReadsAnIndexInOrder(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlite.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	s := sqlstore.NewSagaStore(db, sqlstore.SQLite())
	for name, f := range listFilters() {
		q, args, err := s.ListQuery(f)
		if err != nil {
			t.Fatal(err)
		}
		plan := planOf(t, db, "EXPLAIN QUERY PLAN "+q, args)
		if strings.Contains(plan, "TEMP B-TREE") || !strings.Contains(plan, "INDEX handoff_saga_") {
			t.Errorf("%s: plan %q sorts or uses no index", name, plan)
		}
	}
}

// On PostgreSQL each listing has an index that gives its order: with
// sequential scans and sorts priced out, the plan has no Sort.
func TestSagaList_PostgresReadsAnIndexInOrder(t *testing.T) {
	ctx := context.Background()
	db := testenv.Postgres(t)
	if err := postgres.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	s := sqlstore.NewSagaStore(db, sqlstore.Postgres())
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, set := range []string{"SET LOCAL enable_seqscan = off", "SET LOCAL enable_sort = off"} {
		if _, err := tx.Exec(set); err != nil {
			t.Fatal(err)
		}
	}
	for name, f := range listFilters() {
		q, args, err := s.ListQuery(f)
		if err != nil {
			t.Fatal(err)
		}
		plan := planOf(t, tx, "EXPLAIN "+q, args)
		if strings.Contains(plan, "Sort") || !strings.Contains(plan, "Index") {
			t.Errorf("%s: plan sorts or uses no index:\n%s", name, plan)
		}
	}
}

type querier interface {
	Query(q string, args ...any) (*sql.Rows, error)
}

func planOf(t *testing.T, db querier, q string, args []any) string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var b strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			switch v := v.(type) {
			case string:
				b.WriteString(v + " ")
			case []byte:
				b.WriteString(string(v) + " ")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// On MariaDB/MySQL each listing of a table of 10,000 sagas reads an index
// in its order: no filesort. (With 2,000 MariaDB 10.11 scans and sorts the
// table, which costs less there; the indexes take over as it grows.)
func TestSagaList_MySQLReadsAnIndexInOrder(t *testing.T) {
	ctx := context.Background()
	db, err := mysql.Open(ctx, testenv.MySQLDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := mysql.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	for batch := range 5 {
		var vals []string
		var args []any
		for i := batch * 2000; i < (batch+1)*2000; i++ {
			st := []string{"running", "stuck", "completed", "compensated"}[i%4]
			vals = append(vals, "(?, ?, 'v1', ?, ?, 0, '[]', '{}', NULL, 0, '', 0, 0, 0, '', ?, ?, NULL)")
			args = append(args, fmt.Sprintf("s-%05d", i), []string{"order", "refund"}[i%2], fmt.Sprintf("c-%d", i%50), st, int64(i)*1e6, int64(i)*1e6+5)
		}
		if _, err := db.Exec(`INSERT INTO handoff_saga (id, name, version, correlation_id, status, step_no, steps, data, due_at, deadline,
		lease_owner, lease_until, epoch, events, error, created_at, updated_at, ended_at) VALUES `+strings.Join(vals, ", "), args...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`ANALYZE TABLE handoff_saga`); err != nil {
		t.Fatal(err)
	}
	s := sqlstore.NewSagaStore(db, sqlstore.MySQL())
	for name, f := range listFilters() {
		q, args, err := s.ListQuery(f)
		if err != nil {
			t.Fatal(err)
		}
		plan := planOf(t, db, "EXPLAIN "+q, args)
		if strings.Contains(plan, "filesort") || !strings.Contains(plan, "handoff_saga_") {
			t.Errorf("%s: plan sorts or uses no index:\n%s", name, plan)
		}
	}
}
