package schema

import (
	"context"
	"errors"
	"fmt"
)

// Limits is the work budget of one parse. A schema is a program: compiling
// it costs time and memory far beyond its size (a 90 KB JSON Schema nested
// 2,000 levels deep took 25 s of CPU and 500 MB to compile). ParseContext
// measures the text and its references against the limits in one linear
// pass, before any library sees them, and refuses what is over with a
// *LimitError naming the limit and its value.
//
// The zero value is the defaults (DefaultLimits); a field left zero takes its
// default, and a negative field means no limit.
type Limits struct {
	// MaxDepth bounds the nesting of the text and of each reference: JSON
	// objects and arrays for JSON Schema and Avro (a nested JSON Schema
	// property is two levels, "properties" and the property), braces for
	// Protobuf (messages, oneofs, enums and option blocks).
	MaxDepth int
	// MaxNodes bounds the size of the schema as its parser sees it, summed
	// over the text and its references: for JSON Schema and Avro every
	// object member and every array element counts one (a property, a
	// field, a keyword, a definition, an enum symbol); for Protobuf every
	// declaration counts one (a field, an enum value, an option, a message).
	MaxNodes int
	// MaxReferences bounds the number of references (schemas the text
	// uses, directly or not).
	MaxReferences int
}

// DefaultLimits are generous for real schemas (about ten thousand JSON
// Schema properties or Avro/Protobuf fields, nesting far beyond what a
// person writes) and refuse what only an attacker sends: on a 2-core
// machine a parse within them takes about a second at most (bench/README.md,
// "Hostile schemas"). The JSON Schema compiler's cost grows with the square
// of the number of subschemas, hence MaxNodes.
var DefaultLimits = Limits{MaxDepth: 1_000, MaxNodes: 20_000, MaxReferences: 1_000}

// NoLimits turns every limit off (for schemas accepted earlier under other
// limits, such as those a registry has stored).
var NoLimits = Limits{MaxDepth: -1, MaxNodes: -1, MaxReferences: -1}

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	if l.MaxDepth == 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	if l.MaxNodes == 0 {
		l.MaxNodes = DefaultLimits.MaxNodes
	}
	if l.MaxReferences == 0 {
		l.MaxReferences = DefaultLimits.MaxReferences
	}
	return l
}

// ErrLimit marks a schema refused for exceeding a limit (LimitError wraps
// it, and ErrInvalidSchema).
var ErrLimit = errors.New("schema: limit exceeded")

// LimitError says which limit a schema exceeds and where.
type LimitError struct {
	Type Type
	// Limit is the Limits field ("MaxDepth", "MaxNodes", "MaxReferences"),
	// Value its value.
	Limit string
	Value int
	// Reference is the reference the limit was reached in ("" for the text).
	Reference string
	// Offset is the byte offset in the text (or reference) where the limit
	// was reached; -1 when it does not apply.
	Offset int
}

func (e *LimitError) Error() string {
	what := map[string]string{
		"MaxDepth":      "nests deeper than",
		"MaxNodes":      "has more members, elements or declarations than",
		"MaxReferences": "has more references than",
	}[e.Limit]
	where := ""
	if e.Reference != "" {
		where = fmt.Sprintf(" in reference %q", e.Reference)
	}
	if e.Offset >= 0 {
		where += fmt.Sprintf(" at byte %d", e.Offset)
	}
	return fmt.Sprintf("schema: %s schema %s the limit %s=%d%s", e.Type, what, e.Limit, e.Value, where)
}

// Unwrap returns ErrLimit and ErrInvalidSchema.
func (e *LimitError) Unwrap() []error { return []error{ErrLimit, ErrInvalidSchema} }

// ParseContext parses and checks a schema under a work budget: it refuses
// a text (with its references) over limits with a *LimitError before
// parsing it, and stops when ctx is done (returning ctx's error). The
// measuring pass checks ctx as it goes; the parsing libraries are then
// given a text whose cost the limits bound (the Protobuf compiler is
// also given ctx). Parse is ParseContext with context.Background() and
// DefaultLimits.
func ParseContext(ctx context.Context, s Schema, limits Limits) (*Parsed, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := measure(ctx, s, limits.withDefaults()); err != nil {
		return nil, err
	}
	p, err := parse(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

// ctxEvery is how many bytes the measuring pass reads between checks of
// its context.
const ctxEvery = 64 << 10

// measure checks s against l.
func measure(ctx context.Context, s Schema, l Limits) error {
	if l.MaxReferences >= 0 && len(s.References) > l.MaxReferences {
		return &LimitError{Type: s.Type, Limit: "MaxReferences", Value: l.MaxReferences, Offset: -1}
	}
	nodes := 0
	scan := scanJSON
	if s.Type == Protobuf {
		scan = scanProto
	}
	one := func(ref, text string) error {
		n, err := scan(ctx, text, l, nodes)
		if err != nil {
			var le *LimitError
			if errors.As(err, &le) {
				le.Type, le.Reference = s.Type, ref
			}
			return err
		}
		nodes = n
		return nil
	}
	if err := one("", s.Text); err != nil {
		return err
	}
	for name, text := range s.References {
		if err := one(name, text); err != nil {
			return err
		}
	}
	return nil
}

// scanJSON walks a JSON text once, counting nesting and members/elements
// (starting from nodes), without decoding it. It does not validate the
// text: what is not JSON is the parser's to refuse.
func scanJSON(ctx context.Context, text string, l Limits, nodes int) (int, error) {
	var (
		stack    []byte // '{' or '[' per open container, up to MaxDepth
		inString bool
		escaped  bool
		fresh    bool // an array was just opened: its first element counts
	)
	for i := 0; i < len(text); i++ {
		if i%ctxEvery == ctxEvery-1 {
			if err := ctx.Err(); err != nil {
				return nodes, err
			}
		}
		c := text[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		count := false
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '"':
			inString = true
		case '{', '[':
			if l.MaxDepth >= 0 && len(stack) >= l.MaxDepth {
				return nodes, &LimitError{Limit: "MaxDepth", Value: l.MaxDepth, Offset: i}
			}
			stack = append(stack, c)
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			fresh = false
			continue
		case ':':
			count = true
		case ',':
			count = len(stack) > 0 && stack[len(stack)-1] == '['
		}
		if fresh {
			count, fresh = true, false
		}
		if c == '[' {
			fresh = true
		}
		if count {
			nodes++
			if l.MaxNodes >= 0 && nodes > l.MaxNodes {
				return nodes, &LimitError{Limit: "MaxNodes", Value: l.MaxNodes, Offset: i}
			}
		}
	}
	return nodes, nil
}

// scanProto walks a Protobuf text once, skipping comments and string
// literals, counting brace nesting and declarations (each ';' or '{'),
// starting from nodes.
func scanProto(ctx context.Context, text string, l Limits, nodes int) (int, error) {
	depth := 0
	for i := 0; i < len(text); i++ {
		if i%ctxEvery == ctxEvery-1 {
			if err := ctx.Err(); err != nil {
				return nodes, err
			}
		}
		switch c := text[i]; c {
		case '/':
			if i+1 < len(text) && text[i+1] == '/' {
				for i < len(text) && text[i] != '\n' {
					i++
				}
			} else if i+1 < len(text) && text[i+1] == '*' {
				i += 2
				for i+1 < len(text) && !(text[i] == '*' && text[i+1] == '/') {
					i++
				}
				i++
			}
		case '"', '\'':
			for i++; i < len(text) && text[i] != c && text[i] != '\n'; i++ {
				if text[i] == '\\' {
					i++
				}
			}
		case '{', ';':
			if c == '{' {
				depth++
				if l.MaxDepth >= 0 && depth > l.MaxDepth {
					return nodes, &LimitError{Limit: "MaxDepth", Value: l.MaxDepth, Offset: i}
				}
			}
			nodes++
			if l.MaxNodes >= 0 && nodes > l.MaxNodes {
				return nodes, &LimitError{Limit: "MaxNodes", Value: l.MaxNodes, Offset: i}
			}
		case '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return nodes, nil
}
