// Command hostile measures what a hostile schema costs to parse, with
// handoff's parse limits off (the code before issue 10 parsed every schema
// so) and on (schema.DefaultLimits): CPU seconds and peak RSS of a fresh
// process per case, as the registry would spend them on one request.
//
//	cd bench && go run ./hostile            # every case, limits off then on
//	cd bench && go run ./hostile -cases json-depth-1000,json-props-10000
//
// Each case runs in a child process (this program with -child), so peak
// RSS is the case's own; a child over -timeout is killed and reported so.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/handoffhq/handoff/schema"
)

var allCases = "json-depth-1000,json-depth-2000,json-props-10000,json-props-30000,json-props-100000," +
	"avro-depth-1000,avro-fields-30000,proto-depth-1000,proto-fields-30000"

func main() {
	child := flag.String("child", "", "internal: run one case (case:limits) and print its cost")
	cases := flag.String("cases", allCases, "comma-separated cases: {json,avro,proto}-{depth,props,fields}-N")
	modes := flag.String("limits", "off,on", "limit settings to run: off (schema.NoLimits), on (schema.DefaultLimits)")
	timeout := flag.Duration("timeout", 5*time.Minute, "kill a case after this long")
	flag.Parse()
	if *child != "" {
		os.Exit(runChild(*child))
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("| case | body | limits | result | CPU s | peak RSS MB |")
	fmt.Println("|---|---:|---|---|---:|---:|")
	for _, c := range strings.Split(*cases, ",") {
		for _, m := range strings.Split(*modes, ",") {
			ctx, cancel := context.WithTimeout(context.Background(), *timeout)
			cmd := exec.CommandContext(ctx, self, "-child", c+":"+m)
			out, err := cmd.Output()
			cancel()
			line := strings.TrimSpace(string(out))
			if err != nil && line == "" {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					ru := ee.ProcessState.SysUsage().(*syscall.Rusage)
					line = fmt.Sprintf("| %s | | %s | killed after %s | %.1f | %d |", c, m, *timeout,
						cpu(ru), ru.Maxrss/1024)
				} else {
					line = fmt.Sprintf("| %s | | %s | %v | | |", c, m, err)
				}
			}
			fmt.Println(line)
		}
	}
}

func cpu(ru *syscall.Rusage) float64 {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func runChild(arg string) int {
	name, mode, _ := strings.Cut(arg, ":")
	s, err := build(name)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	limits := schema.NoLimits
	if mode == "on" {
		limits = schema.Limits{}
	}
	var before syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	_, perr := schema.ParseContext(context.Background(), s, limits)
	var after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	result := "parsed"
	if perr != nil {
		result = "refused: " + strings.ReplaceAll(perr.Error(), "|", "/")
		if len(result) > 110 {
			result = result[:110] + "…"
		}
	}
	fmt.Printf("| %s | %d KB | %s | %s | %.3f | %d |\n", name, len(s.Text)/1024, mode, result,
		cpu(&after)-cpu(&before), after.Maxrss/1024)
	return 0
}

// build makes the schema a case names.
func build(name string) (schema.Schema, error) {
	parts := strings.Split(name, "-")
	if len(parts) != 3 {
		return schema.Schema{}, fmt.Errorf("case %q: want lang-shape-N", name)
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil {
		return schema.Schema{}, fmt.Errorf("case %q: %v", name, err)
	}
	var b strings.Builder
	switch parts[0] + "-" + parts[1] {
	case "json-depth":
		for range n {
			b.WriteString(`{"type":"object","properties":{"a":`)
		}
		b.WriteString(`{"type":"string"}`)
		for range n {
			b.WriteString(`}}`)
		}
		return schema.Schema{Type: schema.JSON, Text: b.String()}, nil
	case "json-props", "json-fields":
		b.WriteString(`{"type":"object","properties":{`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"p%d":{"type":"string"}`, i)
		}
		b.WriteString(`}}`)
		return schema.Schema{Type: schema.JSON, Text: b.String()}, nil
	case "avro-depth":
		for i := range n {
			fmt.Fprintf(&b, `{"type":"record","name":"R%d","fields":[{"name":"a","type":`, i)
		}
		b.WriteString(`"string"`)
		for range n {
			b.WriteString(`}]}`)
		}
		return schema.Schema{Type: schema.Avro, Text: b.String()}, nil
	case "avro-fields", "avro-props":
		b.WriteString(`{"type":"record","name":"R","fields":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"f%d","type":"string"}`, i)
		}
		b.WriteString(`]}`)
		return schema.Schema{Type: schema.Avro, Text: b.String()}, nil
	case "proto-depth":
		b.WriteString("syntax = \"proto3\";\n")
		for i := range n {
			fmt.Fprintf(&b, "message M%d { string s = 1;\n", i)
		}
		for range n {
			b.WriteString("}\n")
		}
		return schema.Schema{Type: schema.Protobuf, Text: b.String()}, nil
	case "proto-fields", "proto-props":
		b.WriteString("syntax = \"proto3\";\nmessage M {\n")
		for i := range n {
			fmt.Fprintf(&b, "  string f%d = %d;\n", i, i+1)
		}
		b.WriteString("}\n")
		return schema.Schema{Type: schema.Protobuf, Text: b.String()}, nil
	}
	return schema.Schema{}, fmt.Errorf("case %q: unknown", name)
}
