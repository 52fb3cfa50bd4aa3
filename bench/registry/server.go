package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// buildHandoff builds the handoff command from the module at src into dir.
// It builds in the main module (not this one) so that the bench module needs
// none of the registry's dependencies.
func buildHandoff(ctx context.Context, src, dir string) (string, error) {
	bin := filepath.Join(dir, "handoff")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/handoff")
	cmd.Dir = src
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/handoff in %s: %w\n%s", src, err, out)
	}
	return bin, nil
}

// server is a `handoff registry serve` process.
type server struct {
	cmd     *exec.Cmd
	url     string
	pid     int
	logPath string
	done    chan error // the process's exit
}

// startServer runs `bin registry serve --db db --addr 127.0.0.1:0` and waits
// for the line with its URL.
func startServer(bin, db, logPath string) (*server, error) {
	args := []string{"registry", "serve", "--db", db, "--addr", "127.0.0.1:0"}
	// Since issue 10 serving without a token needs --insecure; binaries
	// built before it do not know the flag (and serve without it).
	if help, _ := exec.Command(bin, "registry", "serve", "--help").CombinedOutput(); strings.Contains(string(help), "-insecure") {
		args = append(args, "--insecure")
	}
	cmd := exec.Command(bin, args...)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &server{cmd: cmd, pid: cmd.Process.Pid, logPath: logPath, done: make(chan error, 1)}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "schema registry"); ok && !sent {
				urlc <- strings.TrimSpace(rest)
				sent = true
			}
		}
		io.Copy(io.Discard, stdout)
		s.done <- cmd.Wait()
	}()
	select {
	case s.url = <-urlc:
		return s, nil
	case err := <-s.done:
		s.done <- err
		return nil, fmt.Errorf("registry server exited before printing its URL: %v (log: %s)", err, tail(logPath))
	case <-time.After(60 * time.Second):
		s.stop()
		return nil, fmt.Errorf("registry server printed no URL in 60s (log: %s)", tail(logPath))
	}
}

// stop sends SIGTERM to the server's PID, then SIGKILL after 5 s.
func (s *server) stop() error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case err := <-s.done:
		s.done <- err
		return nil
	case <-time.After(5 * time.Second):
	}
	s.cmd.Process.Kill()
	err := <-s.done
	s.done <- err
	return fmt.Errorf("registry server %d did not stop within 5s of SIGTERM; killed", s.pid)
}

// tail returns the last lines of a file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}
