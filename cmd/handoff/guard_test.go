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

// handoff dev on a network address without a token does not start; nor
// does handoff registry serve without --token (unless --insecure).
func TestServe_RefusesToStartOpen(t *testing.T) {
	for _, args := range [][]string{
		{"dev", "--data-dir", t.TempDir(), "--addr", "0.0.0.0:0"},
		{"registry", "serve", "--db", filepath.Join(t.TempDir(), "r.db"), "--addr", "127.0.0.1:0"},
	} {
		err := run(context.Background(), args, nil, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--token") || !strings.Contains(err.Error(), "--insecure") {
			t.Errorf("%v: %v, want a refusal naming --token and --insecure", args, err)
		}
	}
}

// startGuardedDev runs handoff dev on dir and returns its registry URL once the
// demo schema is registered, and a stop function.
func startGuardedDev(t *testing.T, dir string) (string, *syncBuffer, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--data-dir", dir, "--addr", "127.0.0.1:0", "--demo-interval", "1h"}, nil, stdout, stderr)
	}()
	stop := func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("dev returned %v on cancel", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("dev did not stop within 30s of cancel")
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("dev not up; stdout %q stderr %q", stdout.String(), stderr.String())
		}
		select {
		case err := <-done:
			t.Fatalf("dev exited early: %v; stderr %q", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		sc := bufio.NewScanner(strings.NewReader(stdout.String()))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "schema" && f[1] == "registry" {
				if res, err := http.Get(f[2] + "/subjects/demo.orders-value/versions/latest"); err == nil {
					res.Body.Close()
					if res.StatusCode == 200 && strings.Contains(stderr.String(), "demo") {
						return f[2], stderr, stop
					}
				}
			}
		}
	}
}

// handoff dev refuses a foreign Host (DNS rebinding) and cross-site writes;
// a READONLY mode set through its API does not stop the next start.
func TestDev_GuardsAndStartsAfterReadOnly(t *testing.T) {
	dir := t.TempDir()
	reg, _, stop := startGuardedDev(t, dir)
	do := func(method, path, ctype, body string, hdr map[string]string) int {
		t.Helper()
		req, _ := http.NewRequest(method, reg+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for k, v := range hdr {
			if k == "Host" {
				req.Host = v
			} else {
				req.Header.Set(k, v)
			}
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	schemaBody := `{"schema":"{\"type\":\"object\"}","schemaType":"JSON"}`
	if st := do("GET", "/subjects", "", "", map[string]string{"Host": "attacker.example:8477"}); st != 421 {
		t.Errorf("foreign Host: %d, want 421", st)
	}
	if st := do("POST", "/subjects/x/versions", "text/plain", schemaBody, map[string]string{"Origin": "https://attacker.example"}); st != 403 {
		t.Errorf("cross-site text/plain write: %d, want 403", st)
	}
	if st := do("POST", "/subjects/x/versions", "text/plain", schemaBody, nil); st != 415 {
		t.Errorf("text/plain write: %d, want 415", st)
	}
	if st := do("PUT", "/mode", "application/json", `{"mode":"READONLY"}`, nil); st != 200 {
		t.Fatalf("PUT /mode READONLY: %d", st)
	}
	stop()

	_, stderr, stop := startGuardedDev(t, dir)
	defer stop()
	// Other lines name the demo too (the dead-letter alert of the first
	// run's letters): wait for the one about the registry.
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(stderr.String(), "refuses registrations"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not say it used the registered schema: %q", stderr.String())
		}
	}
}
