package saga_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/adapter/mysql"
	"github.com/handoffhq/handoff/internal/testenv"
	"github.com/handoffhq/handoff/saga"
)

// listBackends are backends plus MariaDB/MySQL.
func listBackends(t *testing.T) []backend {
	t.Helper()
	out := backends(t)
	ctx := context.Background()
	db, err := mysql.Open(ctx, testenv.MySQLDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := mysql.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	return append(out, backend{"mysql", db, mysql.SagaStore(db)})
}

// seedSagas stores n instances straight through the store: created one a
// second from base (ids 5, 6 and 7 share a creation time, so the id
// breaks the tie), named order or refund, in the statuses in turn,
// updated a minute after they were created.
func seedSagas(t *testing.T, b backend, base time.Time, n int) []saga.Summary {
	t.Helper()
	ctx := context.Background()
	statuses := []saga.Status{saga.Running, saga.Stuck, saga.Completed, saga.Compensated}
	var out []saga.Summary
	tx, err := b.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		created := base.Add(time.Duration(i) * time.Second)
		if i >= 5 && i <= 7 {
			created = base.Add(5 * time.Second)
		}
		name := "order"
		if i%3 == 0 {
			name = "refund"
		}
		in := &saga.Instance{ID: fmt.Sprintf("s-%02d", i), Name: name, Version: "v1", CorrelationID: fmt.Sprintf("c-%d", i%2),
			Status: statuses[i%len(statuses)], Step: 0, Steps: []saga.StepState{{Name: "charge", State: saga.StepDone}},
			Data: []byte(`{}`), CreatedAt: created, UpdatedAt: created.Add(time.Minute)}
		if in.Status == saga.Stuck {
			in.Error = "compensation of charge failed 3 times: refund service down"
		}
		if in.Status.Ended() {
			in.EndedAt = in.UpdatedAt
		}
		if err := b.store.Create(ctx, tx, in); err != nil {
			tx.Rollback()
			t.Fatal(err)
		}
		out = append(out, saga.Summary{ID: in.ID, Name: in.Name, Version: in.Version, CorrelationID: in.CorrelationID,
			Status: in.Status, Step: "charge", Error: in.Error, CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt, EndedAt: in.EndedAt})
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// Newest first: by creation time, then id, descending.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func ids(ss []saga.Summary) []string {
	out := []string{}
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

// all follows the pages of f until the last.
func all(t *testing.T, c *saga.Coordinator, f saga.ListFilter) ([]saga.Summary, int) {
	t.Helper()
	var out []saga.Summary
	pages := 0
	for {
		p, err := c.List(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		out = append(out, p.Sagas...)
		if p.Next == "" {
			return out, pages
		}
		if pages > 100 {
			t.Fatal("the pages do not end")
		}
		f.Cursor = p.Next
	}
}

// The stores list sagas newest first, a page at a time with an opaque
// cursor that survives ties on the creation time, by status, name,
// correlation id and creation and update times, and count them by status,
// on SQLite, PostgreSQL and MariaDB alike.
func TestList_PagesAndFiltersOnEveryStore(t *testing.T) {
	for _, b := range listBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			base := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
			want := seedSagas(t, b, base, 23)
			c, err := saga.New(b.store)
			if err != nil {
				t.Fatal(err)
			}
			got, pages := all(t, c, saga.ListFilter{Limit: 4})
			if !reflect.DeepEqual(ids(got), ids(want)) || pages != 6 {
				t.Fatalf("paged (%d pages): %v\nwant %v", pages, ids(got), ids(want))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("summaries differ:\n got %+v\nwant %+v", got[0], want[0])
			}
			keep := func(ok func(s saga.Summary) bool) []string {
				out := []string{}
				for _, s := range want {
					if ok(s) {
						out = append(out, s.ID)
					}
				}
				return out
			}
			for _, tc := range []struct {
				name string
				f    saga.ListFilter
				ok   func(s saga.Summary) bool
			}{
				{"stuck", saga.ListFilter{Status: saga.Stuck}, func(s saga.Summary) bool { return s.Status == saga.Stuck }},
				{"refund", saga.ListFilter{Name: "refund"}, func(s saga.Summary) bool { return s.Name == "refund" }},
				{"stuck orders", saga.ListFilter{Status: saga.Stuck, Name: "order"}, func(s saga.Summary) bool {
					return s.Status == saga.Stuck && s.Name == "order"
				}},
				{"correlation", saga.ListFilter{CorrelationID: "c-1"}, func(s saga.Summary) bool { return s.CorrelationID == "c-1" }},
				{"created window", saga.ListFilter{CreatedAfter: base.Add(5 * time.Second), CreatedBefore: base.Add(12 * time.Second)},
					func(s saga.Summary) bool {
						return !s.CreatedAt.Before(base.Add(5*time.Second)) && s.CreatedAt.Before(base.Add(12*time.Second))
					}},
				{"updated window", saga.ListFilter{UpdatedAfter: base.Add(time.Minute + 20*time.Second), UpdatedBefore: base.Add(time.Hour)},
					func(s saga.Summary) bool { return !s.UpdatedAt.Before(base.Add(time.Minute + 20*time.Second)) }},
			} {
				for _, limit := range []int{2, 0} {
					f := tc.f
					f.Limit = limit
					got, _ := all(t, c, f)
					if w := keep(tc.ok); !reflect.DeepEqual(ids(got), w) || len(w) == 0 {
						t.Errorf("%s (limit %d): %v, want %v", tc.name, limit, ids(got), w)
					}
				}
			}
			counts, err := c.Counts(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if w := map[saga.Status]int{saga.Running: 6, saga.Stuck: 6, saga.Completed: 6, saga.Compensated: 5}; !reflect.DeepEqual(counts, w) {
				t.Errorf("counts %v, want %v", counts, w)
			}
		})
	}
}

// A bad filter is refused with the field and the rule.
func TestList_RefusesBadFilters(t *testing.T) {
	b := sqliteMem(t)
	defer b.db.Close()
	c, _ := saga.New(b.store)
	for _, tc := range []struct {
		f    saga.ListFilter
		want string
	}{
		{saga.ListFilter{Status: "broken"}, "status: \"broken\" must be one of running, compensating, stuck"},
		{saga.ListFilter{Limit: saga.MaxListLimit + 1}, "limit: 1001 must be between 0"},
		{saga.ListFilter{Limit: -1}, "limit: -1 must be between 0"},
		{saga.ListFilter{Cursor: "not a cursor"}, "cursor: not one a page gave"},
		{saga.ListFilter{Cursor: "MTIz"}, "cursor: not one a page gave"}, // "123": no id
	} {
		_, err := c.List(context.Background(), tc.f)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.f, err, tc.want)
		}
	}
	if _, err := c.List(context.Background(), saga.ListFilter{Cursor: "x"}); !errors.Is(err, saga.ErrBadCursor) {
		t.Errorf("bad cursor: %v, want ErrBadCursor", err)
	}
}
