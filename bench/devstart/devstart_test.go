// Package devstart measures how long `handoff dev` takes from process start
// to a 200 from /readyz, on a fresh data directory and on one kept from an
// earlier run (a restart). The binary is built once, before timing.
//
//	cd bench && go test ./devstart -run '^$' -bench . -benchtime 10x
package devstart

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func build(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "handoff")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/handoff")
	cmd.Dir = filepath.Join("..", "..") // the main module: its go.mod, not the bench's
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startToReady runs bin dev in dir and returns the time from exec to the
// first 200 from /readyz; it stops the process with SIGINT and waits.
func startToReady(b *testing.B, bin, dir string) time.Duration {
	b.Helper()
	cmd := exec.Command(bin, "dev", "--data-dir", dir, "--addr", "127.0.0.1:0", "--demo-interval", "1h", "--traces", "none")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = nil
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
	}()
	ready := ""
	sc := bufio.NewScanner(stdout)
	for ready == "" && sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "ready" {
			ready = f[1]
		}
	}
	if ready == "" {
		b.Fatal("handoff dev printed no ready URL")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	for deadline := start.Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		res, err := http.Get(ready)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return time.Since(start)
			}
		}
	}
	b.Fatal("not ready within 60s")
	return 0
}

func report(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	b.ReportMetric(float64(s[len(s)/2].Microseconds())/1000, "ms-median-to-ready")
	b.ReportMetric(float64(s[len(s)-1].Microseconds())/1000, "ms-max-to-ready")
}

// BenchmarkDevStartToReady/fresh: a new data directory each time (migrations,
// the NATS store, the demo's schema); /restart: the same directory again.
func BenchmarkDevStartToReady(b *testing.B) {
	bin := build(b)
	b.Run("fresh", func(b *testing.B) {
		var ds []time.Duration
		for b.Loop() {
			dir, err := os.MkdirTemp("", "handoff-devstart-")
			if err != nil {
				b.Fatal(err)
			}
			ds = append(ds, startToReady(b, bin, dir))
			os.RemoveAll(dir)
		}
		report(b, ds)
	})
	b.Run("restart", func(b *testing.B) {
		dir := b.TempDir()
		startToReady(b, bin, dir)
		var ds []time.Duration
		for b.Loop() {
			ds = append(ds, startToReady(b, bin, dir))
		}
		report(b, ds)
	})
}
