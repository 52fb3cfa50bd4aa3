package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/examples/demo/orders"
	"github.com/handoffhq/handoff/saga"
)

// handoff dev's demo flow leaves, once per data directory, an order saga
// stuck on a refund that fails until an operator retries it: it is listed
// by saga list --status stuck, saga show prints its timeline, and after
// saga retry the demo's coordinator compensates it. Started again on the
// same data directory, dev makes no other stuck saga.
func TestDev_DemoSagaIsStuckUntilRetried(t *testing.T) {
	dir := t.TempDir()
	urls, stderr, stop := runDev(t, dir)
	server := strings.TrimSuffix(urls["sagas"], "/sagas")
	if !strings.Contains(stderr.String(), "saga list --server "+server+" --status stuck") {
		t.Errorf("dev did not tell how to list the sagas:\n%s", stderr.String())
	}
	list := func(filter ...string) []saga.Summary {
		t.Helper()
		out, errOut, err := sagaRun(t, append([]string{"saga", "list", "--server", server, "--json"}, filter...)...)
		if err != nil {
			t.Fatalf("saga list: %v\n%s", err, errOut)
		}
		var p sagaPage
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("saga list --json: %v\n%s", err, out)
		}
		return p.Sagas
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) { // polling, with a deadline
		if ss := list("--status", "stuck"); len(ss) == 1 && ss[0].ID == orders.StuckSagaID && ss[0].Name == orders.SagaName {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("stuck sagas %+v, want %s; dev said:\n%s", ss, orders.StuckSagaID, stderr.String())
		}
	}

	out, errOut, err := sagaRun(t, "saga", "show", "--server", server, orders.StuckSagaID)
	if err != nil {
		t.Fatalf("saga show: %v\n%s", err, errOut)
	}
	if !regexp.MustCompile(`(?m)^status\s+stuck$`).MatchString(out) {
		t.Errorf("saga show does not say the saga is stuck:\n%s", out)
	}
	for _, want := range []string{"timeline", "step.gaveup", "compensation.failed", "stuck", "needs an operator's look"} {
		if !strings.Contains(out, want) {
			t.Errorf("saga show lacks %q:\n%s", want, out)
		}
	}

	if out, errOut, err := sagaRun(t, "saga", "retry", "--server", server, orders.StuckSagaID); err != nil {
		t.Fatalf("saga retry: %v\n%s%s", err, out, errOut)
	}
	var d saga.Detail
	for deadline := time.Now().Add(60 * time.Second); d.Status != saga.Compensated; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after retry the saga is %s, want compensated; dev said:\n%s", d.Status, stderr.String())
		}
		out, errOut, err := sagaRun(t, "saga", "show", "--server", server, "--json", orders.StuckSagaID)
		if err != nil {
			t.Fatalf("saga show: %v\n%s", err, errOut)
		}
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatalf("saga show --json: %v\n%s", err, out)
		}
	}
	var kinds []string
	retried := false
	for _, e := range d.Timeline {
		kinds = append(kinds, e.Kind+":"+e.Step)
		retried = retried || e.Kind == saga.EvOperatorRetry
		if e.Kind == saga.EvCompFailed && (retried || !strings.Contains(e.Error, "needs an operator's look")) {
			t.Errorf("compensation failed (attempt %d, after a retry: %v): %s", e.Attempt, retried, e.Error)
		}
	}
	got := strings.Join(kinds, " ")
	for _, want := range []string{"operator.retry:charge-card", "compensation.done:charge-card", "compensation.done:reserve-stock", "compensated:"} {
		if !strings.Contains(got, want) {
			t.Errorf("timeline after the retry lacks %s: %s", want, got)
		}
	}
	stop()

	urls, stderr, _ = runDev(t, dir)
	server = strings.TrimSuffix(urls["sagas"], "/sagas")
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(stderr.String(), "was started before"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("dev did not look for its stuck saga after the restart:\n%s", stderr.String())
		}
	}
	if ss := list("--status", "stuck"); len(ss) != 0 {
		t.Errorf("stuck sagas after a restart: %+v", ss)
	}
	if ss := list(); len(ss) != 1 || ss[0].ID != orders.StuckSagaID || ss[0].Status != saga.Compensated {
		t.Errorf("sagas after a restart: %+v, want only %s, compensated", ss, orders.StuckSagaID)
	}
}
