package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/sqlite"
	"github.com/handoffhq/handoff/dlq"
)

// dlq list and show name each letter's root cause with its playbook; a
// rules file of the user's own adds causes; --incidents folds a storm into
// one incident.
func TestDLQCmd_CausesPlaybooksAndIncidents(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "svc.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlite.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	q, _ := dlq.New(sqlite.DLQStore(db))
	t0 := time.Now().Add(-time.Hour).UTC()
	var storm []string
	for i := range 20 {
		m := handoff.NewMessage("/orders", "order.placed", []byte(`{"order":"o-1"}`))
		l := &dlq.Letter{Consumer: "billing", Topic: "orders", Message: m, Class: dlq.ClassHandler, Attempts: 5,
			Errors:       []string{"charge: call ledger: dial tcp 10.0.0.9:80: connect: connection refused", "connection refused"},
			FirstFailure: t0.Add(time.Duration(i) * time.Second), LastFailure: t0.Add(time.Minute)}
		if err := q.Add(ctx, l); err != nil {
			t.Fatal(err)
		}
		storm = append(storm, l.ID)
	}
	hold := &dlq.Letter{Consumer: "payment", Topic: "orders", Message: handoff.NewMessage("/orders", "order.placed", []byte(`{}`)),
		Class: dlq.ClassPermanent, Errors: []string{"order o-2 held for review"}, FirstFailure: t0, LastFailure: t0}
	if err := q.Add(ctx, hold); err != nil {
		t.Fatal(err)
	}
	db.Close()

	out, err := runCLI(t, "dlq", "show", storm[0], "--db", path)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"dependency-down  (rule: syscall.ECONNREFUSED)", "playbook (dependency-down):",
		"handoff dlq replay --all --consumer billing --state open --broker URL"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	out, err = runCLI(t, "dlq", "list", "--db", path)
	if err != nil || !strings.Contains(out, "CAUSE") || !strings.Contains(out, "business-rule") {
		t.Fatalf("list: %v\n%s", err, out)
	}

	rules := filepath.Join(t.TempDir(), "rules.json")
	os.WriteFile(rules, []byte(`[{"name": "fraud hold", "class": "fraud-hold", "pattern": "held for review",
		"playbook": "Ask team-risk to release it: handoff dlq replay {id} --broker URL"}]`), 0o644)
	out, err = runCLI(t, "dlq", "show", hold.ID, "--json", "--rules", rules, "--db", path)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var doc struct{ Cause dlq.Diagnosis }
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Cause.Cause != "fraud-hold" ||
		doc.Cause.Playbook != "Ask team-risk to release it: handoff dlq replay "+hold.ID+" --broker URL" {
		t.Fatalf("show --json --rules: %v %+v\n%s", err, doc, out)
	}
	os.WriteFile(rules, []byte(`[{"name": "x", "class": "mine", "pattern": "y"}]`), 0o644)
	if out, err := runCLI(t, "dlq", "list", "--rules", rules, "--db", path); err == nil || !strings.Contains(err.Error(), "needs a playbook") {
		t.Fatalf("a rule without a playbook for its own class: %v\n%s", err, out)
	}

	out, err = runCLI(t, "dlq", "list", "--incidents", "--db", path)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "incident 1: ") || !strings.Contains(out, "dependency-down  20 letter(s), 20 open") || strings.Contains(out, "incident 3") {
		t.Fatalf("incidents:\n%s", out)
	}
	out, err = runCLI(t, "dlq", "list", "--incidents", "--json", "--db", path)
	var in []dlq.Incident
	if err != nil || json.Unmarshal([]byte(out), &in) != nil || len(in) != 2 {
		t.Fatalf("incidents --json: %v\n%s", err, out)
	}
}
