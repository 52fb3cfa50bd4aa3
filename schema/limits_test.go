package schema

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

func deepJSON(n int) string {
	return strings.Repeat(`{"type":"object","properties":{"a":`, n) + `{"type":"string"}` + strings.Repeat(`}}`, n)
}

func wideJSON(n int) string {
	var b strings.Builder
	b.WriteString(`{"type":"object","properties":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"p%d":{"type":"string"}`, i)
	}
	b.WriteString(`}}`)
	return b.String()
}

func deepAvro(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"type":"record","name":"R%d","fields":[{"name":"a","type":`, i)
	}
	b.WriteString(`"string"`)
	b.WriteString(strings.Repeat(`}]}`, n))
	return b.String()
}

func wideAvro(n int) string {
	var b strings.Builder
	b.WriteString(`{"type":"record","name":"R","fields":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"f%d","type":"string"}`, i)
	}
	b.WriteString(`]}`)
	return b.String()
}

func deepProto(n int) string {
	var b strings.Builder
	b.WriteString("syntax = \"proto3\";\n")
	for i := range n {
		fmt.Fprintf(&b, "message M%d { string s = 1;\n", i)
	}
	b.WriteString(strings.Repeat("}\n", n))
	return b.String()
}

func wideProto(n int) string {
	var b strings.Builder
	b.WriteString("syntax = \"proto3\";\n// a comment; with { braces\nmessage M {\n  option deprecated = true; string s0 = 1 [json_name = \"a;{b\"];\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, "  string f%d = %d;\n", i, i+1)
	}
	b.WriteString("}\n")
	return b.String()
}

// Each hostile shape is refused before any parser sees it, with an error
// naming the limit and its value, and at a cost independent of the
// parser's: a few allocations.
func TestParseContext_RefusesOverLimits(t *testing.T) {
	cases := []struct {
		name  string
		s     Schema
		limit string
		value int
	}{
		{"JSON 2,000 levels deep", Schema{Type: JSON, Text: deepJSON(2000)}, "MaxDepth", 1000},
		{"JSON 100,000 properties", Schema{Type: JSON, Text: wideJSON(100_000)}, "MaxNodes", 20_000},
		{"JSON deep reference", Schema{Type: JSON, Text: `{"$ref":"r.json"}`, References: map[string]string{"r.json": deepJSON(600)}}, "MaxDepth", 1000},
		{"JSON wide across references", Schema{Type: JSON, Text: wideJSON(6000), References: map[string]string{"a.json": wideJSON(6000)}}, "MaxNodes", 20_000},
		{"Avro 2,000 records deep", Schema{Type: Avro, Text: deepAvro(2000)}, "MaxDepth", 1000},
		{"Avro 100,000 fields", Schema{Type: Avro, Text: wideAvro(100_000)}, "MaxNodes", 20_000},
		{"Protobuf 2,000 messages deep", Schema{Type: Protobuf, Text: deepProto(2000)}, "MaxDepth", 1000},
		{"Protobuf 100,000 fields", Schema{Type: Protobuf, Text: wideProto(100_000)}, "MaxNodes", 20_000},
		{"1,001 references", Schema{Type: Avro, Text: `"string"`, References: manyRefs(1001)}, "MaxReferences", 1000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.s)
			var le *LimitError
			if !errors.As(err, &le) || le.Limit != c.limit || le.Value != c.value {
				t.Fatalf("want a LimitError on %s=%d, got %v", c.limit, c.value, err)
			}
			if !errors.Is(err, ErrLimit) || !errors.Is(err, ErrInvalidSchema) {
				t.Fatalf("%v: not ErrLimit and ErrInvalidSchema", err)
			}
			if want := fmt.Sprintf("%s=%d", c.limit, c.value); !strings.Contains(err.Error(), want) {
				t.Fatalf("%q does not name %s", err, want)
			}
			allocs := testing.AllocsPerRun(3, func() { Parse(c.s) })
			if allocs > 20 {
				t.Fatalf("a refused parse made %.0f allocations; the limits are checked before parsing", allocs)
			}
		})
	}
}

func manyRefs(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("r%d", i)] = `"string"`
	}
	return m
}

// Just under every limit a schema parses: the defaults take real schemas,
// and the comments and strings of a Protobuf text do not count.
func TestParseContext_AcceptsUnderLimits(t *testing.T) {
	for name, s := range map[string]Schema{
		"JSON 490 levels":        {Type: JSON, Text: deepJSON(490)},
		"JSON 9,000 properties":  {Type: JSON, Text: wideJSON(9000)},
		"Avro 300 records deep":  {Type: Avro, Text: deepAvro(300)},
		"Avro 6,000 fields":      {Type: Avro, Text: wideAvro(6000)},
		"Protobuf 18,000 fields": {Type: Protobuf, Text: wideProto(18_000)},
	} {
		if _, err := Parse(s); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Own limits: lower refuses, NoLimits takes what the defaults refuse.
	if _, err := ParseContext(context.Background(), Schema{Type: JSON, Text: wideJSON(100)}, Limits{MaxNodes: 100}); !errors.Is(err, ErrLimit) {
		t.Errorf("MaxNodes 100: %v", err)
	}
	if _, err := ParseContext(context.Background(), Schema{Type: Avro, Text: wideAvro(7000)}, NoLimits); err != nil {
		t.Errorf("NoLimits: %v", err)
	}
}

// countingCtx is done from the n-th time its Err is asked.
type countingCtx struct {
	context.Context
	calls, after atomic.Int64
}

func (c *countingCtx) Err() error {
	if c.calls.Add(1) >= c.after.Load() {
		return context.Canceled
	}
	return nil
}

// A parse whose context ends stops: before it starts, and while it
// measures a large text (the measuring pass asks the context as it goes).
func TestParseContext_StopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ParseContext(ctx, Schema{Type: JSON, Text: `{"type":"string"}`}, Limits{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before: %v", err)
	}
	for _, s := range []Schema{{Type: JSON, Text: wideJSON(50_000)}, {Type: Protobuf, Text: wideProto(50_000)}} {
		c := &countingCtx{Context: context.Background()}
		c.after.Store(3) // the first check passes, the measuring pass sees the end
		_, err := ParseContext(c, s, NoLimits)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: want context.Canceled, got %v", s.Type, err)
		}
		if n := c.calls.Load(); n != 3 {
			t.Fatalf("%s: context asked %d times, want the parse to stop at the 3rd", s.Type, n)
		}
	}
}
