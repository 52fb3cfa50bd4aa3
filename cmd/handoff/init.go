package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/handoffhq/handoff/system"
)

// initCmd writes a commented starting handoff.yaml, refusing to overwrite an
// existing file unless --force.
func initCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	force := fs.Bool("force", false, "overwrite an existing file")
	setUsage(fs, "init [--force] [FILE]   write a commented handoff.yaml (default ./handoff.yaml)")
	if err := parseArgs(fs, args, stdout); err != nil {
		return err
	}
	path := system.FileName
	switch fs.NArg() {
	case 0:
	case 1:
		path = fs.Arg(0)
	default:
		return errors.New("init: at most one FILE")
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if *force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("init: %s exists; --force overwrites it", path)
	}
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if _, err := f.Write(system.Starter()); err != nil {
		f.Close()
		return fmt.Errorf("init: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s: describe your services, then run handoff check\n", path)
	return nil
}
