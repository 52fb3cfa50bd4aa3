package system

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"gopkg.in/yaml.v3"
)

// Schema is the JSON Schema (draft 2020-12) of handoff.yaml. Editors that
// read JSON Schema for YAML files can use it as is.
//
//go:embed schema.json
var Schema []byte

// Limits on an untrusted file: its size, the number of YAML nodes and their
// nesting. A handoff.yaml for a thousand services stays far below them.
const (
	MaxSize  = 4 << 20
	MaxNodes = 200_000
	MaxDepth = 32
)

// Error is one thing wrong with a file: where (line and column, and the path
// of the value), which rule it breaks, and how.
type Error struct {
	File   string
	Line   int
	Column int
	// Path is the value's place in the document ("services[2].availability");
	// empty for the document itself.
	Path string
	// Rule names the broken rule: a JSON Schema keyword of the file's schema
	// ("required", "enum", "maximum", ...) or one of the cross-references
	// checked after it ("unique", "unknown-service", "unknown-topic",
	// "unknown-database", "unknown-alert", "contract-pair", "yaml").
	Rule string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(cmp(e.File, FileName))
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	fmt.Fprintf(&b, "%s (rule %s)", e.Msg, e.Rule)
	return b.String()
}

// Errors is every problem found in a file, in line order. Parse returns it
// as its error.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Load reads and parses the file at path.
func Load(path string) (*System, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("system: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("system: read %s: %w", path, err)
	}
	return Parse(path, b)
}

// Parse decodes a handoff.yaml. The file must be valid against Schema and its
// names must resolve (integrations name declared services and topics,
// services declared databases, dead-letter stores declared alerts). On
// failure the error is Errors, naming the line and rule of every problem;
// name is the file name used in them.
func Parse(name string, b []byte) (*System, error) {
	fail := func(line, col int, path, rule, msg string) error {
		return Errors{{File: name, Line: line, Column: col, Path: path, Rule: rule, Msg: msg}}
	}
	if len(b) > MaxSize {
		return nil, fail(0, 0, "", "size", fmt.Sprintf("the file is larger than %d bytes", MaxSize))
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail(0, 0, "", "yaml", "the file is empty")
		}
		return nil, fail(yamlLine(err), 0, "", "yaml", yamlMsg(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			line = yamlLine(err)
		}
		return nil, fail(line, 0, "", "yaml", "a second YAML document; handoff.yaml holds one")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	c := converter{}
	v, err := c.value(root, 0, nil)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File = name
			return nil, Errors{e}
		}
		return nil, err
	}
	if errs := validate(name, root, v); len(errs) > 0 {
		return nil, errs
	}
	s, errs := build(name, root)
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errs
	}
	return s, nil
}

func sortErrors(es Errors) {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Column < es[j].Column
	})
}

// yamlLine digs the line out of yaml.v3's "yaml: line N: ..." errors.
func yamlLine(err error) int {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	_, rest, ok := strings.Cut(msg, "line ")
	if !ok {
		return 0
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	n, _ := strconv.Atoi(rest[:end])
	return n
}

func yamlMsg(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "line ") {
		msg = msg[i+2:]
	}
	return msg
}

// converter turns a YAML node tree into the JSON values the schema
// validator reads, under a budget of nodes and depth. Anchors and aliases are
// refused: the file is small and written by people, and aliases are the
// YAML way to make a small file expand into a huge one.
type converter struct {
	nodes int
}

func (c *converter) value(n *yaml.Node, depth int, path []string) (any, error) {
	c.nodes++
	if c.nodes > MaxNodes {
		return nil, &Error{Line: n.Line, Column: n.Column, Path: pathString(path), Rule: "budget", Msg: fmt.Sprintf("more than %d YAML nodes", MaxNodes)}
	}
	if depth > MaxDepth {
		return nil, &Error{Line: n.Line, Column: n.Column, Path: pathString(path), Rule: "budget", Msg: fmt.Sprintf("nested deeper than %d levels", MaxDepth)}
	}
	if n.Anchor != "" || n.Kind == yaml.AliasNode {
		return nil, &Error{Line: n.Line, Column: n.Column, Path: pathString(path), Rule: "yaml", Msg: "anchors and aliases are not supported in handoff.yaml"}
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || (k.Tag != "!!str" && k.Tag != "!!int" && k.Tag != "!!bool" && k.Tag != "!!float") {
				return nil, &Error{Line: k.Line, Column: k.Column, Path: pathString(path), Rule: "yaml", Msg: "a mapping key must be a plain string"}
			}
			if k.Tag == "!!str" && k.Value == "<<" {
				return nil, &Error{Line: k.Line, Column: k.Column, Path: pathString(path), Rule: "yaml", Msg: "merge keys (<<) are not supported in handoff.yaml"}
			}
			if _, dup := m[k.Value]; dup {
				return nil, &Error{Line: k.Line, Column: k.Column, Path: pathString(append(path, k.Value)), Rule: "unique", Msg: fmt.Sprintf("key %q appears twice", k.Value)}
			}
			v, err := c.value(n.Content[i+1], depth+1, append(path, k.Value))
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		a := make([]any, 0, len(n.Content))
		for i, e := range n.Content {
			v, err := c.value(e, depth+1, append(path, strconv.Itoa(i)))
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		return a, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, &Error{Line: n.Line, Column: n.Column, Path: pathString(path), Rule: "yaml", Msg: err.Error()}
			}
			return b, nil
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, &Error{Line: n.Line, Column: n.Column, Path: pathString(path), Rule: "type", Msg: fmt.Sprintf("%q is not a finite number", n.Value)}
			}
			return f, nil
		default:
			return n.Value, nil
		}
	}
	return nil, &Error{Line: n.Line, Column: n.Column, Path: pathString(path), Rule: "yaml", Msg: "an empty document"}
}

// pathString renders a JSON pointer's tokens as services[2].integrations[0].to.
func pathString(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		if _, err := strconv.Atoi(t); err == nil {
			b.WriteString("[" + t + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(t)
	}
	return b.String()
}

var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	const url = "https://handoff.dev/schemas/handoff.yaml.json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, err
	}
	return c.Compile(url)
})

var printer = message.NewPrinter(language.English)

func validate(name string, root *yaml.Node, v any) Errors {
	sch, err := compiled()
	if err != nil {
		return Errors{{File: name, Rule: "schema", Msg: "the embedded schema does not compile: " + err.Error()}}
	}
	err = sch.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return Errors{{File: name, Rule: "schema", Msg: err.Error()}}
	}
	var out Errors
	seen := map[string]bool{}
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		loc := slices.Clone(e.InstanceLocation)
		n := lookup(root, loc)
		if ap, ok := e.ErrorKind.(*kind.AdditionalProperties); ok && len(ap.Properties) == 1 {
			if k := keyNode(n, ap.Properties[0]); k != nil {
				n = k
			}
		}
		rule := strings.Join(e.ErrorKind.KeywordPath(), "/")
		er := &Error{File: name, Path: pathString(loc), Rule: rule, Msg: e.ErrorKind.LocalizedString(printer)}
		if n != nil {
			er.Line, er.Column = n.Line, n.Column
		}
		if key := er.Error(); !seen[key] {
			seen[key] = true
			out = append(out, er)
		}
	}
	walk(ve)
	sortErrors(out)
	return out
}

// lookup finds the node at a JSON pointer's tokens, or the deepest one found.
func lookup(n *yaml.Node, tokens []string) *yaml.Node {
	for _, t := range tokens {
		switch n.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == t {
					next = n.Content[i+1]
					break
				}
			}
			if next == nil {
				return n
			}
			n = next
		case yaml.SequenceNode:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(n.Content) {
				return n
			}
			n = n.Content[i]
		default:
			return n
		}
	}
	return n
}

func keyNode(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return nil
}

// field returns the value node of key in mapping n, or nil.
func field(n *yaml.Node, key string) *yaml.Node {
	if k := keyNode(n, key); k != nil {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i] == k {
				return n.Content[i+1]
			}
		}
	}
	return nil
}

func str(n *yaml.Node, key string) string {
	if v := field(n, key); v != nil && v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
		return v.Value
	}
	return ""
}

func strs(n *yaml.Node, key string) []string {
	v := field(n, key)
	if v == nil || v.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([]string, 0, len(v.Content))
	for _, e := range v.Content {
		out = append(out, e.Value)
	}
	return out
}

func items(n *yaml.Node, key string) []*yaml.Node {
	if v := field(n, key); v != nil && v.Kind == yaml.SequenceNode {
		return v.Content
	}
	return nil
}

func duration(n *yaml.Node, key string) (time.Duration, error) {
	s := str(n, key)
	if s == "" {
		return 0, nil
	}
	return time.ParseDuration(s)
}
