package saga_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/saga"
)

// stuckSaga is a saga whose step "reserve" always fails and whose
// compensation of "charge" fails (once, then the saga is stuck) until
// fixed is set.
func stuckSaga(t testing.TB, fixed *atomic.Bool) *saga.Definition[order] {
	t.Helper()
	def, err := saga.Define("checkout", []saga.Step[order]{
		{Name: "charge", Action: saga.Local(func(context.Context, *sql.Tx, *saga.Run[order]) error { return nil }),
			Compensate: saga.Local(func(context.Context, *sql.Tx, *saga.Run[order]) error {
				if !fixed.Load() {
					return errors.New("refund service down")
				}
				return nil
			}),
			CompensateRetry: saga.Retry{MaxAttempts: 1}},
		{Name: "reserve", Action: saga.Local(func(context.Context, *sql.Tx, *saga.Run[order]) error {
			return handoff.Permanent(errors.New("out of stock"))
		})},
	})
	if err != nil {
		t.Fatal(err)
	}
	return def
}

func call(t *testing.T, h http.Handler, method, target string, v any) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	if v != nil && rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, target, err, rec.Body)
		}
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, target, ct)
	}
	return rec.Code, rec.Body.String()
}

// The HTTP API lists sagas with their counts, shows one with its
// timeline, retries, skips and aborts a stuck one, answers 409 for one
// that is not stuck and 404 for none, and refuses bad parameters naming
// them.
func TestHandler_ListsShowsAndOperatesOnStuckSagas(t *testing.T) {
	b := sqliteMem(t)
	defer b.db.Close()
	var fixed atomic.Bool
	c, err := saga.New(b.store)
	if err != nil {
		t.Fatal(err)
	}
	s, err := saga.Register(c, stuckSaga(t, &fixed))
	if err != nil {
		t.Fatal(err)
	}
	var stuck []string
	for range 3 {
		stuck = append(stuck, start(t, b.db, s, order{ID: "o"}))
	}
	// An operator's coordinator: it has no definitions.
	op, _ := saga.New(b.store)
	h, err := saga.NewHandler(op, saga.WithOperations())
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		saga.Page
		Counts map[saga.Status]int `json:"counts"`
	}
	if code, body := call(t, h, "GET", "/?status=stuck&counts=true&limit=2", &page); code != http.StatusOK ||
		len(page.Sagas) != 2 || page.Sagas[0].ID != stuck[2] || page.Next == "" || page.Counts[saga.Stuck] != 3 {
		t.Fatalf("list: %d %s", code, body)
	}
	if !strings.Contains(page.Sagas[0].Error, "refund service down") || page.Sagas[0].Step != "charge" {
		t.Errorf("a stuck saga's summary: %+v", page.Sagas[0])
	}
	next := page.Next
	page.Counts, page.Next = nil, ""
	if code, body := call(t, h, "GET", "/?status=stuck&limit=2&cursor="+next, &page); code != http.StatusOK ||
		len(page.Sagas) != 1 || page.Sagas[0].ID != stuck[0] || page.Next != "" || page.Counts != nil {
		t.Fatalf("page 2: %d %s", code, body)
	}

	var d saga.Detail
	if code, body := call(t, h, "GET", "/"+stuck[0], &d); code != http.StatusOK || d.Status != saga.Stuck || d.Step != "charge" {
		t.Fatalf("show: %d %s", code, body)
	}
	var kinds []string
	for _, e := range d.Timeline {
		kinds = append(kinds, e.Kind+":"+e.Step)
	}
	if got, want := strings.Join(kinds, " "), "started: step.done:charge step.failed:reserve step.gaveup:reserve compensating: compensation.failed:charge stuck:charge"; got != want {
		t.Errorf("timeline %q, want %q", got, want)
	}

	// Retry with the refund service still down: the saga is compensating
	// until a coordinator with the definition runs it (stuck again here).
	if code, body := call(t, h, "POST", "/"+stuck[0]+"/retry", &d); code != http.StatusOK || d.Status != saga.Compensating {
		t.Fatalf("retry: %d %s", code, body)
	}
	if code, body := call(t, h, "POST", "/"+stuck[0]+"/skip", nil); code != http.StatusConflict ||
		!strings.Contains(body, "is compensating, not stuck: only stuck sagas can be skipped") {
		t.Errorf("skip of a compensating saga: %d %s", code, body)
	}
	if code, body := call(t, h, "POST", "/"+stuck[1]+"/skip", &d); code != http.StatusOK || d.Status != saga.Compensating ||
		d.Steps[0].Compensation != "skipped" {
		t.Errorf("skip: %d %s", code, body)
	}
	if code, body := call(t, h, "POST", "/"+stuck[2]+"/abort", &d); code != http.StatusOK || d.Status != saga.Aborted ||
		d.Timeline[len(d.Timeline)-1].Kind != saga.EvOperatorAbort {
		t.Errorf("abort: %d %s", code, body)
	}
	if code, body := call(t, h, "POST", "/"+stuck[2]+"/abort", nil); code != http.StatusConflict || !strings.Contains(body, "is aborted, not stuck") {
		t.Errorf("abort again: %d %s", code, body)
	}
	for _, target := range []string{"/nope", "/nope/retry"} {
		method := map[bool]string{true: "POST", false: "GET"}[strings.HasSuffix(target, "retry")]
		if code, body := call(t, h, method, target, nil); code != http.StatusNotFound || !strings.Contains(body, "no saga nope") {
			t.Errorf("%s %s: %d %s", method, target, code, body)
		}
	}

	for _, tc := range []struct{ query, want string }{
		{"status=broken", "status: \\\"broken\\\" must be one of"},
		{"limit=5000", "limit: \\\"5000\\\" must be a whole number from 0"},
		{"created_after=yesterday", "created_after: \\\"yesterday\\\" must be an RFC 3339 time or a duration"},
		{"cursor=zzz", "cursor: not one a page gave"},
		{"colour=red", "colour: unknown parameter"},
		{"name=a&name=b", "name: given 2 times"},
		{"counts=maybe", "counts: \\\"maybe\\\" must be true or false"},
		{"name=" + strings.Repeat("x", 600), "name: longer than 512 bytes"},
	} {
		if code, body := call(t, h, "GET", "/?"+tc.query, nil); code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want 400 with %q", tc.query, code, body, tc.want)
		}
	}

	ro, _ := saga.NewHandler(op)
	if code, body := call(t, ro, "POST", "/"+stuck[0]+"/retry", nil); code != http.StatusMethodNotAllowed || !strings.Contains(body, "read-only") {
		t.Errorf("retry on a read-only handler: %d %s", code, body)
	}
	if code, _ := call(t, h, "DELETE", "/"+stuck[0], nil); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d", code)
	}
}
