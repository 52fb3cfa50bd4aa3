package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRun_UnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"frobnicate"}, nil, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(errb.String(), "handoff dev") {
		t.Fatalf("usage not printed: %q", errb.String())
	}
}

// handoff dev comes up healthy, prints its URLs, runs the demo flow with
// exactly-once effects, and stops cleanly on cancel.
func TestDev_ComesUpHealthyAndRunsTheDemo(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--data-dir", dir, "--addr", "127.0.0.1:0", "--demo-interval", "50ms"}, nil, stdout, stderr)
	}()

	healthURL := ""
	deadline := time.Now().Add(30 * time.Second)
	for healthURL == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no health URL printed; stdout %q stderr %q", stdout.String(), stderr.String())
		}
		select {
		case err := <-done:
			t.Fatalf("dev exited early: %v; stderr %q", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		sc := bufio.NewScanner(strings.NewReader(stdout.String()))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 2 && f[0] == "health" {
				healthURL = f[1]
			}
		}
	}
	if !strings.Contains(stdout.String(), "nats             nats://127.0.0.1:") {
		t.Fatalf("NATS URL not printed on its own line: %q", stdout.String())
	}
	// The registry's base URL is on a line of its own; the demo registered
	// its schema there, and Confluent's API answers.
	registryURL := ""
	sc := bufio.NewScanner(strings.NewReader(stdout.String()))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "schema" && f[1] == "registry" {
			registryURL = f[2]
		}
	}
	if registryURL == "" {
		t.Fatalf("no schema registry URL printed: %q", stdout.String())
	}
	// The demo registers its schema after the URLs are printed: wait for it.
	for {
		res, err := http.Get(registryURL + "/subjects/demo.orders-value/versions/latest")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == 200 {
			if !strings.Contains(string(body), `"schemaType":"JSON"`) {
				t.Fatalf("registry: GET latest demo schema: %s", body)
			}
			break
		}
		if res.StatusCode != 404 || time.Now().After(deadline) {
			t.Fatalf("registry: GET latest demo schema: %d %s", res.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Healthy, and the demo flow reaches the consumer's inbox handler.
	for {
		if time.Now().After(deadline) {
			t.Fatalf("not healthy with a demo shipment in time; stderr %q", stderr.String())
		}
		res, err := http.Get(healthURL)
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var h struct{ Status string }
			json.Unmarshal(body, &h)
			if res.StatusCode == 200 && h.Status == "ok" && strings.Contains(stderr.String(), "shipment created") {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev returned %v on cancel", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not stop within 30s of cancel")
	}
	if !strings.Contains(stderr.String(), "handoff dev: stopped") {
		t.Fatalf("no clean stop logged: %q", stderr.String())
	}
}
