package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// parseArgs parses args with fs, taking flags wherever they stand among the
// positional arguments (Go's flag package stops at the first non-flag, so
// "dlq edit ID --db X" would ignore --db); "--" ends the flags. Asked for
// help (-h, -help, --help), it prints the usage to stdout and returns
// flag.ErrHelp, which run turns into a clean exit.
func parseArgs(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		if name == "h" || name == "help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return flag.ErrHelp
		}
		flags = append(flags, a)
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // fs.Parse names it
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return fs.Parse(append(flags, append([]string{"--"}, pos...)...))
}

// setUsage sets fs's usage text: a synopsis, then the flags.
func setUsage(fs *flag.FlagSet, synopsis string) {
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: handoff %s\n", synopsis)
		has := false
		fs.VisitAll(func(*flag.Flag) { has = true })
		if has {
			fmt.Fprintln(w, "\nFlags (anywhere among the arguments):")
			fs.PrintDefaults()
		}
	}
}
