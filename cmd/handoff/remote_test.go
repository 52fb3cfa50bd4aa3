package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/dlq"
)

// dlq list and show with --server read the same letters through handoff
// dev's API as --db reads from its database, in the same JSON; list follows
// the API's pages; a purge through the API deletes from the database.
func TestDLQ_ListAndShowOverServer(t *testing.T) {
	dir := t.TempDir()
	urls, _ := startDev(t, dir)
	server := strings.TrimSuffix(urls["health"], "/healthz")
	db := filepath.Join(dir, "handoff.db")
	cli := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, nil, &out, &errb)
		return out.String(), errb.String(), err
	}
	var remote string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, errs, err := cli("dlq", "list", "--json", "--server", server)
		if err != nil {
			t.Fatalf("dlq list --server: %v %s", err, errs)
		}
		var ls []map[string]any
		if err := json.Unmarshal([]byte(out), &ls); err != nil {
			t.Fatalf("dlq list --server --json: %v: %s", err, out)
		}
		if len(ls) == 3 {
			remote = out
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo's 3 letters never listed: %s", out)
		}
	}
	local, _, err := cli("dlq", "list", "--json", "--db", db)
	if err != nil {
		t.Fatal(err)
	}
	if remote != local {
		t.Fatalf("--server and --db differ:\n%s\n%s", remote, local)
	}
	// Pages of one letter, followed through the Link header.
	remotePage = 1
	defer func() { remotePage = dlq.MaxPage }()
	all, _, err := cli("dlq", "list", "--json", "--server", server)
	if err != nil || all != local {
		t.Fatalf("paged by one: %v\n%s\nwant\n%s", err, all, local)
	}
	paged, _, err := cli("dlq", "list", "--json", "--server", server, "--limit", "2")
	if err != nil {
		t.Fatal(err)
	}
	var ls []struct{ ID string }
	json.Unmarshal([]byte(paged), &ls)
	if len(ls) != 2 {
		t.Fatalf("--limit 2: %s", paged)
	}
	text, _, err := cli("dlq", "list", "--server", server, "--class", "permanent")
	if err != nil || !strings.Contains(text, "permanent") || strings.Contains(text, "schema") {
		t.Fatalf("list --class permanent: %v %s", err, text)
	}
	show, _, err := cli("dlq", "show", ls[0].ID, "--server", server)
	if err != nil || !strings.Contains(show, ls[0].ID) {
		t.Fatalf("show: %v %s", err, show)
	}
	if _, _, err := cli("dlq", "show", "01a2467c-0000-7000-8000-000000000000", "--server", server); err == nil ||
		!strings.Contains(err.Error(), "404") {
		t.Errorf("show of an unknown id: %v", err)
	}
	// dev's API takes writes too (as serve's does): a purge through it
	// deletes the letters from the database.
	if out, errs, err := cli("dlq", "purge", "--yes", "--server", server); err != nil {
		t.Errorf("purge --server: %v %s %s", err, out, errs)
	}
	if left, _, err := cli("dlq", "list", "--json", "--db", db); err != nil || strings.Contains(left, `"id"`) {
		t.Errorf("after purge --server the database holds: %v %s", err, left)
	}
	if _, _, err := cli("dlq", "list", "--server", "127.0.0.1:8477"); err == nil || !strings.Contains(err.Error(), "--server") {
		t.Errorf("bad --server: %v", err)
	}
}

// With dev's --token (issue 10's guard), --server needs --token too: a
// missing one is a 401 that says so.
func TestDLQ_ServerTokenEnforced(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--demo=false", "--token", "s3cret"},
			nil, stdout, stderr)
	}()
	defer func() { cancel(); <-done }()
	server := ""
	for deadline := time.Now().Add(30 * time.Second); server == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no URLs: %q %q", stdout.String(), stderr.String())
		}
		for _, line := range strings.Split(stdout.String(), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "health" {
				server = strings.TrimSuffix(f[1], "/healthz")
			}
		}
	}
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"dlq", "list", "--server", server}, nil, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("without --token: %v", err)
	}
	if err := run(context.Background(), []string{"dlq", "list", "--server", server, "--token", "s3cret"}, nil, &out, &errb); err != nil {
		t.Fatalf("with --token: %v", err)
	}
}
