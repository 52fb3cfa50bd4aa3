package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// handoff registry serve prints its URL, needs the token for writes, serves
// reads openly with --open-reads, and stops cleanly on cancel.
func TestRegistryServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	db := filepath.Join(t.TempDir(), "registry.db")
	go func() {
		done <- run(ctx, []string{"registry", "serve", "--db", db, "--addr", "127.0.0.1:0", "--token", "t0ken", "--open-reads"}, nil, stdout, stderr)
	}()
	base := ""
	deadline := time.Now().Add(30 * time.Second)
	for base == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no URL printed; stdout %q stderr %q", stdout.String(), stderr.String())
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v; stderr %q", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		sc := bufio.NewScanner(strings.NewReader(stdout.String()))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "schema" && f[1] == "registry" {
				base = f[2]
			}
		}
	}
	post := func(token string) int {
		req, _ := http.NewRequest("POST", base+"/subjects/s-value/versions", strings.NewReader(`{"schema":"\"string\""}`))
		req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if st := post(""); st != 401 {
		t.Fatalf("register without token: %d, want 401", st)
	}
	if st := post("t0ken"); st != 200 {
		t.Fatalf("register with token: %d, want 200", st)
	}
	res, err := http.Get(base + "/subjects")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || strings.TrimSpace(string(body)) != `["s-value"]` {
		t.Fatalf("open read of /subjects: %d %s", res.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v on cancel", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func TestRegistryServe_BadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"registry"},
		{"registry", "nope"},
		{"registry", "serve"},
		{"registry", "serve", "--db", filepath.Join(t.TempDir(), "r.db"), "--compatibility", "SIDEWAYS"},
		{"registry", "serve", "--db", filepath.Join(t.TempDir(), "r.db"), "--json-draft", "draft-05"},
	} {
		if err := run(context.Background(), args, nil, io.Discard, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
