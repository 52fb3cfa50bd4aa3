package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handoffhq/handoff"
	"github.com/handoffhq/handoff/adapter/postgres"
	"github.com/handoffhq/handoff/consumer"
	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/internal/testenv"
)

// Dead letters made by a failing consumer are operated through handoff
// serve's API with the CLI: listed, a bulk replay chosen by group and
// error text counted by --dry-run (nothing changes), one letter edited,
// the bulk replay run (with its progress bar and a rate limit) and the
// replays consumed by the group that failed, the replayed letters purged
// (after a dry-run count), and one letter replayed by id.
func TestDLQ_OperatedThroughServe(t *testing.T) {
	ctx := context.Background()
	pg := testenv.PostgresURL(t)
	natsURL, client := embeddedNATS(t)
	const tok = "ops-token"
	server, _ := startServe(t, "--db", pg, "--broker", natsURL, "--token", tok)

	db, err := postgres.Open(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := dlq.New(postgres.DLQStore(db))
	if err != nil {
		t.Fatal(err)
	}
	topic := testenv.Unique("payments.")
	var mu sync.Mutex
	var replayed []string // data of the replays the group handled
	h := handoff.HandlerFunc(func(ctx context.Context, m *handoff.Message) error {
		if m.Extensions[dlq.ExtReplayOf] != "" {
			mu.Lock()
			replayed = append(replayed, string(m.Data))
			mu.Unlock()
			return nil
		}
		if strings.Contains(string(m.Data), "visa") {
			return handoff.Permanent(errors.New("charge: card declined by issuer"))
		}
		return handoff.Permanent(errors.New("address: postcode missing"))
	})
	c, err := consumer.New(client, topic, "billing", h, q)
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	cdone := make(chan error, 1)
	go func() { cdone <- c.Run(cctx) }()
	defer func() { stop(); <-cdone }()
	for i, card := range []string{"visa", "amex", "visa", "amex", "visa"} {
		m := handoff.NewMessage("/checkout", "payment.requested", []byte(fmt.Sprintf(`{"n":%d,"card":%q}`, i, card)))
		if err := client.Publish(ctx, topic, m); err != nil {
			t.Fatal(err)
		}
	}

	cli := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, append(append([]string{"dlq"}, args...), "--server", server, "--token", tok), nil, &out, &errb)
		return out.String(), errb.String(), err
	}
	must := func(args ...string) (string, string) {
		t.Helper()
		out, errs, err := cli(args...)
		if err != nil {
			t.Fatalf("dlq %v: %v\n%s", args, err, errs)
		}
		return out, errs
	}
	list := func(args ...string) []*dlq.Letter {
		t.Helper()
		out, _ := must(append([]string{"list", "--json", "--consumer", "billing", "--topic", topic}, args...)...)
		var ls []*dlq.Letter
		if err := json.Unmarshal([]byte(out), &ls); err != nil {
			t.Fatalf("list --json: %v: %s", err, out)
		}
		return ls
	}
	for deadline := time.Now().Add(30 * time.Second); len(list()) < 5; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the consumer's 5 letters never listed: %d", len(list()))
		}
	}
	if n := len(list("--error", "CARD DECLINED")); n != 3 {
		t.Fatalf("list --error: %d letters, want 3", n)
	}
	if ls := list("--error", "declined", "--limit", "2"); len(ls) != 2 || !strings.Contains(ls[1].Errors[0], "declined") {
		t.Fatalf("list --error --limit 2: %d letters", len(ls))
	}

	out, _ := must("replay", "--all", "--consumer", "billing", "--topic", topic, "--error", "declined", "--dry-run")
	if !strings.Contains(out, "would replay 3 dead letters") {
		t.Fatalf("dry run: %s", out)
	}
	if n := len(list("--state", "open")); n != 5 {
		t.Fatalf("after the dry run %d letters are open, want 5", n)
	}

	visa := list("--error", "declined")
	fixed := filepath.Join(t.TempDir(), "fixed.json")
	os.WriteFile(fixed, []byte(`{"n":0,"card":"visa","retry":true}`), 0o644)
	must("edit", visa[0].ID, "--data", fixed)
	if show, _ := must("show", visa[0].ID, "--json"); !strings.Contains(show, `"retry":true`) {
		t.Fatalf("the edit is not in the letter: %s", show)
	}

	out, progress := must("replay", "--all", "--consumer", "billing", "--topic", topic, "--error", "declined", "--rate", "1000")
	if !strings.Contains(out, "replayed 3") || !strings.Contains(progress, "3/3 replayed") || !strings.Contains(progress, "[####") {
		t.Fatalf("bulk replay: %q, progress %q", out, progress)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n, got := len(replayed), strings.Join(replayed, " ")
		mu.Unlock()
		if n == 3 {
			if !strings.Contains(got, `"retry":true`) {
				t.Fatalf("the edited letter was replayed unedited: %s", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group handled %d replays, want 3: %s", n, got)
		}
	}
	if n := len(list("--state", "open")); n != 2 {
		t.Fatalf("%d letters open after the replay, want the 2 others", n)
	}

	out, _ = must("purge", "--consumer", "billing", "--topic", topic, "--state", "replayed", "--dry-run")
	if !strings.Contains(out, "would purge 3 dead letters") || len(list()) != 5 {
		t.Fatalf("purge dry run: %s", out)
	}
	if _, _, err := cli("purge", "--consumer", "billing", "--topic", topic); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("purge without --yes: %v", err)
	}
	out, _ = must("purge", "--consumer", "billing", "--topic", topic, "--state", "replayed", "--yes")
	if !strings.Contains(out, "purged 3") || len(list()) != 2 {
		t.Fatalf("purge: %s; %d left", out, len(list()))
	}

	amex := list()
	out, _ = must("replay", amex[0].ID)
	if !strings.Contains(out, "replayed "+amex[0].ID+" to group billing of "+topic) {
		t.Fatalf("replay by id: %s", out)
	}
	if _, _, err := cli("replay", amex[0].ID); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("a second replay of one letter: %v", err)
	}
	var errb bytes.Buffer
	err = run(ctx, []string{"dlq", "list", "--server", server}, nil, &bytes.Buffer{}, &errb)
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "--token") {
		t.Fatalf("without the token: %v", err)
	}
}

// A server started without --broker lists, edits and purges dead letters;
// a replay says which flag it lacks.
func TestDLQ_ServeWithoutBrokerSaysReplayNeedsOne(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "h.db")
	server, _ := startServe(t, "--db", path, "--insecure")
	var db *database
	db, err := openDB(ctx, "db", path, dbOpen{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, _ := dlq.New(db.dlqStore())
	l := &dlq.Letter{Consumer: "g", Topic: "t", Errors: []string{"boom"}, Message: handoff.NewMessage("/s", "x", []byte(`{}`))}
	if err := q.Add(ctx, l); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err = run(ctx, []string{"dlq", "replay", l.ID, "--server", server}, nil, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "502") || !strings.Contains(err.Error(), "--broker") {
		t.Fatalf("replay without a broker: %v", err)
	}
	if err := run(ctx, []string{"dlq", "purge", "--yes", "--server", server}, nil, &out, &errb); err != nil || !strings.Contains(out.String(), "purged 1") {
		t.Fatalf("purge: %v %s", err, out.String())
	}
}

// On a database (--db), the bulk commands take --error and --dry-run too,
// and --limit counts the letters whose errors match.
func TestDLQ_BulkByErrorTextOnADatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "h.db")
	db, err := openDB(ctx, "db", path, dbOpen{migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, _ := dlq.New(db.dlqStore())
	for _, e := range []string{"address: postcode missing", "charge: card declined", "charge: Card Declined", "charge: card declined"} {
		if err := q.Add(ctx, &dlq.Letter{Consumer: "billing", Topic: "payments", Errors: []string{e},
			Message: handoff.NewMessage("/s", "x", []byte(`{}`))}); err != nil {
			t.Fatal(err)
		}
	}
	cli := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(ctx, append(append([]string{"dlq"}, args...), "--db", path), nil, &out, &errb); err != nil {
			t.Fatalf("dlq %v: %v\n%s", args, err, errb.String())
		}
		return out.String()
	}
	var ls []*dlq.Letter
	json.Unmarshal([]byte(cli("list", "--json", "--error", "declined", "--limit", "2")), &ls)
	if len(ls) != 2 || !strings.Contains(ls[0].Errors[0], "declined") || !strings.Contains(ls[1].Errors[0], "eclined") {
		t.Fatalf("list --error --limit 2: %+v", ls)
	}
	if out := cli("replay", "--all", "--error", "declined", "--dry-run"); !strings.Contains(out, "would replay 3 dead letters") {
		t.Fatalf("replay dry run (no broker needed): %s", out)
	}
	if out := cli("purge", "--error", "declined", "--dry-run"); !strings.Contains(out, "would purge 3 dead letters") {
		t.Fatalf("purge dry run: %s", out)
	}
	if out := cli("purge", "--error", "declined", "--yes"); !strings.Contains(out, "purged 3") {
		t.Fatalf("purge: %s", out)
	}
	ls = nil
	json.Unmarshal([]byte(cli("list", "--json")), &ls)
	if len(ls) != 1 || !strings.Contains(ls[0].Errors[0], "postcode") {
		t.Fatalf("left: %+v", ls)
	}
}
