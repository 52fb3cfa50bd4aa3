package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// leftover returns the stacks of goroutines still running code of handoff
// dev's parts: the HTTP server, NATS (server and client), the relay, the
// consumer, the inbox, the demo flow.
func leftover(before map[string]bool) []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var left []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		// A goroutine that was there before this dev started is not
		// one of its parts: an embedded NATS server of an earlier test
		// of the process can finish stopping a stream after its
		// Shutdown returned.
		if before[goroutineID(g)] {
			continue
		}
		if strings.Contains(g, "TestDev_StopsEveryPart") || strings.Contains(g, "testing.tRunner") && !strings.Contains(g, "handoff/cmd/handoff.dev") {
			continue
		}
		for _, mark := range []string{"net/http.(*Server).Serve", "nats-server", "nats-io/nats.go", "handoff/relay.", "handoff/consumer.",
			"handoff/inbox.", "handoff/examples/demo/orders.", "handoff/cmd/handoff.dev", "errgroup"} {
			if strings.Contains(g, mark) {
				left = append(left, g)
				break
			}
		}
	}
	return left
}

// goroutines returns the ids of the goroutines running now.
func goroutines() map[string]bool {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	ids := map[string]bool{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		ids[goroutineID(g)] = true
	}
	return ids
}

// goroutineID is the id in a stack dump's "goroutine N [state]:" line.
func goroutineID(g string) string {
	f := strings.Fields(strings.TrimSpace(g))
	if len(f) < 2 || f[0] != "goroutine" {
		return ""
	}
	return f[1]
}

// handoff dev stops every part on every way out: cancelled by its caller
// (with a client's connection open that has sent no request), and when one
// part fails (the others are cancelled and waited for, and the failure is
// returned). Afterwards its ports are closed and none of its
// goroutines is left.
func TestDev_StopsEveryPartOnEveryExit(t *testing.T) {
	for _, exit := range []string{"cancel", "failure"} {
		t.Run(exit, func(t *testing.T) {
			boom := errors.New("boom")
			started := make(chan struct{})
			var stopped atomic.Bool
			devFault = func(ctx context.Context) error {
				close(started)
				if exit == "failure" {
					return boom
				}
				// A part slow to stop: dev must wait for it.
				<-ctx.Done()
				time.Sleep(300 * time.Millisecond)
				stopped.Store(true)
				return nil
			}
			t.Cleanup(func() { devFault = nil })
			before := goroutines()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stdout, stderr := &syncBuffer{}, &syncBuffer{}
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, []string{"dev", "--data-dir", t.TempDir(), "--addr", "127.0.0.1:0", "--demo-interval", "20ms"}, nil, stdout, stderr)
			}()
			<-started
			if exit == "cancel" {
				// Let the demo flow come up before stopping it.
				for deadline := time.Now().Add(30 * time.Second); !strings.Contains(stderr.String(), "shipment created"); {
					if time.Now().After(deadline) {
						t.Fatalf("no shipment; stderr %q", stderr.String())
					}
					time.Sleep(20 * time.Millisecond)
				}
				// A client's connection that has sent no request yet must
				// not hold up the stop.
				base := ""
				for _, line := range strings.Split(stdout.String(), "\n") {
					if f := strings.Fields(line); len(f) == 2 && f[0] == "health" {
						base = strings.TrimSuffix(strings.TrimPrefix(f[1], "http://"), "/healthz")
					}
				}
				idle, err := net.Dial("tcp", base)
				if err != nil {
					t.Fatal(err)
				}
				defer idle.Close()
				cancel()
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				t.Fatalf("dev did not return; goroutines:\n%s", strings.Join(leftover(before), "\n\n"))
			}
			switch exit {
			case "cancel":
				if err != nil {
					t.Fatalf("dev returned %v on cancel", err)
				}
				if !stopped.Load() {
					t.Fatal("dev returned before a part slow to stop had stopped")
				}
			case "failure":
				if !errors.Is(err, boom) {
					t.Fatalf("dev returned %v, want the failure", err)
				}
			}
			// The ports it printed no longer accept connections.
			sc := bufio.NewScanner(strings.NewReader(stdout.String()))
			var addrs []string
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) < 2 || !strings.Contains(f[len(f)-1], "://") {
					continue
				}
				u, err := url.Parse(f[len(f)-1])
				if err != nil {
					t.Fatal(err)
				}
				addrs = append(addrs, u.Host)
			}
			if len(addrs) < 2 {
				t.Fatalf("no addresses printed: %q", stdout.String())
			}
			for _, a := range addrs {
				if c, err := net.Dial("tcp", a); err == nil {
					c.Close()
					t.Errorf("%s still accepts connections after dev returned", a)
				}
			}
			// No goroutine of its parts is left (some finish their last
			// step just after they are told to; give them a moment).
			var left []string
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if left = leftover(before); len(left) == 0 || time.Now().After(deadline) {
					break
				}
			}
			if len(left) > 0 {
				t.Fatalf("%d goroutines left after dev returned:\n%s", len(left), strings.Join(left, "\n\n"))
			}
		})
	}
}
