package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/handoffhq/handoff/dlq"
	"github.com/handoffhq/handoff/examples/demo/orders"
)

// startDev runs handoff dev in dir and returns the URLs it printed.
func startDev(t *testing.T, dir string) (urls map[string]string, stderr *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--data-dir", dir, "--addr", "127.0.0.1:0", "--demo-interval", "1h"}, nil, stdout, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("dev: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("dev did not stop")
		}
	})
	urls = map[string]string{}
	for deadline := time.Now().Add(30 * time.Second); urls["data"] == ""; {
		if time.Now().After(deadline) {
			t.Fatalf("dev printed no URLs; stdout %q stderr %q", stdout.String(), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
		sc := bufio.NewScanner(strings.NewReader(stdout.String()))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) >= 2 {
				urls[strings.Join(f[:len(f)-1], " ")] = f[len(f)-1]
			}
		}
	}
	return urls, stderr
}

// The newcomer's walk through the README: handoff dev's demo makes dead
// letters at start; dlq list shows them with their classes (and so does
// /dead-letters, in the same JSON); show explains one; edit fixes its data;
// replay sends it back to the consumer, which then handles it.
func TestDev_DemoDeadLettersListShowEditReplayHandled(t *testing.T) {
	dir := t.TempDir()
	urls, stderr := startDev(t, dir)
	db := filepath.Join(dir, "handoff.db")
	ctx := context.Background()
	cli := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(ctx, append([]string{"dlq"}, append(args, "--db", db)...), nil, &out, &errb); err != nil {
			t.Fatalf("dlq %v: %v\n%s", args, err, errb.String())
		}
		return out.String()
	}
	var letters []*dlq.Letter
	for deadline := time.Now().Add(30 * time.Second); len(letters) < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("dlq list shows %d letters, want the demo's 3; dev said:\n%s", len(letters), stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
		letters = nil
		json.Unmarshal([]byte(cli("list", "--json")), &letters)
	}
	var classes []string
	var blocked *dlq.Letter
	for _, l := range letters {
		classes = append(classes, l.Class)
		if l.Class == dlq.ClassPermanent {
			blocked = l
		}
	}
	sort.Strings(classes)
	if fmt.Sprint(classes) != "[invalid permanent schema]" {
		t.Fatalf("demo letters of classes %v, want invalid, permanent and schema", classes)
	}
	if list := cli("list"); !strings.Contains(list, "permanent") || !strings.Contains(list, "schema") {
		t.Fatalf("dlq list does not show the classes:\n%s", list)
	}
	res, err := http.Get(urls["dead letters"] + "?state=open")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var served []*dlq.Letter
	if err := json.Unmarshal(body, &served); res.StatusCode != 200 || err != nil || len(served) != 3 {
		t.Fatalf("GET /dead-letters: %d %s (%v)", res.StatusCode, body, err)
	}

	show := cli("show", blocked.ID)
	if !strings.Contains(show, "on hold") || !strings.Contains(show, orders.Blocked) {
		t.Fatalf("show does not explain the failure:\n%s", show)
	}
	var order orders.Order
	json.Unmarshal(blocked.Message.Data, &order)
	order.Customer = "c-1"
	fixed, _ := json.Marshal(order)
	file := filepath.Join(t.TempDir(), "fixed.json")
	os.WriteFile(file, fixed, 0o644)
	cli("edit", blocked.ID, "--data", file)
	if out := cli("replay", blocked.ID, "--broker", urls["nats"]); !strings.Contains(out, "to group "+orders.Group) {
		t.Fatalf("replay said %q", out)
	}
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(stderr.String(), "shipment created (inbox: exactly once)\" order="+order.Order); {
		if time.Now().After(deadline) {
			t.Fatalf("the replayed order %s was not handled; dev said:\n%s", order.Order, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var after dlq.Letter
	json.Unmarshal([]byte(cli("show", blocked.ID, "--json")), &after)
	if after.Open() {
		t.Fatal("the replayed letter is still open")
	}
}
