package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/handoffhq/handoff/system"
)

// handoff init writes a file that parses, refuses to overwrite it, and
// overwrites with --force.
func TestInitCLI(t *testing.T) {
	path := filepath.Join(t.TempDir(), "handoff.yaml")
	out, err := runCLI(t, "init", path)
	if err != nil || !strings.Contains(out, "wrote "+path) {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if _, err := system.Load(path); err != nil {
		t.Fatalf("the starter does not parse: %v", err)
	}
	if err := os.WriteFile(path, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, "init", path); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("init over an existing file: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(path); string(b) != "mine" {
		t.Fatalf("init overwrote the file: %q", b)
	}
	if out, err := runCLI(t, "init", "--force", path); err != nil {
		t.Fatalf("init --force: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "# handoff.yaml") {
		t.Fatalf("--force did not write the starter: %q", b[:20])
	}
	if out, err := runCLI(t, "init", "--help"); err != nil || !strings.Contains(out, "Usage: handoff init") {
		t.Fatalf("init --help: %v\n%s", err, out)
	}
}
